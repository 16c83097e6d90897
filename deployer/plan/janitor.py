"""The janitor's group (pure): of a run (``deployer run``) or of a deployment
(``deployment.ttl``, ``idle_shutdown``), one small group of the ``deployer`` image running
``deployer-janitor`` with the deployment's managed identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from deployer import contract, defaults
from deployer.deployment_secrets import DeploymentSecrets, Secret
from deployer.plan import common
from deployer.plan.spec import BLAST, EnvValue, GroupSpec, Plan
from deployer.protocol import JANITOR_IMAGE
from deployer.settings import Settings
from deployer.sizing import Resources
from deployer.workload import Workload, duration_seconds

JANITOR_RESOURCES = Resources(cpu=5, memory=10)
"""0.5 vCPU and 1 GB: the janitor polls ARM and storage every few seconds."""


def janitor_group_name(deployment: str, run_id: str | None = None) -> str:
    """``<deployment>-<run>-janitor`` for a run, ``<deployment>-janitor`` for a deployment."""
    return f"{deployment}-{run_id}-janitor" if run_id else f"{deployment}-janitor"


def janitor_group(
    settings: Settings,
    storage_env: Mapping[str, EnvValue | None],
    *,
    run_id: str | None = None,
    interval: float = defaults.JANITOR_INTERVAL_S,
    arm_endpoint: str | None = None,
    access_token: str | None = None,
    extra: Mapping[str, EnvValue | None] | None = None,
) -> GroupSpec:
    """The janitor group of a run (``run_id``) or of a deployment (TTL, idle shutdown).

    Args:
        settings (Settings): Resolved settings (subscription and resource group required).
        storage_env (Mapping[str, EnvValue | None]): How it reaches storage (the workers' own).
        run_id (str | None): The run it finishes; None for a deployment janitor.
        interval (float): Seconds between its passes. Default:
            :data:`deployer.defaults.JANITOR_INTERVAL_S`.
        arm_endpoint (str | None): ``DEPLOYER_ARM_ENDPOINT`` as the container sees it (the
            local emulator); None for the public cloud.
        access_token (str | None): A static ARM token, only for the local emulator; in Azure
            the janitor signs in with the group's managed identity.
        extra (Mapping[str, EnvValue | None] | None): Further janitor variables
            (``JANITOR_DEADLINE``, ``JANITOR_IDLE_SHUTDOWN``, ...).
    """
    subscription, resource_group = settings.require_azure()
    values: dict[str, EnvValue | None] = {
        **storage_env,
        "AZURE_SUBSCRIPTION_ID": subscription,
        "DEPLOYER_RESOURCE_GROUP": resource_group,
        "DEPLOYER_LOCATION": settings.location,
        "DEPLOYER_ARM_ENDPOINT": arm_endpoint,
        "DEPLOYER_ACCESS_TOKEN": Secret(access_token) if access_token else None,
        "JANITOR_DEPLOYMENT": settings.deployment,
        "JANITOR_RUN": run_id,
        "JANITOR_INTERVAL": f"{interval:g}",
        **(extra or {}),
    }
    if settings.managed_identity_client_id:
        values["AZURE_CLIENT_ID"] = settings.managed_identity_client_id
    image = common.image(settings, JANITOR_IMAGE)
    container = common.container(contract.JANITOR, "janitor", image, JANITOR_RESOURCES, values)
    spec = common.group(
        settings,
        janitor_group_name(settings.deployment, run_id),
        BLAST if run_id else "deployment",
        "janitor",
        [container],
    )
    tags = common.run_tags(spec, run_id) if run_id else spec.tags
    return replace(spec, restart_policy="OnFailure", tags=tags)


def deployment_janitor(
    plan: Plan,
    workload: Workload,
    settings: Settings,
    secrets: DeploymentSecrets,
    *,
    arm_endpoint: str | None = None,
    access_token: str | None = None,
    interval: float = defaults.JANITOR_INTERVAL_S,
) -> Plan:
    """Add the deployment janitor to ``plan`` when ``deployment.ttl`` or ``idle_shutdown`` is
    set (pure).

    The TTL counts from the deployment's first container start, which the janitor reads from
    ARM, so a later ``deployer up`` or a janitor restart does not move it.

    Args:
        plan (Plan): The deployment's plan.
        workload (Workload): The workload file.
        settings (Settings): Resolved settings (without subscription when only planning).
        secrets (DeploymentSecrets): The notebook token, for reading kernel activity.
        arm_endpoint (str | None): ARM endpoint as containers see it (the local emulator).
        access_token (str | None): Static ARM token, for the local emulator only.
        interval (float): Seconds between passes. Default:
            :data:`deployer.defaults.JANITOR_INTERVAL_S`.
    """
    ttl = workload.deployment.ttl
    ipp = workload.workloads.ipyparallel
    idle = ipp.idle_shutdown if ipp else None
    if not ttl and not idle:
        return plan
    extra: dict[str, EnvValue | None] = {
        "JANITOR_TTL": str(duration_seconds(ttl)) if ttl else None,
        "JANITOR_IDLE_SHUTDOWN": str(duration_seconds(idle)) if idle else None,
    }
    if idle:
        # The controller's task activity, from its ipp-activity log lines (read through ARM).
        extra["JANITOR_IPP_LOGS"] = _controller(plan)
    if idle and ipp is not None and ipp.notebook:
        extra["JANITOR_NOTEBOOK_URL"] = dict(plan.endpoints).get(common.NOTEBOOK_ENDPOINT)
        extra["NOTEBOOK_TOKEN"] = Secret(secrets.notebook_token)
        extra["JANITOR_NOTEBOOK_INSECURE"] = "1" if ipp.tls.mode == "self-signed" else None
    storage: dict[str, EnvValue | None] = {}
    if workload.workloads.blast is not None:
        storage = dict(common.storage_env(settings, workload))
    if not settings.subscription or not settings.resource_group:
        settings = replace(
            settings, subscription="<subscription>", resource_group="<resource group>"
        )
    spec = janitor_group(
        settings,
        storage,
        interval=interval,
        arm_endpoint=arm_endpoint,
        access_token=access_token,
        extra=extra,
    )
    return replace(plan, groups=(*plan.groups, spec))


def _controller(plan: Plan) -> str | None:
    """``<group>/<container>`` of the plan's ipcontroller, if any."""
    return next(
        (
            f"{g.name}/{c.name}"
            for g in plan.groups
            for c in g.containers
            if c.role == contract.IPCONTROLLER.name
        ),
        None,
    )


def ending_notes(workload: Workload, settings: Settings) -> list[str]:
    """What ``deployer plan`` says about the janitor and the settings that end the
    deployment (pure)."""
    ttl = workload.deployment.ttl
    ipp = workload.workloads.ipyparallel
    idle = ipp.idle_shutdown if ipp else None
    rg = settings.resource_group or "<resource group>"
    notes = []
    if ttl:
        notes.append(
            f"deployment.ttl {ttl}: the janitor deletes every group {ttl} after the first "
            "container started, itself last"
        )
    if idle:
        notes.append(
            f"idle_shutdown {idle}: the janitor deletes the deployment after {idle} with no "
            "kernel activity on the notebook server and no ipyparallel task pending or running"
        )
    if ttl or idle or workload.workloads.blast is not None:
        notes.append(
            f"the janitor signs in with deployment.managed_identity, which needs the "
            f"Contributor role on resource group {rg}"
        )
    if workload.workloads.blast is not None:
        notes.append(
            "`deployer run` adds per-run groups <deployment>-<run>-w<N> (restartPolicy "
            "OnFailure, exit when drained) and <deployment>-<run>-janitor, which deletes "
            "them when the run ends"
        )
    return notes
