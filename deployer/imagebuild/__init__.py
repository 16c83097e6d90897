"""``deployer build``: build every image of the stack in ACR (or locally) and push it.

* :mod:`.context` packs a build context deterministically, honouring ``.dockerignore``.
* :mod:`.catalogue` reads ``images/images.toml``: the images, their order and build
  arguments, and adds an extra CA bundle to contexts.
* :mod:`.images` computes build hashes, labels and tags.
* :mod:`.runner` hashes, skips and schedules; :mod:`.acr` and :mod:`.local` build.
* :mod:`.registry` asks a registry what it holds; :mod:`.manifest` records what was
  built for ``deployer up``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from azure.core.exceptions import AzureError as SdkAzureError

from deployer import defaults, hints
from deployer.arm import default_credential, management_client
from deployer.defaults import Env
from deployer.errors import DeployerError, InputError
from deployer.imagebuild import catalogue, images, manifest
from deployer.imagebuild.jobs import Builder
from deployer.imagebuild.registry import ACR_USERNAME, RegistryClient, acr_refresh_token
from deployer.imagebuild.runner import (
    FAILED,
    ImageResult,
    LineSink,
    StatusSink,
    plan_build,
    run_build,
)
from deployer.protocol import JANITOR_IMAGE, RUN_PROTOCOL
from deployer.scope import registry_with_login_server
from deployer.settings import Overrides, resolve_azure_scope
from deployer.workload import load

ACR_SUFFIXES = (".azurecr.io", ".azurecr.cn", ".azurecr.us")
MIN_TIMEOUT_S, MAX_TIMEOUT_S = 300, 28800
"""The range ACR accepts for a run's timeout."""


@dataclass(frozen=True)
class BuildOptions:
    """How ``deployer build`` runs.

    Args:
        local (bool): Build with the local engine and push, instead of ACR runs.
            Default: False.
        images (list[str]): Images to build (parents are added); empty means every
            service image. Default: empty.
        force (bool): Rebuild even when the registry has the build hash. Default: False.
        no_cache (bool): Build without the layer cache. Default: False.
        parallel (int): Builds at once. Default: 4.
        timeout_s (int): Time limit per build, 300 to 28800. Default: 3600.
        registry_name (str | None): ACR resource name. Default: the first label of
            the login server (``myacr`` of ``myacr.azurecr.io``).
        images_dir (Path | None): The ``images/`` folder. Default: found above the
            current directory.
        extra_ca_certs (str | None): PEM bundle trusted inside local builds
            (``EXTRA_CA_CERTS``). Default: none.
        tag (str | None): The tag. Default: ``<version>-<gitsha>``.
    """

    local: bool = False
    images: list[str] = field(default_factory=list)
    force: bool = False
    no_cache: bool = False
    parallel: int = 4
    timeout_s: int = 3600
    registry_name: str | None = None
    images_dir: Path | None = None
    extra_ca_certs: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class BuildResult:
    """What ``deployer build`` reports.

    Args:
        registry (str): Registry login server.
        tag (str): This build's tag.
        mode (str): ``acr`` or ``local``.
        images (list[ImageResult]): One per image, in build order.
        manifest_file (str): Where the references for ``deployer up`` were written.
    """

    registry: str
    tag: str
    mode: str
    images: list[ImageResult]
    manifest_file: str

    @property
    def failed(self) -> list[ImageResult]:
        """The images that failed."""
        return [i for i in self.images if i.status == FAILED]


class BuildError(DeployerError):
    """At least one image failed to build; exit code 1."""


def is_acr(server: str) -> bool:
    """Return True for an Azure Container Registry login server."""
    return server.split(":")[0].lower().endswith(ACR_SUFFIXES)


def registry_name(subscription: str, resource_group: str, server: str) -> str:
    """The name of the registry whose login server is ``server``: ARM's answer, else (ARM
    cannot say) the first label of the server.

    Args:
        subscription (str): The subscription.
        resource_group (str): The registry's resource group.
        server (str): The workload's registry (a login server).
    """
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient

    try:
        with management_client(ContainerRegistryManagementClient, subscription) as client:
            found = registry_with_login_server(client, resource_group, server)
    except SdkAzureError:
        found = None  # not readable here: the runs' own errors then say what is wrong
    return found or server.split(".")[0]


def _acr_credentials(server: str) -> tuple[str, str]:
    try:
        token = default_credential().get_token(f"{defaults.PUBLIC_ARM_ENDPOINT}/.default").token
    except SdkAzureError as exc:
        raise hints.from_exception(exc, f"signing in to registry {server}") from None
    return ACR_USERNAME, acr_refresh_token(server, token)


