"""MPI on the engines: one engine container started with ``IPP_MPI=1`` runs its 4 engines under
mpiexec as one MPI world (real Open MPI, mpi4py), beside the stack's own engines.

The tests share that container and run in file order; the last one kills a rank.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Iterator

import docker
import pytest
from docker.models.containers import Container

from testbed.cluster import (
    ENGINE_REPLICAS,
    WORLD_VIEW,
    health,
    logs_since,
    one,
    python_in,
    registered_engines,
    remove_engine,
    start_engine,
    wait_until,
)
from testbed.notebooks import MPI_PI, execute

RANKS = 4

# Runs in the notebook container: an ipyparallel client on the MPI container's engines
# (their ids from its health report, in rank order); {body} uses `rc` and `view` and sets
# `result`, which is printed as JSON.
CLIENT = (
    WORLD_VIEW
    + """
{body}
print(json.dumps(result))
rc.close()
"""
)


def on_world(
    notebook: Container, mpi_container: Container, world: dict[str, object], body: str
) -> object:
    """Run ``body`` in a client in the notebook container against the MPI world's engines.

    Args:
        notebook (Container): The notebook container.
        mpi_container (Container): The MPI engine container (its log is shown on a failure).
        world (dict[str, object]): The MPI container's health report.
        body (str): Client code that sets ``result``.
    """
    mpi = world["mpi"]
    assert isinstance(mpi, dict)
    started = time.time()
    try:
        return python_in(notebook, CLIENT.format(ranks=mpi["ranks"], body=body), timeout=120)
    except AssertionError as exc:
        # What the engines and the hub said meanwhile, so that a hang can be told apart.
        project = notebook.labels["com.docker.compose.project"]
        controller = one(notebook.client, project, "ipcontroller")
        engines = logs_since(mpi_container, started - 5)
        hub = logs_since(controller, started - 5)
        raise AssertionError(
            f"{exc}\n--- the MPI container ---\n{engines[-6000:]}\n--- the controller ---\n"
            f"{hub[-6000:]}"
        ) from None


def world_ready(container: Container) -> dict[str, object]:
    """The MPI container's health report once all its ranks have registered, else {}.

    Args:
        container (Container): The MPI engine container.
    """
    report = health(container)
    mpi = report.get("mpi")
    if report.get("status") != "ok" or not isinstance(mpi, dict) or len(mpi["ranks"]) < RANKS:
        return {}
    return report


@pytest.fixture(scope="module")
def mpi_container(
    docker_client: docker.DockerClient,
    stack: str,
    notebook: Container,
    stack_secrets: dict[str, str],
) -> Iterator[Container]:
    """An engine container of 4 engines as one MPI world, restarted like the stack's engines."""
    container = start_engine(
        docker_client,
        stack,
        {
            "IPP_MPI": "1",
            "IPP_ENGINES_PER_CONTAINER": str(RANKS),
            "IPP_SSH_KEY": stack_secrets["IPP_SSH_KEY"],
            "IPP_SSH_KNOWN_HOSTS": stack_secrets["IPP_SSH_KNOWN_HOSTS"],
        },
        nano_cpus=2_000_000_000,
        restart=True,
    )
    try:
        yield container
    finally:
        remove_engine(container)
        # Leave the cluster as it was: the hub drops stopped engines after 10 missed beats.
        wait_until(
            lambda: len(registered_engines(notebook)) == ENGINE_REPLICAS,
            120,
            "the hub to drop the MPI container's engines",
        )


@pytest.fixture()
def world(mpi_container: Container, notebook: Container) -> dict[str, object]:
    """The MPI container's health report, once its world has registered and the hub lists it."""
    wait_until(lambda: bool(world_ready(mpi_container)), 180, "the MPI world to register")
    report = world_ready(mpi_container)
    ids = report["ids"]
    assert isinstance(ids, list)
    wait_until(
        lambda: set(ids) <= set(registered_engines(notebook)), 60, "the hub to list the ranks"
    )
    return report


