"""Upstream ipyparallel examples in our notebook: ``ipp.Cluster()`` says to use ``ipp.Client()``.

The notebook server is the front door of a cluster that runs outside its container, whose
connection files are mounted read-only. ``rc = ipp.Cluster().start_and_connect_sync()``
used to start a second controller in there and die with ``OSError: Read-only file
system``; now it stops before anything starts, with one line, and ``ipp.Client()`` works.
"""

from __future__ import annotations

from docker.models.containers import Container

from testbed.cluster import python_in

MESSAGE = "this server is connected to an existing cluster: use `ipp.Client()`"

# Runs three cells as a user would (nbclient, a real kernel); reports each cell's error and
# output, any controller process in this container, and the security folder's files.
EXECUTE = """
import json, os, tempfile
import nbformat
from nbclient import NotebookClient

cells = [
    "import ipyparallel as ipp\\nrc = ipp.Cluster().start_and_connect_sync()",
    "with ipp.Cluster(n=2) as rc:\\n    pass",
    "rc = ipp.Client()\\nrc.wait_for_engines(1, timeout=60)\\nprint(len(rc.ids))",
]
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": tempfile.mkdtemp()}}).execute()
report = []
for cell in nb.cells:
    errors = [o for o in cell.outputs if o.output_type == "error"]
    report.append({
        "error": [errors[0].ename, errors[0].evalue, errors[0].traceback] if errors else None,
        "stdout": "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream"),
    })
controllers = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        args = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode()
    except OSError:
        continue
    if "NotebookClient" in args:  # this script itself
        continue
    if "ipcontroller" in args or "ipyparallel.controller" in args:
        controllers.append(args)
security = os.listdir(os.path.expanduser("~/.ipython/profile_default/security"))
print(json.dumps({"cells": report, "controllers": controllers, "security": security}))
"""


def test_upstream_cluster_example_says_to_use_client(notebook: Container) -> None:
    found = python_in(notebook, EXECUTE, timeout=300)
    report = found["cells"]
    for cell in report[:2]:
        assert cell["error"] is not None, cell
        ename, evalue, traceback = cell["error"]
        assert (ename, evalue) == ("ExistingClusterError", MESSAGE)
        assert traceback == [f"ExistingClusterError: {MESSAGE}"]  # one line, no traceback
    assert report[2]["error"] is None, report[2]
    assert int(report[2]["stdout"].strip()) >= 1
    # Nothing was started or written in the notebook container.
    assert found["controllers"] == []
    assert not [f for f in found["security"] if f.startswith("cluster-")], found["security"]
