"""The ``aci-emulator`` command (``make emulator``): the local ACI emulator for users.

It prints the environment that points the deployer at it, then serves until Ctrl-C or
SIGTERM, and removes every container, network and file it created on the way out.
"""

from __future__ import annotations

import secrets
import shlex
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated

import docker
import docker.errors
import typer

from .fakearm import FakeArm
from .providers.acr import FakeRegistry
from .registry import LocalRegistry
from .runtime import EmulatorSettings, remove_instance
from .runtime.images import ImageResolver
from .runtime.settings import EmulatorError
from .spec import SPECS_DIR, SPECS_ENV, SpecNotFoundError

RESOURCE_GROUP = "local"


@dataclass(frozen=True)
class Options:
    """The command line, parsed.

    :param port: port on 127.0.0.1 (0: a free one).
    :param specs: the Azure REST specs directory.
    :param image_prefix: local images that references map to.
    :param tag: tag of the local images to run, or ``None`` for each group's own.
    :param container_access: also listen on the emulator network's gateway.
    :param quota: ``LOCATION=CORES`` entries.
    :param env_file: also write the exports to this file.
    :param cleanup: remove what emulator ``cleanup`` left, then exit.
    :param strict: pull each exact image from a real local registry (strict mode) instead
        of running local images (local-image mode).
    """

    port: int
    specs: Path
    image_prefix: str
    tag: str | None
    container_access: bool
    quota: list[str]
    env_file: Path | None
    cleanup: str | None
    strict: bool = False