@pytest.mark.timeout(300)
def test_engines_of_an_mpi_container_are_ranks_of_one_world(
    world: dict[str, object], notebook: Container, mpi_container: Container
) -> None:
    # What `%px from mpi4py import MPI; MPI.COMM_WORLD.Get_rank()` runs on each engine.
    result = on_world(
        notebook,
        mpi_container,
        world,
        "view.execute('from mpi4py import MPI; r = MPI.COMM_WORLD.Get_rank(); "
        "s = MPI.COMM_WORLD.Get_size(); t = MPI.Query_thread()')\n"
        "result = {'ranks': view.pull('r'), 'sizes': view.pull('s'), "
        "'preset': view.pull('mpi_rank'), 'threads': view.pull('t'), 'engines': len(rc.ids)}",
    )
    assert isinstance(result, dict)
    # Engine i of the health report's rank order holds rank i; all see one world of 4.
    assert result["ranks"] == list(range(RANKS))
    assert result["sizes"] == [RANKS] * RANKS
    # ipengine --mpi ran its MPI init in the engines' namespace too.
    assert result["preset"] == list(range(RANKS))
    # The client sees every rank as one engine: 4 more than the stack's own.
    assert result["engines"] == ENGINE_REPLICAS + RANKS
    assert world["engines"] == world["registered"] == RANKS


@pytest.mark.timeout(300)
def test_pi_by_allreduce_over_4_ranks_is_the_same_on_every_rank(
    world: dict[str, object], notebook: Container, mpi_container: Container
) -> None:
    result = on_world(
        notebook,
        mpi_container,
        world,
        """
def estimate():
    import numpy as np
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rng = np.random.default_rng([7, comm.Get_rank()])
    n = 2_000_000
    x, y = rng.random(n), rng.random(n)
    hits = np.array([np.count_nonzero(x * x + y * y <= 1.0)], dtype=np.int64)
    total = np.zeros(1, dtype=np.int64)
    comm.Allreduce(hits, total, op=MPI.SUM)
    return [4.0 * int(total[0]) / (n * comm.Get_size()), int(hits[0])]
result = view.apply_sync(estimate)
""",
    )
    assert isinstance(result, list) and len(result) == RANKS
    estimates = {pi for pi, _ in result}
    assert len(estimates) == 1, f"the ranks disagree: {result}"
    (pi,) = estimates
    assert abs(pi - math.pi) < 0.01, pi
    # The sum is of 4 different local counts (each rank drew its own points).
    assert len({hits for _, hits in result}) == RANKS
    assert pi == 4.0 * sum(hits for _, hits in result) / (2_000_000 * RANKS)


@pytest.mark.timeout(300)
def test_bcast_of_a_numpy_array_from_rank_0_arrives_intact(
    world: dict[str, object], notebook: Container, mpi_container: Container
) -> None:
    result = on_world(
        notebook,
        mpi_container,
        world,
        """
def bcast():
    import hashlib
    import numpy as np
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    # 8 MiB: past the shared-memory transport's eager limit, so it goes in fragments.
    if comm.Get_rank() == 0:
        data = np.random.default_rng(11).standard_normal(1 << 20)
    else:
        data = np.full(1 << 20, np.nan)
    comm.Bcast(data, root=0)
    return [comm.Get_rank(), hashlib.sha256(data.tobytes()).hexdigest()]
import hashlib
import numpy as np
sent = hashlib.sha256(np.random.default_rng(11).standard_normal(1 << 20).tobytes()).hexdigest()
result = {"sent": sent, "received": view.apply_sync(bcast)}
""",
    )
    assert isinstance(result, dict)
    assert [rank for rank, _ in result["received"]] == list(range(RANKS))
    assert [digest for _, digest in result["received"]] == [result["sent"]] * RANKS


