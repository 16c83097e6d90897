"""``workloads.ipyparallel.idle_shutdown`` on the local ACI emulator: the deployment janitor
deletes an idle cluster after the idle time, and not while an ipyparallel task runs with
every kernel idle (read from the controller's ``ipp-activity`` log lines through ARM)."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import websocket

from deployer.run.deployment_janitor import IppReport, parse_ipp_log
from testbed.engine import wait_for
from testbed.run_stack import RunStack

pytestmark = pytest.mark.docker

IDLE_S = 10
"""The workload's ``idle_shutdown``: short, since every step below waits for an event, not
for a time (the controller reports every 5 s, its minimum, as for idle times up to 30 s)."""

CLUSTER = f"""\
deployment:
  name: idle
  location: westeurope
  registry: emulator.azurecr.io
  registry_auth: admin
workloads:
  ipyparallel:
    engines: 1
    vcpu_per_engine: 0.5
    memory_gb_per_engine: 1
    idle_shutdown: {IDLE_S}s
    tls: {{mode: "off"}}
"""


def _token(stack: RunStack) -> str:
    state = Path(stack.env["DEPLOYER_STATE_DIR"])
    found = next(state.rglob("*idle*"))
    doc = json.loads(found.read_text())
    return str(doc["notebook_token"])


class Cell:
    """A cell running in a new kernel of the notebook server: :meth:`finish` reads its
    stdout once it has finished (the kernel is idle afterwards)."""

    def __init__(self, base: str, token: str, code: str, timeout: float = 240) -> None:
        req = urllib.request.Request(
            f"{base}/api/kernels",
            data=b"{}",
            method="POST",
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as answer:
            kernel = json.loads(answer.read())["id"]
        self.ws = websocket.create_connection(
            f"{base.replace('http', 'ws', 1)}/api/kernels/{kernel}/channels?token={token}",
            timeout=timeout,
        )
        self.msg_id = uuid.uuid4().hex
        self.out: list[str] = []
        self.done = False
        self.ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": self.msg_id,
                        "username": "test",
                        "session": uuid.uuid4().hex,
                        "msg_type": "execute_request",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "buffers": [],
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                }
            )
        )

    def until(self, text: str) -> str:
        """Read the cell's messages until its stdout holds ``text`` or it has finished;
        return the stdout so far."""
        while text not in "".join(self.out) and not self.done:
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != self.msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                self.out.append(content["text"])
            elif kind == "error":
                raise AssertionError("\n".join(content["traceback"])[-3000:])
            elif kind == "execute_reply":
                assert content["status"] == "ok", content
                self.done = True
        return "".join(self.out)

    def finish(self) -> str:
        """Wait for the cell to end; return its stdout."""
        try:
            return self.until("\0")  # no stdout holds NUL: reads to the end
        finally:
            self.ws.close()


KERNEL_GO = "/tmp/test-kernel-go"
TASK_GO = "/tmp/test-task-go"

# The kernel submits a task that runs until the test creates TASK_GO in the engine's
# container, then stays busy until the test creates KERNEL_GO in the notebook's: so the
# controller has reported the running task before the kernel goes idle, and from then on
# only the controller's task activity keeps the cluster alive, for as long as the test
# needs.
SUBMIT = f"""
import os, time, ipyparallel as ipp

def held(path, limit=900):
    import os, time
    end = time.monotonic() + limit
    while not os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.2)
    return os.path.exists(path)

rc = ipp.Client()
rc.wait_for_engines(1, timeout=180)
ar = rc.load_balanced_view().apply_async(held, {TASK_GO!r})
print("submitted", ar.msg_ids[0], flush=True)
while not os.path.exists({KERNEL_GO!r}):
    time.sleep(0.2)
