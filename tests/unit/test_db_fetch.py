"""``deployer db fetch`` without Azure: the group spec (pure), reading its log (pure), and
what a failed fetch says."""

from __future__ import annotations

import json
import os
import signal
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from blast_client.cli.progress import FETCH_EVENT
from blast_client.ncbi import HttpSource

from aci_emulator import FAKE_TOKEN, FakeRegistry
from deployer import plan
from deployer.backends.base import ContainerStatus, ObservedGroup
from deployer.backends.memory import MemoryBackend
from deployer.cluster import Cluster
from deployer.db import follow
from deployer.db.fetch import Event, FetchOutcome, FetchRequest, fetch
from deployer.deployment_secrets import Secret
from deployer.errors import DeployerError, InputError
from deployer.plan import FETCH_TAG, Action
from deployer.plan.common import storage_env
from deployer.plan.dbfetch import (
    KIND,
    FetchArgs,
    fetch_group,
    fetch_group_name,
    fetch_resources,
)
from deployer.settings import Settings
from deployer.sizing import ACI, Resources
from deployer.workload import parse

IDENTITY = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/x/id"
SETTINGS = Settings(
    deployment="lab",
    location="westeurope",
    registry="lab.azurecr.io",
    image_tag="1.0",
    managed_identity=IDENTITY,
    managed_identity_client_id="client-id",
    storage_account="labdata",
    subnet_id="/subnets/s",
)
WORKLOAD = parse(
    "deployment: {name: lab}\nworkloads:\n  blast:\n    workers: 1\n"
    "    databases: [{name: swissprot}]\n"
)


def _group(args: FetchArgs, settings: Settings = SETTINGS) -> plan.GroupSpec:
    return fetch_group(settings, storage_env(settings, WORKLOAD), args)


def test_the_group_fetches_once_in_the_region_as_the_deployments_identity() -> None:
    group = _group(FetchArgs("swissprot"))
    assert (group.name, group.kind, group.restart_policy) == ("lab-fetch-swissprot", KIND, "Never")
    assert group.location is None  # the deployment's region (the backend's)
    assert group.identity == IDENTITY and group.subnet_id == "/subnets/s"
    assert group.registry is not None and group.registry.identity == IDENTITY
    assert group.ip is None and group.ports == ()
    [c] = group.containers
    assert c.image == "lab.azurecr.io/blast-worker:1.0"
    script = 'blast-jobs init >&2 && exec blast-jobs db fetch "$@"'
    assert c.command == ("/bin/sh", "-c", script, "db-fetch", "swissprot", "--output", "json")
    assert c.probe is None and c.mounts == ()
    # Storage through DefaultAzureCredential with the identity's client id; no secret at all.
    assert dict(c.env) == {
        "AZURE_STORAGE_ACCOUNT": "labdata",
        "AZURE_CLIENT_ID": "client-id",
        "BLAST_PROGRESS": "json",
        "BLAST_QUEUE": "blast-jobs",
    }
    assert c.secret_files == ()
    assert dict(group.tags)[FETCH_TAG] == "swissprot" and dict(group.tags)["deployment"] == "lab"


def test_the_group_is_sized_from_what_the_fetch_needs() -> None:
    # 220 MiB peak x 2 = 0.46 GB: ACI's 1 GB minimum; two vCPU for gunzip and MD5s.
    assert fetch_resources() == Resources(cpu=20, memory=10)
    assert fetch_resources().memory >= ACI.min_memory and fetch_resources().cpu <= ACI.max_cpu
    assert _group(FetchArgs("nt")).resources == fetch_resources()


def test_options_reach_the_command_and_the_name_in_storage_names_the_group() -> None:
    args = FetchArgs("swissprot", "gcp", "2024-05-01", "sp_0501")
    [c] = _group(args).containers
    assert c.command is not None and c.command[4:] == (
        "swissprot",
        "--output",
        "json",
        "--source",
        "gcp",
        "--date",
        "2024-05-01",
        "--as",
        "sp_0501",
    )
    assert _group(args).name == fetch_group_name("lab", "sp_0501")


