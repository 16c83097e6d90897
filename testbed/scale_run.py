"""One ``deployer run`` of many one-query batches on Azurite, timed phase by phase.

For the scale bench (``bench/bench_run_scale.py``) and the scale tests
(``tests/integration/run/test_run_scale.py``). The run goes through the library behind
``deployer run`` (:mod:`deployer.run.api`) against the fake ARM (groups are records, no
containers): ``start`` submits the batches and creates the groups; the janitor group's loop
(:class:`deployer.run.janitor.Janitor`, as ``deployer-janitor`` runs it) passes every
``janitor_interval`` seconds; the foreground ``watch`` follows it as ``deployer run`` does;
then ``run status`` and the merge. :class:`testbed.fast_workers.FastWorkers` finish the jobs,
so what is measured is the control plane, not BLAST. Every storage request of the run's side
is counted at the client (:mod:`testbed.storage_wire`).
"""

from __future__ import annotations

import json
import resource
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blast_client import BlastClient, JobStatus
from blast_client.databases import MANIFEST

from deployer.backends.base import ObservedGroup
from deployer.run import api
from deployer.run.janitor import Janitor
from deployer.run.jobview import JobView
from deployer.run.state import Run
from deployer.run.store import RunStore
from deployer.scope import aci_backend, scope_settings
from deployer.settings import NO_OVERRIDES
from testbed.run_stack import workload_text
from testbed.storage_wire import Wire

DB = "demo"
SEQUENCE = "ACGTTGCAAGGCTTAACCGGTATCGATCGGATCCAAGCTT"
OUTFMT = (6, 7, 15)


def queries(n: int) -> str:
    """``n`` one-line nucleotide queries ``q000001`` ... (pure)."""
    return "".join(f">q{i:06d}\n{SEQUENCE}\n" for i in range(1, n + 1))


def prepare(root: Path, connection_string: str) -> Path:
    """Storage for runs (resources and a database manifest; the fast workers need no
    database files) and a workload file; return the workload's path."""
    client = BlastClient(connection_string=connection_string)
    client.ensure_resources()
    manifest = {"molecule": "nucleotide", "bytes_to_cache": 1_000_000, "files": {}}
    client.storage.container(client.config.db_container).upload_blob(
        f"{DB}/{MANIFEST}", json.dumps(manifest).encode(), overwrite=True
    )
    workload = root / "scale.yaml"
    workload.write_text(workload_text("scale", workers=2))
    return workload


@dataclass
class Figures:
    """What one run measured.

    Attributes:
        batches: Batches in the run.
        run_id: Its id.
        submit_s: ``start`` (validate, plan, submit, create the groups).
        passes_s: Each janitor pass.
        passes_rows_s: The part of each pass that read the job rows changed since the last.
        passes_groups_s: The part of each pass that listed the groups (ARM).
        passes_read: The job rows each pass read (those changed since the last).
        passes_cpu_s: The janitor thread's CPU time in each pass (its own work, whatever
            else the machine runs).
        looks_s: Each read of the changed rows between passes (near the run's end).
        looks_read: The rows each of those read.
        looks_cpu_s: The janitor thread's CPU time in each.
        observe_passes_s: The passes that only read and decided (no step: no ARM call, such
            as the final ones that bill and delete the groups).
        status_s: ``run status`` once the run is over.
        merge_s: The merge (``results``).
        wall_s: From ``start`` to the merged files.
        peak_mb: Peak resident memory of the process (the run's side only).
        requests: Storage requests of the run's side by phase (``submit``, ``running``,
            ``status``, ``merge``).
        busy: Requests answered 503 (throttling injected).
        problems: What is wrong with the merged output (empty when each batch is merged
            exactly once, in order).
    """

    batches: int
    run_id: str = ""
    submit_s: float = 0.0
    passes_s: list[float] = field(default_factory=list)
    passes_rows_s: list[float] = field(default_factory=list)
    passes_groups_s: list[float] = field(default_factory=list)
    passes_read: list[int] = field(default_factory=list)
    passes_cpu_s: list[float] = field(default_factory=list)
    looks_s: list[float] = field(default_factory=list)
    looks_read: list[int] = field(default_factory=list)
    looks_cpu_s: list[float] = field(default_factory=list)
    observe_passes_s: list[float] = field(default_factory=list)
    status_s: float = 0.0
    merge_s: float = 0.0
    wall_s: float = 0.0
    peak_mb: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)
    busy: int = 0
    status: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def per_batch(self) -> float:
        """Storage requests per batch, all phases."""
        return sum(self.requests.values()) / max(1, self.batches)


