"""The engine image's Open MPI: mpi4py built against Debian's Open MPI, only its runtime in the
image, and 4 ranks in one container with the image's MCA settings, even where the kernel refuses
single-copy transfers between ranks (CMA)."""

from __future__ import annotations

import json
import re

from testbed.engine import ImageRunner

# 4 ranks: an Allreduce of 1 MiB of float64 and a Bcast of 8 MiB, both past the shared-memory
# transport's eager limit, where Open MPI uses single-copy transfers (CMA) if it may. Each
# rank first makes itself undumpable, so its siblings may not read its memory: what Docker's
# ptrace restrictions (no CAP_SYS_PTRACE, Yama ptrace_scope 1) do to ranks on many hosts.
RANKS_CODE = """
import ctypes, json
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
import numpy as np
from mpi4py import MPI
comm = MPI.COMM_WORLD
part = np.full(1 << 17, comm.Get_rank() + 1.0)
total = np.empty_like(part)
comm.Allreduce(part, total)
data = np.arange(1 << 20, dtype=np.float64) if comm.Get_rank() == 0 else np.zeros(1 << 20)
comm.Bcast(data, root=0)
print(json.dumps({
    "rank": comm.Get_rank(), "size": comm.Get_size(),
    "sum": sorted(set(total.tolist())), "bcast": bool((data == np.arange(1 << 20)).all()),
}), flush=True)
"""
REFUSED = "processes do not have the necessary permissions"


def test_four_ranks_are_right_where_ranks_may_not_read_each_other(run_image: ImageRunner) -> None:
    code, logs = run_image.run(
        "ipengine",
        timeout=120,
        command=["timeout", "60", "mpiexec", "-n", "4", "python", "-c", RANKS_CODE],
        # Verbose single-copy selection, to see that Open MPI tried CMA and was refused.
        environment={"OMPI_MCA_smsc_base_verbose": "100"},
        nano_cpus=2_000_000_000,
    )
    assert code == 0, logs[-3000:]
    assert REFUSED in logs, "CMA was not refused: the test's condition does not hold"
    # The ranks print concurrently: mpiexec may put two reports on one line.
    reports = [json.loads(text) for text in re.findall(r"\{[^{}]*\}", logs)]
    assert sorted(r["rank"] for r in reports) == [0, 1, 2, 3]
    assert all(r["size"] == 4 and r["sum"] == [10.0] and r["bcast"] for r in reports), reports


def test_mpi4py_is_built_against_debians_open_mpi_and_only_its_runtime_is_in_the_image(
    run_image: ImageRunner,
) -> None:
    script = (
        "import json, shutil\n"
        "from mpi4py import MPI\n"
        "print(json.dumps({'library': MPI.Get_library_version(), 'so': MPI.__file__,"
        " 'mpiexec': shutil.which('mpiexec'), 'gcc': shutil.which('gcc'),"
        " 'cc': shutil.which('cc')}))"
    )
    code, logs = run_image.run("ipengine", command=["python", "-c", script])
    assert code == 0, logs
    report = json.loads(logs.strip().splitlines()[-1])
    assert report["library"].startswith("Open MPI v5."), report["library"]
    assert report["mpiexec"] == "/usr/bin/mpiexec"
    assert report["gcc"] is None and report["cc"] is None
    # Built here from source (a wheel tagged for this platform, not a PyPI manylinux one),
    # linked to Debian's libmpi; no headers in the image.
    check = (
        f"ldd {report['so']}; cat /opt/venv/lib/python3*/site-packages/mpi4py-*.dist-info/WHEEL;"
        " ls /usr/include/*/openmpi /usr/lib/*/openmpi/include 2>&1; true"
    )
    code, out = run_image.run("ipengine", command=["sh", "-c", check])
    assert re.search(r"libmpi\.so\.40 => \S*/libmpi\.so\.40", out), out
    assert re.search(r"Tag: cp3\d+-cp3\d+-linux_", out), out
    assert "No such file or directory" in out and "mpi.h" not in out, out
