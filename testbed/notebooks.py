"""The shipped notebooks, run headless (nbclient) in the notebook container of a stack."""

from __future__ import annotations

from docker.models.containers import Container

from testbed.cluster import python_in
from testbed.engine import REPO

NOTEBOOKS = REPO / "images" / "notebook" / "notebooks"
SHIPPED = "/opt/aci-research/notebooks"
MONTE_CARLO = "monte-carlo-options.ipynb"
BLAST = "blast-search.ipynb"
MPI_PI = "mpi-pi.ipynb"  # executed in test_mpi.py, beside an MPI engine container

# Executes a shipped notebook in a scratch folder (not the user's ~/work) and reports its
# errors, the MIME types of its outputs and the files it wrote.
EXECUTE = """
import json, os, shutil, sys, tempfile
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

name = {name!r}
work = tempfile.mkdtemp(prefix="nbtest-")
nb = nbformat.read(os.path.join({shipped!r}, name), as_version=4)
error = None
try:
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={{"metadata": {{"path": work}}}}).execute()
except CellExecutionError as exc:
    error = str(exc)[-3000:]
outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
files = {{f: open(os.path.join(work, f)).read() for f in os.listdir(work)
         if f.endswith(".csv")}}
shutil.rmtree(work)
print(json.dumps({{
    "error": error,
    "errors": [o.get("ename", "") + ": " + o.get("evalue", "") for o in outputs
               if o.output_type == "error"],
    "mimetypes": sorted({{m for o in outputs for m in o.get("data", {{}})}}),
    "images": sum("image/png" in o.get("data", {{}}) for o in outputs),
    "files": files,
}}))
"""


def execute(notebook: Container, name: str) -> dict[str, object]:
    """Run one shipped notebook in the notebook container; return its report.

    Args:
        notebook (Container): The notebook container.
        name (str): The notebook's file name.
    """
    report: dict[str, object] = python_in(
        notebook, EXECUTE.format(name=name, shipped=SHIPPED), timeout=600
    )
    assert report["error"] is None, report["error"]
    assert report["errors"] == []
    return report