@dataclass
class _TimedView(JobView):
    """The janitor's job view, its reads between passes timed: near a run's end the janitor
    looks at the rows changed between its passes (``deployer.run.janitor.until_next_pass``),
    and those reads are its work too."""

    in_pass: bool = False
    looks_s: list[float] = field(default_factory=list)
    looks_read: list[int] = field(default_factory=list)
    looks_cpu_s: list[float] = field(default_factory=list)

    def refresh(
        self, client: BlastClient, clock: Callable[[], float] = time.monotonic
    ) -> dict[str, JobStatus]:
        t0, c0 = time.perf_counter(), time.thread_time()
        out = super().refresh(client, clock)
        if not self.in_pass:
            self.looks_s.append(time.perf_counter() - t0)
            self.looks_cpu_s.append(time.thread_time() - c0)
            self.looks_read.append(self.read_rows)
        return out


@dataclass
class _TimedJanitor(Janitor):
    """The janitor, each pass timed (and its reads of the job rows and of the groups), and
    whether it carried out steps (ARM calls)."""

    passes: list[tuple[float, bool]] = field(default_factory=list)
    rows_s: list[float] = field(default_factory=list)
    rows_read: list[int] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    groups_s: list[float] = field(default_factory=list)
    _steps: int = 0

    def __post_init__(self) -> None:
        self.on_step = self._count

    def _count(self, step: object) -> None:
        self._steps += 1

    def jobs(self, run: Run) -> dict[str, str]:
        if self.view is None:
            self.view = _TimedView.of(run, skip_queued=True)
        t0 = time.perf_counter()
        out = super().jobs(run)
        self.rows_s.append(time.perf_counter() - t0)
        self.rows_read.append(self.view.read_rows if self.view is not None else 0)
        return out

    def groups(self, deployment: str) -> list[ObservedGroup]:
        t0 = time.perf_counter()
        out = super().groups(deployment)
        self.groups_s.append(time.perf_counter() - t0)
        return out

    def step(self) -> Any:
        before = self._steps
        t0, c0 = time.perf_counter(), time.thread_time()
        if isinstance(self.view, _TimedView):
            self.view.in_pass = True
        try:
            out = super().step()
        finally:
            if isinstance(self.view, _TimedView):
                self.view.in_pass = False
        self.passes.append((time.perf_counter() - t0, self._steps > before))
        self.cpu_s.append(time.thread_time() - c0)
        return out


