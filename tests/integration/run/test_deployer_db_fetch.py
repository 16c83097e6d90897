"""``deployer db fetch`` on the local ACI emulator: the fetch runs in a one-off group.

Real parts: the emulator runs the group as a container of this build's blast-worker image,
which fetches from a local mirror in NCBI's layout (built with makeblastdb and blastdbcmd by
:mod:`testbed.ncbi_mirror`) into the stack's Azurite. The mirror listens on the
emulator network's gateway, so this machine (the deployer's look at the source) and the
group reach it at one URL. Storage reaches the group as the run workers' does: the
connection string as a secret file (the emulator has no managed identity endpoint; in Azure
the group's identity signs in, which the group spec's unit tests check).

Faults happen by construction: a frozen transfer (the mirror holds the volume mid-way until
released) keeps the fetch running while the test interrupts it; a wrong ``.md5`` fails it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from azure.storage.blob import ContainerClient

from testbed.blast_stack import BlastTools
from testbed.mirror_server import MirrorServer
from testbed.ncbi_mirror import (
    BuiltDb,
    build,
    package,
    protein_fasta,
    snapshot,
    write_indexes,
)
from testbed.run_stack import BIN, RunStack

DB = "fetchdb"
WORKLOAD = """\
deployment:
  name: {name}
  location: westeurope
  registry: emulator.azurecr.io
  registry_auth: admin
workloads:
  blast:
    workers: 2
    threads_per_worker: 1
    databases:
      - {{name: {db}}}
"""


@dataclass
class Mirror:
    """The mirror: one protein database, served flat and with a wrong ``.md5`` (``bad``)."""

    server: MirrorServer
    db: BuiltDb
    metadata: dict[str, Any]
    host: str

    def url(self, where: str = "flat") -> str:
        return self.server.url(where, host=self.host)


@pytest.fixture(scope="module")
def mirror(run_stack: RunStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirror]:
    """Build the database with the worker image's makeblastdb, package it as NCBI does and
    serve it on the emulator network's gateway."""
    root = tmp_path_factory.mktemp("ncbi")
    tools = BlastTools(docker.from_env(), root, f"dbfetch-{secrets.token_hex(3)}")
    try:
        subjects, queries = protein_fasta(DB, 2000, 300, 5, seed=3)
        db = build(tools.run, root / "work", DB, "protein", subjects, queries, "Fetch test")
        flat = root / "mirror" / "flat"
        metadata = package(tools.run, db, flat)
        write_indexes(flat, [metadata])
    finally:
        tools.close()
    bad = snapshot(flat, root / "mirror", "bad", latest=False)
    tarball = f"{DB}.tar.gz.md5"
    (bad / tarball).unlink()  # a hard link: replace, do not edit
    (bad / tarball).write_text(f"0123456789abcdef0123456789abcdef  {DB}.tar.gz\n")
    gateway = run_stack.arm.emulator.gateway
    with MirrorServer(root / "mirror", host=gateway) as server:
        yield Mirror(server, db, metadata, gateway)


def workload(stack: RunStack, name: str) -> Path:
    path = stack.root / f"{name}.yaml"
    path.write_text(WORKLOAD.format(name=name, db=DB))
    return path


def db_container(stack: RunStack) -> ContainerClient:
    return ContainerClient.from_connection_string(stack.connection_string, "blastdb")


def manifest(stack: RunStack, name: str) -> dict[str, Any] | None:
    blob = db_container(stack).get_blob_client(f"{name}/manifest.json")
    if not blob.exists():
        return None
    doc: dict[str, Any] = json.loads(blob.download_blob().readall())
    return doc


def fetch_puts(stack: RunStack, group: str) -> list[dict[str, Any]]:
    """Bodies of the PUTs that created ``group``."""
    return [c.body for c in stack.arm.calls(method="PUT") if c.path.endswith(f"/{group}")]


