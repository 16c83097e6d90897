"""Run the local ACI emulator: ``python -m tests.fakearm`` (``make emulator``).

It prints the environment that points the deployer at it, then serves until Ctrl-C or
SIGTERM, and removes every container, network and file it created on the way out.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import docker
import docker.errors

from . import SPECS_ENV, EmulatorSettings, FakeArm, SpecNotFoundError
from .emulator import remove_instance
from .spec import SPECS_DIR

RESOURCE_GROUP = "local"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line.

    :param argv: arguments (default: ``sys.argv[1:]``).
    :return: the parsed options.
    """
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakearm",
        description="A local ACI emulator: the ARM API of Azure Container Instances, whose "
        "container groups run as containers on the local Docker engine.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: free)")
    parser.add_argument(
        "--specs",
        type=Path,
        default=Path(os.environ.get(SPECS_ENV) or SPECS_DIR),
        help=f"Azure REST specs directory (default: ${SPECS_ENV}, else {SPECS_DIR})",
    )
    parser.add_argument(
        "--image-prefix",
        default=os.environ.get("IMAGE_PREFIX", "aci-research"),
        help="local images that references map to: <prefix>/<name>:<tag> (default: "
        "$IMAGE_PREFIX, else aci-research)",
    )
    parser.add_argument(
        "--tag",
        default=os.environ.get("TAG") or None,
        help="tag of the local images to run, whatever tag a group names (default: $TAG, "
        "else the group's own tag)",
    )
    parser.add_argument(
        "--container-access",
        action="store_true",
        help="also listen on the emulator network's gateway, so groups (the run janitor) "
        "reach the API at the same 127.0.0.1 URL; default: loopback only",
    )
    parser.add_argument(
        "--quota",
        action="append",
        default=[],
        metavar="LOCATION=CORES",
        help="vCPU quota of a region, e.g. westeurope=8 (repeatable; default 100 each)",
    )
    parser.add_argument(
        "--env-file", type=Path, help="also write the exports to this file (mode 0600)"
    )
    parser.add_argument(
        "--cleanup",
        metavar="ID",
        help="remove what an emulator that did not stop cleanly left (containers, network), "
        "then exit",
    )
    return parser.parse_args(argv)


def exports(arm: FakeArm) -> dict[str, str]:
    """The environment that points the deployer at a running emulator.

    :param arm: the running server.
    :return: variable name to value.
    """
    return {
        "DEPLOYER_ARM_ENDPOINT": arm.url,
        "DEPLOYER_ACCESS_TOKEN": arm.token,
        "AZURE_SUBSCRIPTION_ID": arm.subscription_id,
        "DEPLOYER_RESOURCE_GROUP": RESOURCE_GROUP,
        # The emulator never pulls, so registry credentials are placeholders.
        "DEPLOYER_REGISTRY_USERNAME": "emulator",
        "DEPLOYER_REGISTRY_PASSWORD": "emulator",
    }


def main(argv: list[str] | None = None) -> int:
    """Start the emulator and serve until interrupted.

    :param argv: arguments (default: ``sys.argv[1:]``).
    :return: the exit code.
    """
    args = parse_args(argv)
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        print(f"error: no Docker engine answers ({exc}); start dockerd", file=sys.stderr)
        return 1
    if args.cleanup:
        removed = remove_instance(client, args.cleanup)
        print(f"removed {removed} containers of emulator {args.cleanup}")
        return 0
    quotas: dict[str, int] = {}
    for item in args.quota:
        location, _, cores = item.partition("=")
        if not location or not cores.isdigit():
            print(f"error: --quota {item!r}: expected LOCATION=CORES", file=sys.stderr)
            return 2
        quotas[location] = int(cores)
    settings = EmulatorSettings(image_prefix=args.image_prefix, image_tag=args.tag)
    try:
        # A random token: whoever can reach the port can start containers on this machine.
        arm = FakeArm(
            specs_dir=args.specs,
            emulate=settings,
            listen_for_containers=args.container_access,
            token=secrets.token_urlsafe(24),
        )
    except SpecNotFoundError as exc:
        print(f"error: {exc} (set --specs or ${SPECS_ENV})", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        arm.start(args.port)
    except (OSError, docker.errors.DockerException) as exc:
        print(f"error: cannot start the emulator: {exc}", file=sys.stderr)
        return 1
    try:
        for location, cores in quotas.items():
            arm.aci.set_quota(location, cores=cores)
        env = exports(arm)
        lines = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
        runtime = arm.emulator
        if args.env_file:
            args.env_file.touch(mode=0o600)
            header = f"# ACI emulator {runtime.instance_id}"
            args.env_file.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
        print(f"# ACI emulator {runtime.instance_id}: ARM API on {arm.url}", flush=True)
        if arm.container_url:
            print(f"# groups reach it at {arm.url} too (and {arm.container_url})")
        else:
            print("# loopback only: groups cannot reach it (--container-access for `deployer run`)")
        print(
            f"# images: <registry>/<name>:<tag> runs local {settings.image_prefix}/<name>:"
            f"{settings.image_tag or '<tag>'}; network {runtime.network.name}"
        )
        print("# paste into the shell that runs the deployer:")
        print("\n".join(lines))
        print("# Ctrl-C stops it and removes every container it started.", flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        arm.stop()
        print("# emulator stopped; its containers and network are removed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
