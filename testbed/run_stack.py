"""``deployer run`` end to end on the local ACI emulator, for the run tests and benches.

Real parts only: the emulator (``aci_emulator`` in strict mode: every accepted group pulls its
exact images from a real registry holding this build's ``IMAGE_PREFIX/*:TAG`` images, and runs
them as real containers), Azurite from the project's image, blastn in the worker image, and
the ``deployer`` CLI from the dev venv.

:class:`RunStack` holds what a test needs: the connection string that works both on the host
and inside every group (Azurite on the emulator's network, published on loopback and
forwarded into each group), a workload file, the demo database, and helpers to run
``deployer`` and ``blast-jobs`` and to look at groups, containers and queues.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient

from aci_emulator import FAKE_TOKEN, FakeArm, aci_client
from aci_emulator.runtime import LABEL_INSTANCE
from deployer.imagebuild import manifest
from deployer.imagerefs import by_digest
from testbed.azurite import PORTS, azurite
from testbed.engine import IMAGE_PREFIX, TAG, wait_for
from testbed.fake_arm import DEPLOYER_RESOURCE_GROUP, REGISTRY_ADMIN
from testbed.registry import PushedRegistry, registry_with_pushed_images

BIN = Path(sys.executable).parent
DEMO_DB = "demo"
RESOURCE_GROUP = DEPLOYER_RESOURCE_GROUP
WORKLOAD_REGISTRY = "emulator.azurecr.io"
WORKLOAD = """\
deployment:
  name: {name}
  location: westeurope
  registry: emulator.azurecr.io
  registry_auth: admin
{extra}workloads:
  blast:
    workers: {workers}
{threads}    databases:
      - {{name: {db}{size}{shards}}}
"""


def workload_text(
    name: str,
    workers: int = 2,
    extra: str = "",
    *,
    threads: int | None = 1,
    db: str = DEMO_DB,
    bytes_to_cache: int | None = 100_000_000,
    shards: int | None = None,
) -> str:
    """A run workload file: ``workers`` of ``threads`` threads (None: left out, so ``deployer
    run`` tunes them) on database ``db`` (``bytes_to_cache`` None: from its manifest),
    searched in ``shards`` shards (None: left out, the database whole)."""
    return WORKLOAD.format(
        name=name,
        workers=workers,
        extra=extra,
        threads=f"    threads_per_worker: {threads}\n" if threads is not None else "",
        db=db,
        size=f", bytes_to_cache: {bytes_to_cache}" if bytes_to_cache is not None else "",
        shards=f", shards: {shards}" if shards is not None else "",
    )


class BackgroundRun:
    """``deployer ARGS`` running in the background (e.g. ``deployer run`` while a test evicts
    its workers), its stderr read as it comes.

    Args:
        argv: The command.
        env: Its environment.
        cwd: Its working directory.
    """

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd
        )
        self.stderr: list[str] = []
        self.reader = threading.Thread(
            target=lambda: self.stderr.extend(self.proc.stderr or []), daemon=True
        )
        self.reader.start()

    def submitted(self, timeout: float = 180) -> str:
        """Wait for ``deployer run``'s ``run <id>: N batches ...; groups ...`` line; return it.

        Args:
            timeout: Seconds to wait (failing at once if the command ends first).
        """

        def line() -> str | None:
            assert self.proc.poll() is None, "".join(self.stderr)[-3000:]
            return next((x for x in self.stderr if x.startswith("run r")), None)

        found: str = wait_for(line, timeout, "the run to be submitted")
        return found

    def finish(self, timeout: float) -> tuple[int, str, str]:
        """Wait for the command to end; return its exit code, stdout and stderr.

        Args:
            timeout: Seconds to wait; then it is killed (:meth:`close`) and this fails.
        """
        try:
            stdout, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.close()
            raise
        self.reader.join(5)
        return self.proc.returncode, stdout, "".join(self.stderr)

    def close(self) -> None:
        """Kill the command if it still runs (a test that failed before it ended)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@dataclass