def test_the_fetch_runs_in_a_group_fills_storage_is_billed_and_leaves_nothing(
    run_stack: RunStack, mirror: Mirror
) -> None:
    stack = run_stack
    path = workload(stack, "dbf")
    group = "dbf-fetch-fetchdb"

    planned = stack.run_json("db", "fetch", str(path), DB, "--source", mirror.url(), "--plan")
    [row] = planned["data"]["groups"]
    assert (row["name"], row["vcpu"], row["memory_gb"], row["action"]) == (
        group,
        "2",
        "1",
        "create",
    )
    assert row["cost_per_hour"] > 0
    assert any("1 volumes" in n for n in planned["data"]["notes"]), planned["data"]["notes"]
    assert not fetch_puts(stack, group)  # the plan created nothing

    proc = stack.deployer("db", "fetch", str(path), DB, "--source", mirror.url())
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Progress from the group's log: the phases, then the transfer as plain lines.
    assert f"{group}: creating the group in westeurope" in proc.stderr
    assert "MiB/s" in proc.stderr and "1/1 volumes" in proc.stderr, proc.stderr
    # The bill from the group's own start and stop times.
    assert f"fetched {DB} from {mirror.url()}" in proc.stdout, proc.stdout
    assert "billed" in proc.stdout and f"{group}" in proc.stdout and "db-fetch" in proc.stdout
    assert stack.groups("dbf") == []

    [body] = fetch_puts(stack, group)
    props = body["properties"]
    assert props["restartPolicy"] == "Never"
    [container] = props["containers"]
    assert container["properties"]["resources"]["requests"] == {"cpu": 2.0, "memoryInGB": 1.0}
    command = container["properties"]["command"]
    assert command[4:] == [DB, "--output", "json", "--source", mirror.url()]
    assert "blast-jobs init" in command[2] and "exec blast-jobs db fetch" in command[2]

    doc = manifest(stack, DB)
    assert doc is not None and doc["bytes_to_cache"] == mirror.metadata["bytes-to-cache"]
    original = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in mirror.db.files()}
    assert {n: e["md5"] for n, e in doc["files"].items()} == original

    # Sizing from metadata: the workload names the database without a size.
    planned = stack.run_json("plan", str(path))
    [size] = planned["data"]["databases"]
    assert (size["name"], size["source"]) == (DB, "storage manifest")
    assert size["bytes_to_cache"] == mirror.metadata["bytes-to-cache"]
    assert size["detail"].startswith("container blastdb of account testrun")

    # Fetched again: current, nothing transferred, still billed and deleted (JSON envelope).
    again = stack.run_json("db", "fetch", str(path), DB, "--source", mirror.url())
    data = again["data"]
    assert (again["command"], data["status"], data["result"]["bytes"]) == ("db fetch", "current", 0)
    assert [line["kind"] for line in data["bill"]["lines"]] == ["db-fetch"]
    assert data["bill"]["vcpu_seconds"] > 0 and data["bill"]["cost"] > 0
    assert stack.groups("dbf") == []


def test_failures_are_one_line_and_leave_no_group(run_stack: RunStack, mirror: Mirror) -> None:
    stack = run_stack
    path = workload(stack, "dbfail")

    # An unknown name is refused here, before any group exists.
    proc = stack.deployer("db", "fetch", str(path), "nosuchdb", "--source", mirror.url())
    assert proc.returncode == 2, proc.stderr
    assert "nosuchdb" in proc.stderr and DB in proc.stderr, proc.stderr
    assert not fetch_puts(stack, "dbfail-fetch-nosuchdb")

    # An MD5 mismatch fails in the group: one line (and its hint), the group deleted.
    proc = stack.deployer(
        "db", "fetch", str(path), DB, "--source", mirror.url("bad"), "--as", "bad"
    )
    assert proc.returncode == 1, proc.stderr
    error = proc.stderr[proc.stderr.index("error:") :].strip().splitlines()
    assert error[0].startswith("error: the fetch failed: MD5 mismatch"), error
    assert "group dbfail-fetch-bad deleted after" in error[0] and "vCPU-s" in error[0]
    assert len(error) <= 2 and error[-1].strip().startswith("hint:"), error
    assert stack.groups("dbfail") == [] and manifest(stack, "bad") is None


def test_ctrl_c_stops_the_fetch_and_deletes_its_group(run_stack: RunStack, mirror: Mirror) -> None:
    stack = run_stack
    path = workload(stack, "dbint")
    # The volume freezes after 64 KiB until released: the fetch is running while we act.
    release = mirror.server.hold(f"/flat/{DB}.tar.gz", 64 * 1024)
    argv = ["db", "fetch", str(path), DB, "--source", mirror.url(), "--as", "interrupted"]
    proc = subprocess.Popen(
        [str(BIN / "deployer"), *argv],
        env=stack.env,
        cwd=stack.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    fetching = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "dbint-fetch-interrupted: fetching" in line:
                fetching.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert fetching.wait(180), "".join(lines)
        assert stack.groups("dbint") == ["dbint-fetch-interrupted"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 1
    finally:
        release.set()
        with contextlib.suppress(OSError):
            proc.kill()
    reader.join(10)
    text = "".join(lines)
    assert (
        "error: interrupted: the fetch was stopped; group dbint-fetch-interrupted deleted" in text
    )
    assert "run the same command again to resume" in text
    assert stack.groups("dbint") == [] and manifest(stack, "interrupted") is None