@pytest.mark.parametrize(
    "db", ["swissprot", "16S_ribosomal_RNA", "Nt.v5", "x" * 64, "a_b", "a-b", "--"]
)
def test_group_names_are_valid_aci_names_and_keep_databases_apart(db: str) -> None:
    name = fetch_group_name("a-long-deployment-name-of-thirty", db)
    assert len(name) <= 63 and name == name.lower()
    assert all(ch.isalnum() or ch == "-" for ch in name) and "--" not in name
    assert not name.endswith("-")
    assert fetch_group_name("lab", "a_b") != fetch_group_name("lab", "a-b")


def test_locally_the_connection_string_reaches_the_group_as_a_secret_file() -> None:
    local = replace(
        SETTINGS, storage_account=None, storage_connection_string=Secret("AccountKey=k")
    )
    [c] = _group(FetchArgs("swissprot"), local).containers
    assert dict(c.env)["AZURE_STORAGE_CONNECTION_STRING_FILE"].startswith("/run/secrets/")
    assert [name for name, _ in c.secret_files] == ["azure_storage_connection_string"]


def test_up_leaves_a_running_fetch_group_alone() -> None:
    backend = MemoryBackend()
    backend.create_or_update(_group(FetchArgs("swissprot")))
    cluster = Cluster(backend)
    empty = plan.Plan("lab", "westeurope", ())
    observed = cluster.observe("lab")
    assert "lab-fetch-swissprot" in observed
    assert [c for c in cluster.changes(empty, observed) if c.action is Action.DELETE] == []


# --- the log -----------------------------------------------------------------------------


def _line(done: int, volumes_done: int, eta: float | None = 1.0) -> str:
    return json.dumps(
        {
            "event": FETCH_EVENT,
            "time": 1.0,
            "done": done,
            "total": 100,
            "volumes_done": volumes_done,
            "volumes": 2,
            "rate": 10.0,
            "eta": eta,
        }
    )


def _envelope(ok: bool, **body: object) -> str:
    return json.dumps({"command": "db fetch", "ok": ok, **body}, indent=2, sort_keys=True)


def test_the_newest_progress_line_wins_and_other_lines_are_skipped() -> None:
    log = "\n".join(
        [_line(0, 0, None), "some warning", _line(50, 1), '{"event": "other"}', "{broken"]
    )
    assert follow.last_progress(log) == follow.LogProgress(50, 100, 1, 2, 10.0, 1.0)
    assert follow.last_progress("nothing here\n") is None


def test_the_envelope_is_found_after_progress_lines_and_before_a_message() -> None:
    data = {"status": "fetched", "bytes": 100}
    log = "\n".join([_line(0, 0), _line(100, 2), _envelope(True, data=data), "bye"])
    assert follow.envelope(log) == {"command": "db fetch", "ok": True, "data": data}
    error = {"code": "fetch_failed", "message": "MD5 mismatch", "hint": "h", "exit_code": 1}
    failed = "\n".join([_line(0, 0), _envelope(False, data=None, error=error)])
    assert follow.envelope(failed) == {
        "command": "db fetch",
        "ok": False,
        "data": None,
        "error": error,
    }
    assert follow.envelope("Traceback (most recent call last):\n  boom\nValueError: x") is None


def _observed(
    state: str | None, exit_code: int | None = None, detail: str | None = None
) -> ObservedGroup:
    container = ContainerStatus(KIND, state, False, detail=detail, exit_code=exit_code)
    return ObservedGroup("g", "Succeeded", containers=(container,))


def test_the_phase_in_a_few_words() -> None:
    assert follow.phase(None) == "creating the group"
    assert follow.phase(_observed("Waiting", detail="Pulling")) == "starting (Pulling)"
    assert follow.phase(_observed("Running")) == "fetching"
    assert follow.phase(_observed("Terminated", 1)) == "finished (exit code 1)"
    assert follow.exit_code(_observed("Terminated", 0)) == 0
    assert follow.exit_code(_observed("Running")) is None