class RunStack:
    """The emulator, Azurite and the environment of ``deployer run``.

    Attributes:
        arm: The emulator.
        env: Environment for ``deployer``/``blast-jobs`` subprocesses.
        connection_string: Storage, valid on the host and in every group.
        network_connection_string: Storage by Azurite's name on the emulator network.
        root: The test's directory.
        client: Docker SDK client.
    """

    arm: FakeArm
    env: dict[str, str]
    connection_string: str
    network_connection_string: str
    root: Path
    client: Any
    digests: dict[str, str] = field(default_factory=dict)
    """Image name -> digest of each image pushed to the stack's registry at ``TAG``."""

    def record_build(self) -> dict[str, str]:
        """Record, as ``deployer build`` does, every image pushed at ``TAG`` with its digest
        for the workloads' registry; return image name -> the reference to deploy (by
        digest)."""
        images = {
            name: manifest.BuiltImage(f"{WORKLOAD_REGISTRY}/{name}:{TAG}", digest, "", "skipped")
            for name, digest in self.digests.items()
        }
        path = manifest.path_for(WORKLOAD_REGISTRY, Path(self.env["DEPLOYER_STATE_DIR"]))
        manifest.save(manifest.BuildManifest(WORKLOAD_REGISTRY, TAG, images), path)
        return {name: by_digest(i.ref, i.digest) for name, i in images.items()}

    def workload(self, name: str, workers: int = 2, extra: str = "", **more: Any) -> Path:
        """Write a run workload file (:func:`workload_text`; ``more``: its keywords); return
        its path."""
        path = self.root / f"{name}.yaml"
        path.write_text(workload_text(name, workers, extra, **more))
        return path

    def deployer(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run ``deployer ARGS`` with the stack's environment (plus ``env``)."""
        return subprocess.run(
            [str(BIN / "deployer"), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=self.root,
        )

    def start(self, *args: str, **env: str) -> BackgroundRun:
        """Start ``deployer ARGS`` in the background with the stack's environment (plus
        ``env``)."""
        return BackgroundRun([str(BIN / "deployer"), *args], {**self.env, **env}, self.root)

    def run_json(self, *args: str, **env: str) -> dict[str, Any]:
        """``deployer --output json ARGS``; its envelope (asserting exit 0)."""
        proc = self.deployer("--output", "json", *args, **env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        doc: dict[str, Any] = json.loads(proc.stdout)
        return doc

    def groups(self, deployment: str) -> list[str]:
        """Names of the deployment's groups in the emulator."""
        with aci_client(self.arm) as aci:
            return sorted(
                str(g.name)
                for g in aci.container_groups.list_by_resource_group(RESOURCE_GROUP)
                if (g.tags or {}).get("deployment") == deployment
            )

    def containers(self) -> list[Any]:
        """Docker containers this emulator runs for groups (sandboxes included); not those of
        other emulators on the same engine (tests running beside this one)."""
        mine = f"{LABEL_INSTANCE}={self.arm.emulator.instance_id}"
        return list(
            self.client.containers.list(all=True, filters={"label": mine}, ignore_removed=True)
        )

    def group_containers(self, group: str) -> dict[str, str]:
        """ACI container name -> Docker id of one group."""
        return self.arm.aci.docker_ids(RESOURCE_GROUP, group)

    def spot_groups(self, run_id: str) -> list[Any]:
        """The run's Spot groups as ACI lists them (sorted by name)."""
        with aci_client(self.arm) as aci:
            groups = [
                g
                for g in aci.container_groups.list_by_resource_group(RESOURCE_GROUP)
                if (g.tags or {}).get("run") == run_id and g.priority == "Spot"
            ]
        return sorted(groups, key=lambda g: str(g.name))

    def evict(self, group: str, restore_after: float | None = 60) -> bool:
        """Evict a Spot group as ACI does: its containers are killed, and ACI starts them
        again after ``restore_after`` seconds unless the group was deleted first.

        Returns:
            True once evicted; False while its containers are not running yet (try again).
        """
        try:
            self.arm.aci.evict(RESOURCE_GROUP, group, restore_after=restore_after)
        except ValueError:
            return False
        return True

    def queue(self, name: str) -> QueueClient:
        """A client of queue ``name`` on the stack's storage."""
        return QueueClient.from_connection_string(self.connection_string, name)

    def queue_empty_or_gone(self, name: str) -> bool:
        """True when the queue does not exist or holds no message."""
        try:
            return not self.queue(name).peek_messages(max_messages=1)
        except ResourceNotFoundError:
            return True

    def upload_demo_db(self, name: str = DEMO_DB, seqs: int | None = None) -> None:
        """``blast-jobs init --demo-db NAME [--demo-seqs SEQS]`` in the worker image: the storage
        resources and the demo database (:class:`~blast_client.demo.DemoSpec`'s subjects; its
        manifest gives its size)."""
        argv = ["blast-jobs", "init", "--demo-db", name]
        argv += ["--demo-seqs", str(seqs)] if seqs is not None else []
        self.in_worker_image(
            f"import subprocess,sys; sys.exit(subprocess.run({argv!r}).returncode)"
        )

    def in_worker_image(self, script: str, timeout: float = 300) -> bytes:
        """Run a Python ``script`` in the blast-worker image (its blastn); return stdout."""
        container = self.client.containers.run(
            f"{IMAGE_PREFIX}/blast-worker:{TAG}",
            ["python3", "-c", script],
            detach=True,
            environment={"AZURE_STORAGE_CONNECTION_STRING": self.network_connection_string},
            network=self.arm.emulator.network.name,
            name=f"test-run-worker-tool-{secrets.token_hex(4)}",
        )
        try:
            code = container.wait(timeout=timeout)["StatusCode"]
            out = bytes(container.logs(stdout=True, stderr=False))
            assert code == 0, container.logs().decode()[-3000:]
            return out
        finally:
            container.remove(force=True, v=True)


DIRECT_BLASTN = """
import subprocess, sys, tempfile
from pathlib import Path
from blast_client.demo import DemoSpec, makeblastdb_argv, write_demo
tmp = Path(tempfile.mkdtemp())
subjects, queries = write_demo(DemoSpec(name="demo"), tmp)
subprocess.run(makeblastdb_argv(subjects, tmp / "demo", "demo"), check=True, capture_output=True)
(tmp / "all.fa").write_text(sys.argv[1] if len(sys.argv) > 1 else queries.read_text())
out = subprocess.run(["blastn", "-db", str(tmp / "demo"), "-query", str(tmp / "all.fa"),
                      "-outfmt", "6", "-num_threads", "1"], check=True, capture_output=True)
sys.stdout.buffer.write(out.stdout)
"""


@contextlib.contextmanager
def open_run_stack(
    arm: FakeArm, base_env: dict[str, str], root: Path, *, demo_db: bool = True
) -> Iterator[RunStack]:
    """Azurite on the emulator's network (reachable at one address from the host and from
    every group), the demo database in it, and the environment of ``deployer run``.

    Args:
        arm: A running emulator (``listen_for_containers``).
        base_env: The deployer's environment pointing at it.
        root: Working directory.
        demo_db: Upload the demo database (else :meth:`RunStack.upload_demo_db` later).
    """
    client = docker.from_env()
    with azurite("test-run-azurite", client) as store:
        arm.emulator.network.connect(store.container, aliases=["azurite"])
        for svc, port in store.ports.items():
            arm.emulator.forward(port, "azurite", PORTS[svc])
        host = store.connection_string()
        network = store.connection_string({s: f"azurite:{p}" for s, p in PORTS.items()})
        env = {
            **base_env,
            "AZURE_STORAGE_CONNECTION_STRING": host,
            "DEPLOYER_LOCATION": "westeurope",
            "DEPLOYER_RUN_EXIT_WHEN_IDLE": "15s",
            "DEPLOYER_JANITOR_INTERVAL": "1",
            "DEPLOYER_POLL_INTERVAL": "0.5",
        }
        stack = RunStack(arm, env, host, network, root, client)
        if demo_db:
            stack.upload_demo_db()
        yield stack


def emulator_env(arm: FakeArm, root: Path, registry: str) -> dict[str, str]:
    """The deployer's environment pointing at ``arm`` and, for the workloads' registry, at
    ``registry`` (``host:port``; state under ``root``)."""
    return {
        **os.environ,
        "DEPLOYER_STATE_DIR": str(root / "state"),
        "DEPLOYER_ARM_ENDPOINT": arm.url,
        "DEPLOYER_REGISTRY_ENDPOINT": registry,
        "DEPLOYER_ACCESS_TOKEN": FAKE_TOKEN,
        "AZURE_SUBSCRIPTION_ID": arm.subscription_id,
        "DEPLOYER_RESOURCE_GROUP": RESOURCE_GROUP,
        "DEPLOYER_IMAGE_TAG": TAG,
        "DEPLOYER_REGISTRY_USERNAME": REGISTRY_ADMIN[0],
        "DEPLOYER_REGISTRY_PASSWORD": REGISTRY_ADMIN[1],
    }


RUN_IMAGES = ("blast-worker", "deployer", "ipcontroller", "ipengine", "notebook")
"""What the run tests' groups run: workers, janitors, the idle-shutdown test's cluster."""


@contextlib.contextmanager
def emulated_run_stack(
    root: Path, pushed: PushedRegistry | None = None, *, demo_db: bool = True
) -> Iterator[RunStack]:
    """The local ACI emulator in strict mode and :func:`open_run_stack` on it, with state
    under ``root``; used by the run tests' fixture and the run benches. This build's images
    (``TAG``) are in a real registry standing for the workloads' registry
    (``emulator.azurecr.io``), and every group pulls its exact images from there with its
    credentials; the deployer checks them there too.

    Args:
        root: The stack's folder.
        pushed: A registry holding :data:`RUN_IMAGES` (the tests share one per session);
            default: one pushed for this stack.
        demo_db: Upload the demo database (else :meth:`RunStack.upload_demo_db` later).
    """
    with contextlib.ExitStack() as stack_of:
        if pushed is None:
            pushed = stack_of.enter_context(registry_with_pushed_images(RUN_IMAGES))
        settings = pushed.settings((WORKLOAD_REGISTRY,))
        with (
            FakeArm(emulate=settings, listen_for_containers=True) as arm,
            open_run_stack(
                arm, emulator_env(arm, root, pushed.registry.server), root, demo_db=demo_db
            ) as stack,
        ):
            stack.digests = pushed.digests
            yield stack


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and return it."""
    path.write_text(text)
    return path