app = typer.Typer(
    name="aci-emulator",
    help="A local ACI emulator: the ARM API of Azure Container Instances, whose container "
    "groups run as containers on the local Docker engine.",
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def command(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (default: free)")] = 0,
    specs: Annotated[
        Path,
        typer.Option(
            envvar=SPECS_ENV,
            help=f"Azure REST specs directory (default: ${SPECS_ENV}, else {SPECS_DIR})",
            show_default=False,
        ),
    ] = SPECS_DIR,
    image_prefix: Annotated[
        str,
        typer.Option(
            envvar="IMAGE_PREFIX",
            help="local images that references map to: <prefix>/<name>:<tag> (default: "
            "$IMAGE_PREFIX, else aci-research)",
            show_default=False,
        ),
    ] = "aci-research",
    tag: Annotated[
        str | None,
        typer.Option(
            envvar="TAG",
            help="tag of the local images to run, whatever tag a group names (default: $TAG, "
            "else the group's own tag)",
        ),
    ] = None,
    container_access: Annotated[
        bool,
        typer.Option(
            "--container-access",
            help="also listen on the emulator network's gateway, so groups (the run janitor) "
            "reach the API at the same 127.0.0.1 URL; default: loopback only",
        ),
    ] = False,
    quota: Annotated[
        list[str] | None,
        typer.Option(
            metavar="LOCATION=CORES",
            help="vCPU quota of a region, e.g. westeurope=8 (repeatable; default 100 each)",
        ),
    ] = None,
    env_file: Annotated[
        Path | None, typer.Option(help="also write the exports to this file (mode 0600)")
    ] = None,
    cleanup: Annotated[
        str | None,
        typer.Option(
            metavar="ID",
            help="remove what an emulator that did not stop cleanly left (containers, "
            "network), then exit",
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="strict mode: start Debian's docker-registry and pull each group's exact "
            "images from it with the group's credentials, as ACI does (push with `deployer "
            "build --local`); default: local-image mode",
        ),
    ] = False,
) -> None:
    """Start the emulator and serve until interrupted (Ctrl-C or SIGTERM)."""
    options = Options(
        port,
        specs,
        image_prefix,
        tag or None,
        container_access,
        quota or [],
        env_file,
        cleanup,
        strict,
    )
    code = serve(options)
    if code:
        raise typer.Exit(code)


def parse_args(argv: list[str]) -> Options:
    """Parse a command line without running it.

    :param argv: the arguments.
    :return: the options the command would run with.
    """
    context = typer.main.get_command(app).make_context("aci-emulator", list(argv))
    p = context.params
    return Options(
        p["port"],
        p["specs"],
        p["image_prefix"],
        p["tag"] or None,
        p["container_access"],
        list(p["quota"] or []),
        p["env_file"],
        p["cleanup"],
        p["strict"],
    )


LOCAL_ADMIN = ("emulator", "emulator")
"""The admin user of the local-image registry (it holds nothing secret)."""


def exports(arm: FakeArm, registry: FakeRegistry) -> dict[str, str]:
    """The environment that points the deployer at a running emulator and its registry.

    :param arm: the running server.
    :param registry: the registry the deployer checks images in.
    :return: variable name to value.
    """
    return {
        "DEPLOYER_ARM_ENDPOINT": arm.url,
        "DEPLOYER_REGISTRY_ENDPOINT": registry.server,
        "DEPLOYER_ACCESS_TOKEN": arm.token,
        "AZURE_SUBSCRIPTION_ID": arm.subscription_id,
        "DEPLOYER_RESOURCE_GROUP": RESOURCE_GROUP,
        "DEPLOYER_REGISTRY_USERNAME": LOCAL_ADMIN[0],
        "DEPLOYER_REGISTRY_PASSWORD": LOCAL_ADMIN[1],
    }


def strict_exports(arm: FakeArm, registry: LocalRegistry) -> dict[str, str]:
    """The environment that points the deployer at a strict emulator: its registry is the
    workload's registry (``DEPLOYER_REGISTRY``), with the registry's admin user.

    :param arm: the running server.
    :param registry: the strict mode's registry.
    :return: variable name to value.
    """
    admin = next(iter(registry.users.items()))
    return {
        "DEPLOYER_ARM_ENDPOINT": arm.url,
        "DEPLOYER_ACCESS_TOKEN": arm.token,
        "AZURE_SUBSCRIPTION_ID": arm.subscription_id,
        "DEPLOYER_RESOURCE_GROUP": RESOURCE_GROUP,
        "DEPLOYER_REGISTRY": registry.server,
        "DEPLOYER_REGISTRY_USERNAME": admin[0],
        "DEPLOYER_REGISTRY_PASSWORD": admin[1],
    }


def local_image_registry(arm: FakeArm, client: docker.DockerClient) -> FakeRegistry:
    """A registry data plane whose images are those the emulator runs from the local engine
    (``<prefix>/<name>:<tag>``), so the deployer's image check asks what the emulator has.

    :param arm: the running emulator (its token and image settings).
    :param client: the Docker client.
    :return: the started registry.
    """
    resolver = ImageResolver(client, arm.emulator.settings)

    def runs(repository: str, ref: str) -> bool:
        sep = "@" if ref.startswith("sha256:") else ":"
        try:
            resolver.resolve(f"registry/{repository}{sep}{ref}")
        except EmulatorError:
            return False
        return True

    registry = FakeRegistry(token=arm.token)
    registry.admins[LOCAL_ADMIN[0]] = LOCAL_ADMIN[1]
    registry.fallback = runs
    return registry.start()


def serve(args: Options) -> int:
    """Start the emulator and serve until interrupted.

    :param args: the options.
    :return: the exit code (0 success, 1 failure, 2 bad input).
    """
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
    strict: LocalRegistry | None = None
    if args.strict:
        admin = ("emulator", secrets.token_urlsafe(18))
        identity = ("identity", secrets.token_urlsafe(18))
        try:
            strict = LocalRegistry(dict([admin, identity])).start()
        except RuntimeError as exc:
            print(f"error: cannot start the strict mode's registry: {exc}", file=sys.stderr)
            return 1
        settings.registry = strict.server
        settings.registry_hosts = (strict.server,)
        settings.identity_login = identity
    try:
        return _serve(args, settings, quotas, strict, client)
    finally:
        if strict is not None:
            strict.stop()


def _serve(
    args: Options,
    settings: EmulatorSettings,
    quotas: dict[str, int],
    strict: LocalRegistry | None,
    client: docker.DockerClient,
) -> int:
    """Serve with ``settings`` (``strict``: the strict mode's registry) until interrupted."""
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
        for location, limit in quotas.items():
            arm.aci.set_quota(location, cores=limit)
        if strict is not None:
            # The fake ACR's registries report it as their login server (`deployer init`).
            arm.registries.data_plane = strict.server
            env = strict_exports(arm, strict)
        else:
            registry = local_image_registry(arm, client)
            env = exports(arm, registry)
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
        if strict is not None:
            print(
                f"# strict mode: each group pulls its exact images from the registry at "
                f"{strict.server} (Debian's docker-registry; `deployer build --local` pushes "
                f"there); network {runtime.network.name}"
            )
        else:
            print(
                f"# local-image mode: <registry>/<name>:<tag> runs local {settings.image_prefix}"
                f"/<name>:{settings.image_tag or '<tag>'} (nothing is pulled; the registry at "
                f"{registry.server} answers for those images); network {runtime.network.name}"
            )
        print("# paste into the shell that runs the deployer:")
        print("\n".join(lines))
        print("# Ctrl-C stops it and removes every container it started.", flush=True)
        while not stop.wait(1.0):
            pass
        if strict is None:
            registry.stop()
    finally:
        arm.stop()
        print("# emulator stopped; its containers and network are removed", file=sys.stderr)
    return 0


def main() -> None:
    """The console script's entry point."""
    app()
