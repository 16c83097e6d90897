"""What the groups of every workload share (pure): containers built from their contract
role, the group around them (registry pull, identity, subnet, tags), image references and
the storage variables of BLAST's containers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from deployer import contract, defaults
from deployer.contract import Mount, Role
from deployer.deployment_secrets import Secret, digest
from deployer.errors import MissingSettingError
from deployer.plan.spec import (
    RUN_TAG,
    SECRETS_TAG,
    ContainerSpec,
    EnvValue,
    GroupSpec,
    RegistryAuth,
)
from deployer.settings import Settings
from deployer.sizing import Resources
from deployer.workload import Workload


def image(settings: Settings, name: str) -> str:
    """The exact reference of image ``name`` (pure): what ``deployer build`` recorded
    (``settings.images``, which :func:`deployer.imagerefs.deploy_settings` fills), else
    ``<registry>/<name>:<tag>``.

    Args:
        settings (Settings): Resolved settings.
        name (str): The image's name in ``images/images.toml``.
    """
    return dict(settings.images).get(name) or contract.image_ref(
        settings.registry, name, settings.image_tag
    )


NOTEBOOK_ENDPOINT = "notebook"
WEB_ENDPOINT = "blast web"
SIGN_IN_PATHS = {NOTEBOOK_ENDPOINT: "lab", WEB_ENDPOINT: ""}
"""The front doors a browser opens, and the path that takes the access token (``?token=``)."""


def signed_in_links(endpoints: Mapping[str, str], token: str) -> dict[str, str]:
    """The front doors' URLs with the access token, ready to open (pure): the notebook's
    ``.../lab?token=...`` and the BLAST page's ``.../?token=...``, as ``make up`` prints them.

    Args:
        endpoints (Mapping[str, str]): Endpoint name -> URL (``Plan.endpoints``).
        token (str): The deployment's access token.
    """
    return {
        name: f"{url}{SIGN_IN_PATHS[name]}?token={quote(token, safe='')}"
        for name, url in endpoints.items()
        if name in SIGN_IN_PATHS
    }


LABEL_SUFFIX_UNKNOWN = "<hash>"
"""The DNS label suffix while the subscription or resource group is unknown (an offline plan)."""


def dns_label(settings: Settings, name: str, given: str | None) -> str:
    """The DNS label of a public group: the workload's, else ``<deployment>-<name>-<hash>``.

    ACI DNS labels are unique per region across every customer, so the default ends in six
    hex digits of a hash of the subscription, resource group and deployment: two users who
    deploy the same example get different names, and one deployment always the same.

    Args:
        settings (Settings): Resolved settings (deployment, subscription, resource group).
        name (str): The group's role in the label, e.g. ``head``.
        given (str | None): The label the workload file sets.
    """
    if given:
        return given
    if not (settings.subscription and settings.resource_group):
        return f"{settings.deployment}-{name}-{LABEL_SUFFIX_UNKNOWN}"
    # Resource group names are case-insensitive in Azure; subscription ids are GUIDs.
    scope = f"{settings.subscription.lower()}/{settings.resource_group.lower()}"
    digest = hashlib.sha256(f"{scope}/{settings.deployment}".encode()).hexdigest()[:6]
    return f"{settings.deployment}-{name}-{digest}"


def secret_volume(container: str) -> str:
    """Name of the secret volume of ``container`` in its group: ``<container>-secrets``."""
    return f"{container}-secrets"


def container(
    role: Role,
    name: str,
    image: str,
    resources: Resources,
    values: Mapping[str, EnvValue | None],
    mounts: tuple[Mount, ...] | None = None,
) -> ContainerSpec:
    """Build a container from its contract role: secrets become files, by the contract.

    Args:
        role (Role): Its role in :mod:`deployer.contract` (command, ports, probe, mounts).
        name (str): Container name, unique in the group.
        image (str): Full image reference.
        resources (Resources): Its request.
        values (Mapping[str, EnvValue | None]): Its variables; None leaves one out. A
            secret (a :class:`Secret`, or a name the role declares secret) becomes a file.
        mounts (tuple[Mount, ...] | None): Volume mounts. Default: the role's.

    Raises:
        ValueError: For a variable the role's contract does not read.
    """
    env: list[tuple[str, str]] = []
    files: list[tuple[str, Secret]] = []
    for key, value in values.items():
        if value is None:
            continue
        if not role.reads(key):
            raise ValueError(f"{key} is not in the {role.name} contract")
        if key in role.secret_names or isinstance(value, Secret):
            var = role.secret(key)
            files.append((var.secret_file, value if isinstance(value, Secret) else Secret(value)))
            env.append((var.file_var, var.secret_path))
        else:
            env.append((key, value))
    all_mounts = role.mounts if mounts is None else mounts
    if files:
        all_mounts = (*all_mounts, Mount(secret_volume(name), contract.SECRETS_DIR, True))
    return ContainerSpec(
        name=name,
        role=role.name,
        image=image,
        resources=resources,
        ports=role.ports,
        env=tuple(sorted(env)),
        secret_files=tuple(sorted(files, key=lambda kv: kv[0])),
        command=role.command,
        probe=role.probe,
        mounts=all_mounts,
    )


def _registry(settings: Settings) -> RegistryAuth | None:
    if settings.registry_auth == "admin":
        return RegistryAuth(
            settings.registry,
            username=settings.registry_username,
            password=settings.registry_password,
        )
    if settings.managed_identity:
        return RegistryAuth(settings.registry, identity=settings.managed_identity)
    return None


def _tags(
    settings: Settings, workload: str, kind: str, secret_values: list[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    return (
        ("deployment", settings.deployment),
        ("kind", kind),
        (SECRETS_TAG, digest(secret_values)),
        ("tool", defaults.TOOL_TAG),
        ("workload", workload),
    )


def group(
    settings: Settings,
    name: str,
    workload: str,
    kind: str,
    containers: list[ContainerSpec],
    **kwargs: Any,
) -> GroupSpec:
    """A group of ``containers`` with the deployment's registry pull, identity, subnet and tags.

    Args:
        settings (Settings): Resolved settings.
        name (str): Group name.
        workload (str): ``ipyparallel``, ``blast`` or ``deployment``.
        kind (str): ``head``, ``engines``, ``workers``, ``web`` or ``janitor``.
        containers (list[ContainerSpec]): Its containers.
        kwargs (Any): Further :class:`GroupSpec` fields (``ip``, ``ports``, ...); the
            subnet defaults to the deployment's.
    """
    registry = _registry(settings)
    secret_values = [(f"{c.name}.{k}", v.reveal()) for c in containers for k, v in c.secret_files]
    if registry and registry.password:
        secret_values.append(("registry.password", registry.password.reveal()))
    kwargs.setdefault("subnet_id", settings.subnet_id)
    return GroupSpec(
        name=name,
        workload=workload,
        kind=kind,
        containers=tuple(containers),
        identity=settings.managed_identity,
        registry=registry,
        tags=_tags(settings, workload, kind, secret_values),
        **kwargs,
    )


def run_tags(spec: GroupSpec, run_id: str) -> tuple[tuple[str, str], ...]:
    """The tags of ``spec`` plus the run it belongs to (:data:`RUN_TAG`)."""
    return tuple(sorted({**dict(spec.tags), RUN_TAG: run_id}.items()))


def front_door_env(
    prefix: str, what: str, token: str, mode: str, tls: tuple[Secret, Secret] | None
) -> dict[str, EnvValue | None]:
    """The token and TLS variables of a front door (the notebook, the BLAST web page).

    Args:
        prefix (str): ``NOTEBOOK`` or ``WEB``: ``<prefix>_TOKEN``, ``<prefix>_TLS`` and, for
            ``tls: provided``, ``<prefix>_TLS_CERT`` and ``<prefix>_TLS_KEY``.
        what (str): Its name for the error: ``the notebook``, ``the BLAST web page's``.
        token (str): The deployment's front-door token.
        mode (str): Its ``tls.mode``: ``off``, ``self-signed`` or ``provided``.
        tls (tuple[Secret, Secret] | None): (cert, key) PEM, read for ``provided``.

    Raises:
        MissingSettingError: For ``provided`` without the certificate and key.
    """
    env: dict[str, EnvValue | None] = {f"{prefix}_TOKEN": Secret(token), f"{prefix}_TLS": mode}
    if mode == "provided":
        if tls is None:
            raise MissingSettingError(f"{what} TLS certificate and key were not read")
        env[f"{prefix}_TLS_CERT"], env[f"{prefix}_TLS_KEY"] = tls
    return env


def storage_env(settings: Settings, workload: Workload) -> dict[str, EnvValue | None]:
    """How BLAST's containers reach storage: the managed identity, else the connection string.

    Args:
        settings (Settings): Resolved settings.
        workload (Workload): The workload file (its ``blast.queue``).

    Raises:
        MissingSettingError: When no storage is configured, or the identity's client id is
            missing.
    """
    blast = workload.workloads.blast
    if settings.storage_account:
        if not settings.managed_identity_client_id:
            raise MissingSettingError(
                "deployment.managed_identity_client_id is not set; containers need it to read "
                f"storage account {settings.storage_account} through the managed identity",
                hint="set it to `az identity show --ids IDENTITY --query clientId -o tsv`",
            )
        values: dict[str, EnvValue | None] = {
            "AZURE_STORAGE_ACCOUNT": settings.storage_account,
            "AZURE_CLIENT_ID": settings.managed_identity_client_id,
        }
    elif settings.storage_connection_string:
        values = {"AZURE_STORAGE_CONNECTION_STRING": settings.storage_connection_string}
    else:
        raise MissingSettingError(
            "the blast workload needs storage: deployment.storage_account is not set and "
            f"{defaults.Env.STORAGE_CONNECTION_STRING} is not exported",
            hint="set deployment.storage_account (`az storage account list --query [].name -o "
            "tsv`) and managed_identity_client_id, or export "
            f"{defaults.Env.STORAGE_CONNECTION_STRING}",
        )
    values["BLAST_QUEUE"] = blast.queue if blast else None
    return values