"""


def test_idle_cluster_is_deleted_after_the_idle_time_but_not_while_a_task_runs(
    run_stack: RunStack, tmp_path: Path
) -> None:
    stack = run_stack
    workload = tmp_path / "idle.yaml"
    workload.write_text(CLUSTER)
    up = stack.deployer("up", str(workload), DEPLOYER_JANITOR_INTERVAL="2")
    assert up.returncode == 0, up.stderr[-3000:]
    assert "idle-janitor" in stack.groups("idle")
    head = stack.arm.aci.docker_ids("research", "idle-head")
    assert head
    ip = stack.client.containers.get(head["(sandbox)"]).attrs["NetworkSettings"]["Networks"]
    address = next(iter(ip.values()))["IPAddress"]
    base = f"http://{address}:8888"
    token = _token(stack)
    wait_for(lambda: _answers(base, token), 120, "the notebook server")
    cell = Cell(base, token, SUBMIT)

    assert "submitted" in cell.until("submitted")

    def report() -> IppReport | None:
        logs = stack.deployer("logs", "idle-head", "ipcontroller", "--file", str(workload))
        return parse_ipp_log(logs.stdout)

    def task_running() -> bool:
        found = report()
        return found is not None and found.running == 1

    # What the janitor reads: the controller's own report of the running task, logged while
    # the kernel is still busy.
    wait_for(task_running, 180, "the controller to report the running task", interval=0.5)
    _touch(stack, "idle-head", "notebook", KERNEL_GO)
    cell.finish()
    # The kernel's last activity: from here it is idle, and the task runs until released.
    kernel_idle = time.time()
    # Two janitor passes ending after the kernel's idle time: the second began after it (the
    # passes run one after the other), so without the task's activity it would have deleted
    # the cluster instead of recording its pass.
    beats = _Beats(stack)
    wait_for(
        lambda: stack.groups("idle") == [] or beats.two_after(kernel_idle + IDLE_S + 1),
        300,
        "two janitor passes past the kernel's idle time",
        interval=0.5,
    )
    assert "idle-head" in stack.groups("idle"), "deleted while an ipyparallel task was running"
    assert task_running(), "the held task no longer runs"
    released = time.time()
    _touch(stack, "idle-engines-1", "ipengine", TASK_GO)
    wait_for(lambda: stack.groups("idle") == [], 300, "idle shutdown", interval=0.5)
    elapsed = time.time() - released
    # The task ended after its release, and the controller's next report says so; deletion
    # needs IDLE_S of idle time after that.
    assert elapsed >= IDLE_S, f"deleted {elapsed:.0f} s after the task was released"
    assert stack.containers() == [], "containers left after the idle shutdown"


def _container(stack: RunStack, group: str, prefix: str) -> Any:
    """The Docker container of the group's ACI container whose name starts with ``prefix``."""
    ids = stack.arm.aci.docker_ids("research", group)
    name = next(n for n in ids if n.startswith(prefix))
    return stack.client.containers.get(ids[name])


def _touch(stack: RunStack, group: str, prefix: str, path: str) -> None:
    """Create ``path`` in a container of ``group`` (a signal to the code waiting on it)."""
    code, out = _container(stack, group, prefix).exec_run(["touch", path])
    assert code == 0, out


class _Beats:
    """The janitor's heartbeat (:mod:`deployer.run.heartbeat`): touched after each pass
    that deleted nothing."""

    def __init__(self, stack: RunStack) -> None:
        self.janitor = _container(stack, "idle-janitor", "janitor")
        self.seen: list[float] = []

    def two_after(self, moment: float) -> bool:
        """True once two passes have ended after ``moment`` (epoch seconds)."""
        code, out = self.janitor.exec_run(
            ["python3", "-c", READ_BEAT], environment={"PYTHONDONTWRITEBYTECODE": "1"}
        )
        if code != 0:
            return False
        mtime = float(out.decode().strip())
        if mtime >= moment and mtime not in self.seen:
            self.seen.append(mtime)
        return len(self.seen) >= 2


READ_BEAT = (
    "import os; from deployer.run.heartbeat import HEARTBEAT; print(os.stat(HEARTBEAT).st_mtime)"
)


def _answers(base: str, token: str) -> bool:
    req = urllib.request.Request(f"{base}/api/kernels", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5):
            return True
    except OSError:
        return False