def test_a_failed_fetch_says_why_in_one_line_with_its_hint_and_exit_code() -> None:
    error = {"code": "unknown_database", "message": "no db 'x'", "hint": "h", "exit_code": 2}
    exc = follow.failure(follow.envelope(_envelope(False, data=None, error=error)), "", 2)
    assert isinstance(exc, InputError)
    assert (exc.message, exc.hint, exc.code) == (
        "the fetch failed: no db 'x'",
        "h",
        "unknown_database",
    )
    crashed = follow.failure(None, "Traceback\n  File x\nMemoryError: out of memory\n", 137)
    assert not isinstance(crashed, InputError)
    assert crashed.message == "the fetch failed: MemoryError: out of memory"


# --- the fetch's control flow, on a scripted backend -------------------------------------


class FetchBackend(MemoryBackend):
    """Runs a fetch group for ``polls`` observations, then ends it with ``code`` and ``log``
    (container times: started at 100 s, finished at 160 s)."""

    def __init__(self, log: str, code: int, polls: int = 2) -> None:
        super().__init__()
        self.log, self.code, self.polls = log, code, polls
        self.seen = 0

    def get(self, name: str) -> ObservedGroup | None:
        group = super().get(name)
        if group is None or group.terminated:
            return group
        self.seen += 1
        done = self.seen > self.polls
        c = group.containers[0]
        c = replace(c, started=100.0, state="Terminated" if done else "Running")
        if done:
            c = replace(c, finished=160.0, exit_code=self.code)
        self.groups[name] = group = replace(group, containers=(c,))
        return group

    def logs(self, group: str, container: str, tail: int | None = None) -> str:
        self._record("logs", group)
        return self.log if self.seen > self.polls else _line(10, 0)


LAB = """\
deployment: {name: lab, location: westeurope, registry: lab.azurecr.io,
             managed_identity: /x/id, managed_identity_client_id: cid, storage_account: labdata}
workloads:
  blast: {workers: 1, databases: [{name: swissprot}]}
"""


@pytest.fixture
def request_(
    tmp_path: Path,
    deployer_env: dict[str, str],
    fake_registry: FakeRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> FetchRequest:
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "sub")
    monkeypatch.setenv("DEPLOYER_RESOURCE_GROUP", "rg")
    # The image check asks the registry with an ACR token for this token (managed identity).
    monkeypatch.setenv("DEPLOYER_REGISTRY_ENDPOINT", fake_registry.server)
    monkeypatch.setenv("DEPLOYER_ACCESS_TOKEN", FAKE_TOKEN)
    path = tmp_path / "lab.yaml"
    path.write_text(LAB)
    # A source nobody listens on: this machine cannot read it, so the group is left to try.
    return FetchRequest(path, FetchArgs("swissprot", "http://127.0.0.1:9/db"))


def _fetch(request: FetchRequest, backend: MemoryBackend, events: list[Event]) -> FetchOutcome:
    return fetch(
        request,
        backend_factory=lambda settings: backend,
        on_event=events.append,
        interval=0.001,
        http=HttpSource(retries=0, timeout=2.0),
    )


SUCCESS = _envelope(True, data={"status": "fetched", "bytes": 100, "db": "swissprot"})


def test_a_fetch_is_followed_billed_from_its_own_times_and_deleted(request_: FetchRequest) -> None:
    backend = FetchBackend(_line(100, 2) + "\n" + SUCCESS, 0)
    events: list[Event] = []
    outcome = _fetch(request_, backend, events)
    assert (outcome.group, outcome.status, outcome.result["bytes"]) == (
        "lab-fetch-swissprot",
        "fetched",
        100,
    )
    [line] = outcome.bill.lines
    assert (line.kind, line.seconds, line.vcpu_seconds, line.gb_seconds) == (KIND, 60, 120, 60)
    assert outcome.bill.cost > 0
    phases = [e.phase for e in events]
    assert phases[0] == "creating the group in westeurope" and "fetching" in phases
    assert phases[-2:] == ["finished (exit code 0)", "deleting the group"]
    assert events[-1].progress == follow.LogProgress(100, 100, 2, 2, 10.0, 1.0)
    assert backend.groups == {} and backend.count("put") == 1


