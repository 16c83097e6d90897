"""Median round trip of a no-op task: an engine through the SSH tunnel versus one connected
directly (target: at most 5 ms through the tunnel).

The client runs in the notebook container, beside the controller, as a user's notebook does.
The tunnelled engine is one of the stack's engine containers; the direct engine is started
for the benchmark inside the notebook container, which shares the controller's network
namespace, and connects to the loopback ports without SSH. It is stopped afterwards. Both are
timed through a direct view and through a load-balanced view. Run from the repository root,
with the images built:

    .venv/bin/python bench/bench_cluster_roundtrip.py [--project aci-research] [--tasks 1000]
        [--smoke]

Without ``--project`` it starts (and removes) a private compose stack.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from testbed.bench import run
from testbed.cluster_stack import cluster_stack, run_python, service
from testbed.engine import StackError

SECURITY = "/home/research/.ipython/profile_default/security"

# Starts an engine in the notebook container from the controller's engine file minus its
# "ssh" field, so it connects straight to 127.0.0.1; marks it with BENCH_DIRECT.
START_DIRECT = f"""
import json, os, subprocess
info = json.load(open("{SECURITY}/ipcontroller-engine.json"))
info.pop("ssh", None)
env = dict(os.environ, IPP_CONNECTION_INFO=json.dumps(info), BENCH_DIRECT="1")
proc = subprocess.Popen(
    ["ipengine", "--IPEngine.enable_nanny=False", "--log-level=WARN"],
    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
)
print(json.dumps({{"pid": proc.pid}}))
"""

CLIENT = """
import json, os, statistics, time
import ipyparallel as ipp

rc = ipp.Client()
deadline = time.monotonic() + 120
while True:
    try:
        where = rc[:].apply_sync(lambda: __import__("os").environ.get("BENCH_DIRECT") == "1")
    except ipp.error.CompositeError:  # an engine went away meanwhile: ask again
        time.sleep(1)
        continue
    marks = dict(zip(rc.ids, where))
    if any(marks.values()) or time.monotonic() > deadline:
        break
    time.sleep(1)
direct = [e for e, d in marks.items() if d]
tunnel = [e for e, d in marks.items() if not d]
if not direct or not tunnel:
    raise SystemExit(f"need a direct and a tunnelled engine, found {{marks}}")

def noop():
    return None

def median_ms(view, n):
    for _ in range(50):
        view.apply_sync(noop)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        view.apply_sync(noop)
        times.append(time.perf_counter() - started)
    times.sort()
    return {{"median": 1000 * statistics.median(times), "p90": 1000 * times[int(0.9 * n)]}}

rows = []
for path, engine in (("tunnel", tunnel[0]), ("direct", direct[0])):
    rows.append({{"path": path, "view": "direct view", **median_ms(rc[engine], {tasks})}})
    lb = rc.load_balanced_view(targets=[engine])
    rows.append({{"path": path, "view": "load-balanced", **median_ms(lb, {tasks})}})
# Shut the direct engine down through the hub, which then drops it at once: killed, it would
# stay listed until the hub's heartbeat gives up on it (30 s).
rc.shutdown(targets=direct, block=True)
rc.close()
print(json.dumps(rows))
"""


def main(
    project: Annotated[
        str | None, typer.Option(help="use this running compose stack (make up: aci-research)")
    ] = None,
    tasks: Annotated[int, typer.Option(help="timed round trips per case")] = 1000,
) -> None:
    """Parse the options, run the benchmark, print the figures."""
    try:
        with cluster_stack(project) as project:
            notebook = service(project, "notebook")
            pid = json.loads(run_python(notebook, START_DIRECT).strip().splitlines()[-1])["pid"]
            try:
                output = run_python(notebook, CLIENT.format(tasks=tasks))
            finally:
                # In case the client failed before it shut the engine down.
                notebook.exec_run(["python", "-c", f"import os; os.kill({pid}, 15)"])
    except StackError as exc:
        sys.exit(str(exc))
    rows = json.loads(output.strip().splitlines()[-1])
    print(f"no-op task round trip from the notebook container, {tasks} tasks per case")
    print(f"{'engine':>8} {'view':>14} {'median (ms)':>12} {'p90 (ms)':>9}")
    for row in rows:
        print(f"{row['path']:>8} {row['view']:>14} {row['median']:>12.2f} {row['p90']:>9.2f}")
    print("target: median at most 5 ms through the tunnel")


if __name__ == "__main__":
    run(main, smoke={"tasks": 20})
