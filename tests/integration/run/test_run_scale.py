"""Runs at scale on Azurite: a run of 2,000 batches merges every batch exactly once (issue 22's
test), and so does a run while storage throttles.

The run goes through the library behind ``deployer run`` against the fake ARM (groups are
records) and Azurite (:mod:`testbed.scale_run`); fast workers finish the jobs through the
real job protocol (:mod:`testbed.fast_workers`). These check correctness at scale, not speed
(the figures, at 1,000 to 10,000 batches, are ``bench/bench_run_scale.py``'s).

What changes with scale is where a read or write is cut in pieces: table queries come in
pages (the service's 1,000 entities at most, and it may end one early), batch transactions
hold 100 entities. The storage here answers queries in pages of :data:`PAGE`, so a run of
:data:`BATCHES` crosses every such cut many times: each partition's index entries take 20
transactions, and every full read of the run's rows or of its index 20 pages (its batches are
packed in one entity). Runs of 1,000 to 10,000 batches at the service's
own page size are ``make bench-run-scale``'s.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aci_emulator import FakeArm, specs_dir
from testbed.azurite import Azurite, azurite
from testbed.engine import TAG
from testbed.fake_arm import registry_with_images, require_specs
from testbed.fast_workers import worker_processes
from testbed.run_stack import emulator_env
from testbed.scale_run import Figures, drive, prepare
from testbed.storage_wire import Wire, installed

BATCHES = 2000
PAGE = 100
"""Entities per page of a table query in these runs (see :class:`testbed.storage_wire.Wire`)."""


@dataclass
class ScaleStack:
    store: Azurite
    root: Path
    workload: Path

    def run(self, n: int, wire: Wire, outfmt: tuple[int, ...]) -> Figures:
        """A run of ``n`` batches through ``wire``, fast workers in two processes."""
        with contextlib.ExitStack() as stack:

            def start_workers(run_id: str) -> None:
                conn = self.store.connection_string()
                stack.enter_context(worker_processes(conn, f"run-{run_id}"))

            with installed(wire):
                return drive(
                    n,
                    self.root,
                    self.workload,
                    wire,
                    janitor_interval=1.0,
                    watch_interval=1.0,
                    on_started=start_workers,
                    timeout=1200,
                    outfmt=outfmt,
                )


@pytest.fixture(scope="module")
def scale_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleStack]:
    """Azurite and the fake ARM for the module, the process's environment pointing at them."""
    require_specs(specs_dir(), ci=bool(os.environ.get("CI")))
    root = tmp_path_factory.mktemp("scale")
    with (
        FakeArm() as arm,
        # The groups are records only; the deployer still checks its images are there.
        registry_with_images((TAG,)) as registry,
        # In memory: Azurite's 5-s saves of its whole stores grow with the run (not Azure's);
        # silent: no access log line for each of ~20,000 requests; fast lookups: a job row's
        # point read or write does not scan every job row, nor a message operation every
        # message, nor its garbage collection sort every extent for each deleted one
        # (Azurite's costs that grow with the run; Azure has none of them).
        azurite("test-run-scale-azurite", in_memory=True, silent=True, fast_lookups=True) as store,
        pytest.MonkeyPatch.context() as env,
    ):
        conn = store.connection_string()
        for key, value in emulator_env(arm, root, registry.server).items():
            if os.environ.get(key) != value:
                env.setenv(key, value)
        env.setenv("AZURE_STORAGE_CONNECTION_STRING", conn)
        env.setenv("DEPLOYER_LOCATION", "westeurope")
        yield ScaleStack(store, root, prepare(root, conn))


@pytest.mark.timeout(1500)
def test_a_run_across_pages_and_transactions_merges_each_batch_exactly_once(
    scale_stack: ScaleStack,
) -> None:
    wire = Wire(scale_stack.store.ports, page=PAGE)
    fig = scale_stack.run(BATCHES, wire, outfmt=(6,))
    assert fig.status == "succeeded"
    assert fig.problems == []
    assert wire.continued >= 2, "the merge's read of the run's rows came in one page"
    # A few range queries (a page each 100 rows), not a point read per job.
    assert fig.requests["status"] < BATCHES // 10, fig.requests
    # A message a batch: no queued row nor index entry (each job's worker writes them).
    assert BATCHES <= fig.requests["submit"] < BATCHES + 50, fig.requests


@pytest.mark.timeout(1500)
def test_a_throttled_run_loses_and_repeats_nothing(scale_stack: ScaleStack) -> None:
    # Its time goes in the SDKs' backoff after each 503, so it is sized by those, not batches.
    # The rate gives well over 20 throttled requests now that the merge of a run of the whole
    # database downloads no archives (about 600 requests in all).
    wire = Wire(scale_stack.store.ports, busy_rate=0.1, seed=22, page=PAGE)
    fig = scale_stack.run(100, wire, outfmt=(6, 7, 15))
    assert fig.busy > 20, f"only {fig.busy} requests were throttled"
    assert fig.status == "succeeded"
    assert fig.problems == []