def recorded_images(results: list[ImageResult]) -> dict[str, manifest.BuiltImage]:
    """What the build manifest records of a build's results (pure): every image not failed,
    and for the janitor's image the run protocol of the source it was built from (a skipped
    image has the same build hash, so the same source)."""
    return {
        r.name: manifest.BuiltImage(
            r.ref,
            r.digest,
            r.build_hash,
            r.status,
            RUN_PROTOCOL if r.name == JANITOR_IMAGE else None,
        )
        for r in results
        if r.status != FAILED
    }


def build(
    file: Path,
    overrides: Overrides | None = None,
    options: BuildOptions | None = None,
    *,
    on_status: StatusSink | None = None,
    on_line: LineSink | None = None,
    builder_factory: Callable[[BuildOptions, str, tuple[str, str] | None], Builder] | None = None,
) -> BuildResult:
    """Build the stack's images and record what was built for ``deployer up``.

    Args:
        file (Path): The workload file (registry, subscription, resource group).
        overrides (Overrides): Command-line settings. Default: none.
        options (BuildOptions): How to build. Default: ACR runs of every service image.
        on_status (StatusSink | None): Progress per image. Default: none.
        on_line (LineSink | None): Log lines per image. Default: none.
        builder_factory: Makes the builder from (options, registry, credentials).
            Default: ACR runs, or the local engine with ``options.local``.

    Raises:
        BuildError: When any image failed (after every other image finished).
        MissingSettingError: When the registry (or, for ACR, subscription or resource
            group) is not configured.
    """
    overrides = overrides or Overrides()
    options = options or BuildOptions()
    if not MIN_TIMEOUT_S <= options.timeout_s <= MAX_TIMEOUT_S:
        raise InputError(
            f"--timeout {options.timeout_s} is out of range",
            hint=f"ACR accepts {MIN_TIMEOUT_S} to {MAX_TIMEOUT_S} seconds",
        )
    workload = load(file)
    d = workload.deployment
    registry = defaults.resolve(
        "deployment.registry",
        overrides.registry,
        d.registry,
        Env.REGISTRY,
        flag="--registry",
        discover="az acr list --query [].loginServer -o tsv",
    ).rstrip("/")
    images_dir = options.images_dir or images.find_images_dir(Path.cwd())
    ca = None
    ca_path = options.extra_ca_certs or os.environ.get("EXTRA_CA_CERTS")
    if options.local and ca_path:
        ca = catalogue.read_ca_bundle(ca_path)
    plan = plan_build(
        images_dir,
        registry,
        options.images,
        tag=options.tag,
        ca_bundle=ca,
        no_cache=options.no_cache,
        timeout_s=options.timeout_s,
    )
    acr = not options.local or options.registry_name is not None or is_acr(registry)
    credentials: tuple[str, str] | None = None
    if acr:
        credentials = _acr_credentials(registry)
    elif os.environ.get(Env.REGISTRY_USERNAME) and os.environ.get(Env.REGISTRY_PASSWORD):
        credentials = (os.environ[Env.REGISTRY_USERNAME], os.environ[Env.REGISTRY_PASSWORD])
    if builder_factory is not None:
        builder = builder_factory(options, registry, credentials)
    elif options.local:
        from deployer.imagebuild.local import LocalBuilder, docker_client

        auth = {"username": credentials[0], "password": credentials[1]} if credentials else None
        builder = LocalBuilder(docker_client(), auth)
    else:
        from deployer.imagebuild.acr import AcrBuilder, LogPolling, make_client

        subscription, resource_group = resolve_azure_scope(
            workload, overrides, discover_group="az acr list --query [].resourceGroup -o tsv"
        )
        name = options.registry_name or registry_name(subscription, resource_group, registry)
        # DEPLOYER_POLL_INTERVAL also paces the log polls (tests make it short).
        polling = LogPolling(interval_s=min(1.0, defaults.env_float(Env.POLL_INTERVAL, 1.0)))
        builder = AcrBuilder(make_client(subscription), resource_group, name, polling)
    client = RegistryClient(registry, *(credentials or (None, None)))
    results = run_build(
        plan,
        builder,
        client,
        force=options.force,
        parallel=options.parallel,
        on_status=on_status,
        on_line=on_line,
    )
    built = recorded_images(results)
    path = manifest.save(manifest.BuildManifest(registry, plan.tag, built))
    mode = "local" if options.local else "acr"
    return BuildResult(registry, plan.tag, mode, results, str(path))


__all__ = [
    "BuildError",
    "BuildOptions",
    "BuildResult",
    "ImageResult",
    "build",
    "is_acr",
    "recorded_images",
]