@pytest.mark.timeout(300)
def test_mpi_notebook_estimates_pi_and_times_1_2_4_ranks(
    world: dict[str, object], notebook: Container
) -> None:
    report = execute(notebook, MPI_PI)
    assert isinstance(report["images"], int) and report["images"] >= 1
    files = report["files"]
    assert isinstance(files, dict)
    rows = list(csv.DictReader(io.StringIO(files["mpi-pi-timings.csv"])))
    assert [int(r["ranks"]) for r in rows] == [1, 2, 4]
    for row in rows:
        assert abs(float(row["pi"]) - math.pi) < 0.01, row
        assert float(row["seconds"]) > 0, row


# Kills the engine process of one MPI rank (SIGKILL, like an OOM kill) and prints its pid.
KILL = r"""
import json, os, signal, sys
rank = sys.argv[1]
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
        environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    except OSError:
        continue
    # The rank's ipengine, not the tunnel processes it spawned (same environment).
    if b"ipyparallel.engine.app" in cmdline and f"OMPI_COMM_WORLD_RANK={rank}".encode() in environ:
        os.kill(int(pid), signal.SIGKILL)
        print(json.dumps({"pid": int(pid)}))
        break
"""


@pytest.mark.timeout(300)
def test_a_killed_rank_is_reported_and_the_world_restarts_as_a_whole(
    world: dict[str, object],
    mpi_container: Container,
    notebook: Container,
) -> None:
    mpi = world["mpi"]
    assert isinstance(mpi, dict)
    ranks: dict[str, int] = mpi["ranks"]
    old_ids = set(ranks.values())
    mpi_container.reload()
    restarts = mpi_container.attrs["RestartCount"]
    since = time.time() - 1

    code, out = mpi_container.exec_run(["python", "-c", KILL, "2"])
    assert code == 0 and json.loads(out.decode().strip().splitlines()[-1])["pid"] > 0, out

    # The supervisor names the rank, its engine and the signal, and says what happens next.
    def reported() -> bool:
        with_logs: str = logs_since(mpi_container, since)
        return "the container exits so it restarts as a whole" in with_logs

    wait_until(reported, 60, "the supervisor to report the lost rank", interval=1)
    log = logs_since(mpi_container, since)
    [report] = [line for line in log.splitlines() if "restarts as a whole" in line]
    assert f"ERROR: MPI rank 2 (engine id {ranks['2']}) " in report, report
    # How it died, as its rank process saw it: before Open MPI ended the other ranks.
    assert " was killed by signal 9 (Killed); " in report, report
    assert f"ended the other {RANKS - 1} ranks of this container's MPI world" in report

    # Meanwhile the stack's other engines keep working.
    others = python_in(
        notebook,
        "import json, ipyparallel as ipp\n"
        "rc = ipp.Client()\n"
        f"ids = [i for i in rc.ids if i not in {sorted(old_ids)!r}]\n"
        "print(json.dumps([ids, rc[ids].apply_sync(lambda x: x * x, 7)]))\n"
        "rc.close()",
        timeout=60,
    )
    assert len(others[0]) >= ENGINE_REPLICAS and others[1] == [49] * len(others[0])

    # The container restarted as a whole: a new world of 4, under new engine ids.
    wait_until(lambda: bool(world_ready(mpi_container)), 180, "the MPI world to come back")
    mpi_container.reload()
    # One restart for the kill, and one more for each new world whose registration then
    # timed out (a loaded machine), each reported as such.
    ends = [x for x in logs_since(mpi_container, since).splitlines() if "restarts as a whole" in x]
    assert ends[0] == report, ends
    assert all(" did not complete registration and hung; " in x for x in ends[1:]), ends
    assert mpi_container.attrs["RestartCount"] == restarts + len(ends)
    again = world_ready(mpi_container)
    new_mpi = again["mpi"]
    assert isinstance(new_mpi, dict) and sorted(new_mpi["ranks"]) == ["0", "1", "2", "3"]
    assert not set(new_mpi["ranks"].values()) & old_ids
    result = on_world(
        notebook,
        mpi_container,
        again,
        "view.execute('from mpi4py import MPI; r = MPI.COMM_WORLD.Get_rank()')\n"
        "result = view.pull('r')",
    )
    assert result == list(range(RANKS))
