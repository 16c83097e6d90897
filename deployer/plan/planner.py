"""The plan of a deployment (pure): every workload's groups, head first, and its endpoints."""

from __future__ import annotations

from deployer.deployment_secrets import DeploymentSecrets, Secret
from deployer.plan import blast, ipyparallel
from deployer.plan.spec import GroupSpec, Plan
from deployer.settings import Settings
from deployer.workload import Workload


def group_names(workload: Workload, deployment: str) -> list[str]:
    """Return the names of the groups :func:`build` plans, head first, without secrets.

    ``status`` uses this to list planned groups that are missing.

    Args:
        workload (Workload): The validated workload file.
        deployment (str): The deployment name.
    """
    ipp = workload.workloads.ipyparallel
    bl = workload.workloads.blast
    return [
        *(ipyparallel.group_names(ipp, deployment) if ipp else []),
        *(blast.group_names(workload, deployment) if bl else []),
    ]


def build(
    workload: Workload,
    settings: Settings,
    secrets: DeploymentSecrets,
    *,
    head_private_ip: str | None = None,
    notebook_tls: tuple[Secret, Secret] | None = None,
    web_tls: tuple[Secret, Secret] | None = None,
) -> Plan:
    """Turn a workload into its desired groups.

    Args:
        workload (Workload): The validated workload file.
        settings (Settings): Resolved settings.
        secrets (DeploymentSecrets): The deployment's secrets.
        head_private_ip (str | None): The head's private IP in subnet mode, once
            known. Default: None (a placeholder).
        notebook_tls (tuple[Secret, Secret] | None): (cert, key) PEM when the
            notebook TLS mode is ``provided``. Default: None.
        web_tls (tuple[Secret, Secret] | None): (cert, key) PEM when the BLAST web
            page's TLS mode is ``provided``. Default: None.

    Returns:
        Plan: The groups, head first.

    Raises:
        SizingError: When a workload cannot fit the ACI limits.
        MissingSettingError: When a setting the workload needs is missing.
    """
    groups: list[GroupSpec] = []
    endpoints: list[tuple[str, str]] = []
    if workload.workloads.ipyparallel:
        g, e = ipyparallel.groups(
            workload, settings, secrets, head_private_ip=head_private_ip, notebook_tls=notebook_tls
        )
        groups += g
        endpoints += e
    if workload.workloads.blast:
        g, e = blast.groups(workload, settings, secrets, web_tls=web_tls)
        groups += g
        endpoints += e
    return Plan(settings.deployment, settings.location, tuple(groups), tuple(endpoints))