def drive(
    n: int,
    root: Path,
    workload: Path,
    wire: Wire,
    *,
    janitor_interval: float,
    watch_interval: float = 2.0,
    on_started: Callable[[str], None] = lambda run_id: None,
    timeout: float = 1800,
    outfmt: tuple[int, ...] = OUTFMT,
) -> Figures:
    """Run ``n`` one-query batches; the process's environment points at the stack, and
    ``wire`` is installed. ``on_started`` gets the run id once the batches are submitted
    (start the workers there)."""
    fig = Figures(n)
    fasta = root / f"q{n}.fa"
    fasta.write_text(queries(n))
    request = api.RunRequest(workload, fasta, DB, batch_len=1, outfmt=outfmt)
    wire.reset()
    t0 = time.perf_counter()
    started = api.start(request)
    fig.submit_s = time.perf_counter() - t0
    fig.requests["submit"] = wire.total
    run_id = fig.run_id = started.run.run_id
    assert started.scope is not None and started.run.janitor is not None
    wire.reset()
    on_started(run_id)

    scope = started.scope
    backend = aci_backend(scope_settings(None, started.run.deployment, NO_OVERRIDES))
    janitor = _TimedJanitor(
        run_id,
        RunStore(scope.client.storage.table),
        scope.client,
        backend,
        self_group=started.run.janitor,
    )
    failed: list[BaseException] = []

    def janitor_loop() -> None:
        try:
            janitor.until_done(janitor_interval)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            failed.append(exc)

    thread = threading.Thread(target=janitor_loop, name="janitor", daemon=True)
    thread.start()
    progress = api.watch(run_id, scope=scope, interval=watch_interval, timeout=timeout)
    thread.join(timeout)
    if failed:
        raise failed[0]
    fig.passes_s = [seconds for seconds, _ in janitor.passes]
    fig.passes_rows_s, fig.passes_groups_s = janitor.rows_s, janitor.groups_s
    fig.passes_read, fig.passes_cpu_s = janitor.rows_read, janitor.cpu_s
    if isinstance(janitor.view, _TimedView):
        view = janitor.view
        fig.looks_s, fig.looks_read = view.looks_s, view.looks_read
        fig.looks_cpu_s = view.looks_cpu_s
    fig.observe_passes_s = [seconds for seconds, acted in janitor.passes if not acted]
    fig.status = progress.run.status
    fig.requests["running"] = wire.total

    wire.reset()
    t1 = time.perf_counter()
    api.status(run_id)
    fig.status_s = time.perf_counter() - t1
    fig.requests["status"] = wire.total

    wire.reset()
    t2 = time.perf_counter()
    out = root / f"out-{run_id}"
    api.results(run_id, out, scope=scope)
    fig.merge_s = time.perf_counter() - t2
    fig.requests["merge"] = wire.total
    fig.wall_s = time.perf_counter() - t0
    fig.busy = sum(wire.busy.values())
    fig.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fig.problems = merged_problems(out, n, outfmt)
    return fig


def merged_problems(out: Path, n: int, outfmt: tuple[int, ...] = OUTFMT) -> list[str]:
    """What is wrong with a run's merged files: each of the ``n`` queries must be in every
    format exactly once, in query order (an empty list when all is well)."""
    expected = [f"q{i:06d}" for i in range(1, n + 1)]
    problems: list[str] = []
    tabular = [line.split("\t")[0] for line in (out / "results.6.tsv").read_text().splitlines()]
    if tabular != expected:
        problems.append(f"results.6.tsv: {_diff(tabular, expected)}")
    if 7 in outfmt:
        problems += _commented_problems(out, n, expected)
    if 15 in outfmt:
        problems += _json_problems(out, expected)
    manifest = json.loads((out / "manifest.json").read_text())
    states = [b["state"] for b in manifest["batches"]]
    if states != ["succeeded"] * n:
        problems.append(f"manifest: {len(states)} batches, {states.count('succeeded')} succeeded")
    # A run of the whole database keeps no archives (only a merge of shards reads them).
    archives = sorted((out / "batches").iterdir())
    if archives or any("archive" in b for b in manifest["batches"]):
        problems.append(f"batches/: {len(archives)} archives kept by a run of the whole database")
    return problems


def _commented_problems(out: Path, n: int, expected: list[str]) -> list[str]:
    commented = (out / "results.7.txt").read_text().splitlines()
    named = [line.split(": ", 1)[1] for line in commented if line.startswith("# Query: ")]
    if named != expected or commented[-1] != f"# BLAST processed {n} queries":
        return [f"results.7.txt: {_diff(named, expected)}; ends {commented[-1]!r}"]
    return []


def _json_problems(out: Path, expected: list[str]) -> list[str]:
    reports = json.loads((out / "results.15.json").read_text())["BlastOutput2"]
    titles = [r["report"]["results"]["search"]["query_title"] for r in reports]
    if titles != expected:
        return [f"results.15.json: {_diff(titles, expected)}"]
    return []


def _diff(got: list[str], expected: list[str]) -> str:
    missing = sorted(set(expected) - set(got))
    twice = sorted(q for q, n in Counter(got).items() if n > 1)
    return (
        f"{len(got)} entries for {len(expected)} queries, missing {missing[:5]}, "
        f"twice {twice[:5]}, in order: {got == sorted(got)}"
    )
