"""An engine killed mid-run: its task is retried on another engine, the 200-task map completes
with correct results, and the engine's container restarts and registers again."""

from __future__ import annotations

import json
import re
import time

import docker
import pytest
from docker.models.containers import Container

from testbed.cluster import ENGINE_REPLICAS, cluster_settled, logs_since, python_in, wait_until
from testbed.engine import exec_text

TASKS = 200
PROGRESS = "/tmp/engine-loss-progress"
RESULT = "/tmp/engine-loss-result.json"

# The client, run in the background in the notebook container: a load-balanced map with
# retries, whose progress and result go to files the test reads.
MAP = f"""
import json, time
import ipyparallel as ipp

rc = ipp.Client()
rc.wait_for_engines({ENGINE_REPLICAS}, timeout=60)
view = rc.load_balanced_view()
view.retries = 3

def task(x):
    import os, time
    # A marker in the engine's container while the task runs, so the kill lands mid-task.
    with open("/tmp/task-running", "w") as fh:
        fh.write(str(x))
    time.sleep(0.15)
    os.remove("/tmp/task-running")
    return [x, x * x, os.getpid()]

result = view.map_async(task, range({TASKS}))
while not result.wait(0.2):
    with open({PROGRESS!r}, "w") as fh:
        fh.write(str(result.progress))
values = result.get()
with open({RESULT!r}, "w") as fh:
    json.dump({{"values": values, "engine_ids": result.engine_id}}, fh)
"""

# Kills the ipengine process (SIGKILL, like an OOM kill) that the supervisor started while it
# runs a task, and prints its engine id from the supervisor's health endpoint. It stops the
# engine (SIGSTOP) before looking at the task marker, so a marker it sees is of a task still
# running when the kill lands; otherwise it lets the engine go on and looks again.
KILL = r"""
import json, os, signal, time, urllib.request
health = json.load(urllib.request.urlopen("http://127.0.0.1:8081/healthz", timeout=5))
procs = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except OSError:
        continue
    procs[int(pid)] = (cmdline, ppid)
supervisor = {p for p, (cmd, _) in procs.items() if cmd[1:2] == [b"/usr/local/bin/start-ipengines"]}
(engine,) = [p for p, (cmd, ppid) in procs.items()
             if ppid in supervisor and any(b"ipyparallel.engine.app" in c for c in cmd)]
def stopped():
    try:
        return all(open(f"/proc/{engine}/task/{t}/stat").read().rsplit(")", 1)[1].split()[0]
                   in "TtZX" for t in os.listdir(f"/proc/{engine}/task"))
    except OSError:  # a thread ended meanwhile
        return False
while True:
    os.kill(engine, signal.SIGSTOP)
    while not stopped():
        time.sleep(0.0005)
    if os.path.exists("/tmp/task-running"):
        break
    os.kill(engine, signal.SIGCONT)
    time.sleep(0.002)
os.kill(engine, signal.SIGKILL)
print(json.dumps({"pid": engine, "ids": health["ids"]}))
"""


def progress(notebook: Container) -> int:
    """Tasks the background map has finished so far (0 before it starts).

    Args:
        notebook (Container): The notebook container running the map.
    """
    code, text = exec_text(notebook, ["cat", PROGRESS])
    return int(text) if code == 0 and text.strip().isdigit() else 0


@pytest.mark.timeout(300)
def test_killed_engine_task_is_retried_and_all_results_are_correct(
    docker_client: docker.DockerClient,
    stack: str,
    notebook: Container,
    controller: Container,
    engines: list[Container],
) -> None:
    exec_text(notebook, ["rm", "-f", PROGRESS, RESULT])
    victim = engines[0]
    # A marker left by a task killed in an earlier run of this container would be stale.
    exec_text(victim, ["rm", "-f", "/tmp/task-running"])
    notebook.exec_run(["timeout", "240", "python", "-c", MAP], detach=True)
    wait_until(lambda: progress(notebook) >= 20, 90, "the map to get going", interval=0.3)

    since = time.time() - 1
    killed = python_in(victim, KILL, timeout=30)
    (engine_id,) = killed["ids"]
    done_at_kill = progress(notebook)
    assert done_at_kill < TASKS - 50, "the map finished before the kill: nothing was tested"

    def finished() -> bool:
        return exec_text(notebook, ["test", "-f", RESULT])[0] == 0

    wait_until(finished, 180, "the map to finish after the kill")
    code, text = exec_text(notebook, ["cat", RESULT])
    assert code == 0, text
    result = json.loads(text)

    # Every one of the 200 results is there, in order, and correct.
    assert [v[:2] for v in result["values"]] == [[x, x * x] for x in range(TASKS)]

    # The controller saw the engine die with a task on it and ran that task elsewhere.
    log = logs_since(controller, since)
    assert f"unregister_engine({engine_id})" in log, log[-3000:]
    # The hub logs each dispatch ("arrived on"); a retried task arrives on a second engine.
    arrivals: dict[str, list[int]] = {}
    for task, engine in re.findall(r"task::task '([^']+)' arrived on (\d+)", log):
        arrivals.setdefault(task, []).append(int(engine))
    finished_on = {
        task: int(engine)
        for task, engine in re.findall(r"task::task '([^']+)' finished on (\d+)", log)
    }
    retried = {t: e for t, e in arrivals.items() if e[0] == engine_id and len(e) > 1}
    assert retried, "no task of the killed engine was retried elsewhere"
    for task, dispatched in retried.items():
        assert dispatched[-1] != engine_id and finished_on.get(task) == dispatched[-1], task
    assert engine_id not in result["engine_ids"][-10:]

    # The container restarted and its new engine registered; the dead one is gone.
    victim.reload()
    wait_until(
        lambda: cluster_settled(docker_client, stack, notebook), 120, "the engine to come back"
    )
    victim.reload()
    assert victim.attrs["RestartCount"] >= 1
    code, health = exec_text(victim, ["/usr/local/bin/healthcheck"])
    assert code == 0, health
    new_ids = json.loads(health.strip().splitlines()[-1])["ids"]
    assert new_ids and engine_id not in new_ids