def test_a_failed_fetch_is_one_error_and_its_group_is_deleted(request_: FetchRequest) -> None:
    error = {"code": "fetch_failed", "message": "MD5 mismatch", "hint": "resume", "exit_code": 1}
    backend = FetchBackend(_envelope(False, data=None, error=error), 1)
    with pytest.raises(DeployerError) as info:
        _fetch(request_, backend, [])
    assert not isinstance(info.value, InputError)
    assert info.value.message.startswith("the fetch failed: MD5 mismatch; group lab-fetch-")
    assert "(120 vCPU-s, 60 GB-s, " in info.value.message and info.value.hint == "resume"
    assert backend.groups == {}


def test_ctrl_c_deletes_the_group_and_says_how_to_resume(request_: FetchRequest) -> None:
    backend = FetchBackend(SUCCESS, 0, polls=100)

    def interrupt(event: Event) -> None:
        if event.phase == "fetching":
            raise KeyboardInterrupt

    with pytest.raises(DeployerError) as info:
        fetch(
            request_,
            backend_factory=lambda settings: backend,
            on_event=interrupt,
            interval=0.001,
            http=HttpSource(retries=0, timeout=2.0),
        )
    assert info.value.message.startswith("interrupted: the fetch was stopped; group lab-fetch")
    assert info.value.hint is not None and "run the same command again" in info.value.hint
    assert backend.groups == {} and backend.count("delete") == 1


class CtrlC(FetchBackend):
    """A successful fetch, and a real Ctrl-C (SIGINT to this process) at the moment named:
    at a phase event, or while the group is deleted."""

    def __init__(self, at: str) -> None:
        super().__init__(SUCCESS, 0)
        self.at = at

    def press(self) -> None:
        assert threading.current_thread() is threading.main_thread()  # else it stops pytest
        os.kill(os.getpid(), signal.SIGINT)

    def on_event(self, event: Event) -> None:
        if event.phase == self.at:
            self.press()

    def delete(self, name: str) -> bool:
        if self.at == "delete":
            self.press()
        return super().delete(name)


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("fetching", "interrupted: the fetch was stopped; group lab-fetch-swissprot deleted"),
        # As the fetch ends, and during the deletion (the signal was ignored there: exit 0).
        ("finished (exit code 0)", "interrupted: the fetch had already ended (exit code 0); "),
        ("deleting the group", "interrupted: the fetch had already ended (exit code 0); "),
        ("delete", "interrupted: the fetch had already ended (exit code 0); "),
    ],
)
def test_ctrl_c_at_any_moment_ends_interrupted_and_deletes_the_group(
    request_: FetchRequest, at: str, message: str
) -> None:
    backend = CtrlC(at)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(DeployerError) as info:
        fetch(
            request_,
            backend_factory=lambda settings: backend,
            on_event=backend.on_event,
            interval=0.001,
            http=HttpSource(retries=0, timeout=2.0),
        )
    assert info.value.message.startswith(message), info.value.message
    assert info.value.code == "Interrupted" and info.value.exit_code == 1
    assert backend.groups == {} and backend.count("delete") == 1
    assert signal.getsignal(signal.SIGINT) is before


def test_a_finished_group_left_behind_is_deleted_and_a_running_one_followed(
    request_: FetchRequest,
) -> None:
    backend = FetchBackend(SUCCESS, 0)
    spec = fetch_group(SETTINGS, {}, FetchArgs("swissprot"))
    MemoryBackend.create_or_update(backend, spec)
    backend.seen = 99  # that one has ended
    events: list[Event] = []
    _fetch(request_, backend, events)
    assert events[0].phase == "deleting a finished fetch group left by an earlier run"
    assert backend.count("put") == 2 and backend.groups == {}

    running = FetchBackend(SUCCESS, 0)
    MemoryBackend.create_or_update(running, spec)
    events = []
    assert _fetch(request_, running, events).status == "fetched"
    assert events[0].phase == "following the fetch already running in this group"
    assert running.count("put") == 1 and running.groups == {}  # no second group
