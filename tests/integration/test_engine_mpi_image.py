"""The engine image's Open MPI: mpi4py built against Debian's Open MPI, only its runtime in the
image, and the image's MCA settings enough for 4 ranks in one container, even where the kernel
refuses single-copy transfers between ranks (CMA)."""

from __future__ import annotations

import json

from tests.integration.conftest import ImageRunner

# 4 ranks: an Allreduce of 1 MiB of float64 and a Bcast of 8 MiB, both past the shared-memory
# transport's eager limit, where Open MPI would use CMA single-copy transfers.
RANKS_CODE = """
import json
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

# Docker's default profile, minus single-copy transfers between processes: what a host with
# Yama ptrace_scope 1 does to sibling ranks without CAP_SYS_PTRACE (EPERM).
NO_CMA = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
        {
            "names": ["process_vm_readv", "process_vm_writev"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 1,
        }
    ],
}


def run_ranks(run_image: ImageRunner, **environment: str) -> tuple[int, str]:
    """Run RANKS_CODE on 4 ranks in the engine image, with CMA refused by seccomp.

    Args:
        run_image (ImageRunner): The image runner.
        **environment (str): Extra environment, e.g. an MCA setting.
    """
    return run_image.run(
        "ipengine",
        timeout=120,
        command=["timeout", "60", "mpiexec", "-n", "4", "python", "-c", RANKS_CODE],
        environment=environment,
        security_opt=[f"seccomp={json.dumps(NO_CMA)}"],
        nano_cpus=2_000_000_000,
    )


def test_four_ranks_allreduce_and_bcast_with_cma_refused(run_image: ImageRunner) -> None:
    code, logs = run_ranks(run_image)
    assert code == 0, logs[-3000:]
    reports = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert sorted(r["rank"] for r in reports) == [0, 1, 2, 3]
    assert all(r["size"] == 4 and r["sum"] == [10.0] and r["bcast"] for r in reports), reports


def test_without_the_images_cma_setting_the_same_ranks_fail(run_image: ImageRunner) -> None:
    # The control: Open MPI's default single-copy mechanism, under the same seccomp profile.
    code, logs = run_ranks(run_image, OMPI_MCA_smsc="cma")
    assert code != 0, logs[-3000:]


def test_mpi4py_is_built_against_debians_open_mpi_and_only_its_runtime_is_in_the_image(
    run_image: ImageRunner,
) -> None:
    script = (
        "import json, shutil, mpi4py\n"
        "from mpi4py import MPI\n"
        "print(json.dumps({'library': MPI.Get_library_version(), 'config': mpi4py.get_config(),"
        " 'mpiexec': shutil.which('mpiexec'), 'gcc': shutil.which('gcc'),"
        " 'cc': shutil.which('cc')}))"
    )
    code, logs = run_image.run("ipengine", command=["python", "-c", script])
    assert code == 0, logs
    report = json.loads(logs.strip().splitlines()[-1])
    assert report["library"].startswith("Open MPI v5."), report["library"]
    # Built from source here, with Debian's compiler wrapper (not a PyPI binary wheel).
    assert report["config"].get("mpicc") == "mpicc", report["config"]
    assert report["mpiexec"] == "/usr/bin/mpiexec"
    assert report["gcc"] is None and report["cc"] is None
    code, out = run_image.run(
        "ipengine",
        command=["sh", "-c", "ls /usr/include/*/openmpi /usr/lib/*/openmpi/include 2>&1; true"],
    )
    assert "No such file or directory" in out and "mpi.h" not in out, out
