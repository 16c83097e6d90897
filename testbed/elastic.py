"""Autoscaled workloads for the scaler's tests and benches: the run scaler ``deployer run``
builds for a workload (the run janitor's scaling pass and the emulator's end-to-end tests),
and a worker group template with its scale settings (the autoscaler's tests and the
reaction bench)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from deployer.autoscale import ScaleSettings
from deployer.deployment_secrets import DeploymentSecrets, Secret
from deployer.plan import GroupSpec, build
from deployer.run.autoscaling import RunScaler, run_scaler
from deployer.settings import Settings
from deployer.sizing import Resources
from deployer.workload import parse

PRIMARY, OVERFLOW = "westeurope", "northeurope"

# 8 GB to cache: one 1-vCPU worker per group (the sizing rules), so 4 workers are 4 groups.
ELASTIC = f"""\
deployment: {{name: lab, overflow_locations: [{OVERFLOW}]}}
workloads:
  blast:
    threads_per_worker: 1
    priority: spot
    spot_fallback: true
    autoscale: {{max_workers: 4, target_backlog_per_worker: 4, scale_in_after: 20s}}
    databases: [{{name: demo, bytes_to_cache: 8000000000}}]
"""


def lab_settings(admin: bool = False) -> Settings:
    """Resolved settings of deployment ``lab`` in westeurope (storage by connection string).

    Args:
        admin (bool): Registry admin credentials instead of a managed identity.
    """
    return Settings(
        deployment="lab",
        location=PRIMARY,
        registry="r.azurecr.io",
        image_tag="1",
        managed_identity=None if admin else "/id",
        managed_identity_client_id=None if admin else "client",
        registry_auth="admin" if admin else "identity",
        registry_username="lab" if admin else None,
        registry_password=Secret("pull-secret") if admin else None,
        storage_connection_string=Secret("AccountName=x;AccountKey=k"),
    )


def scale_settings(**kw: Any) -> ScaleSettings:
    """Scale settings for the autoscaler's tests: 2 vCPU / 3 GB workers, two per 4-vCPU group;
    0..24 workers, 4 batches each, in westeurope (``kw`` overrides any field)."""
    base = ScaleSettings(
        min_workers=0,
        max_workers=24,
        target_backlog_per_worker=4,
        scale_in_after=120,
        worker=Resources(20, 30),
        workers_per_group=2,
        locations=(PRIMARY,),
        name_prefix="lab-r1-w",
    )
    return replace(base, **kw)


def run_scaler_for(workload: str, run_id: str, admin: bool = False) -> RunScaler:
    """The scaler ``deployer run`` builds for ``workload`` as run ``run_id`` of deployment
    ``lab`` in westeurope.

    Args:
        workload (str): The workload file's YAML text.
        run_id (str): The run.
        admin (bool): Registry admin credentials instead of a managed identity.
    """
    settings = lab_settings(admin)
    scaler = run_scaler(
        parse(workload), settings, DeploymentSecrets.generate("lab"), run_id, f"run-{run_id}"
    )
    assert scaler is not None
    return scaler


def elastic_setup(blast: str, subnet: str | None = None) -> tuple[GroupSpec, ScaleSettings]:
    """A run worker group template and the scaler's settings for deployment ``lab``.

    Args:
        blast (str): YAML flow-mapping entries of ``workloads.blast`` besides its
            databases (one tiny database), e.g. ``threads_per_worker: 2, priority: spot``.
        subnet (str | None): The deployment's subnet id.
    """
    loaded = parse(
        f"deployment: {{name: lab, overflow_locations: [{OVERFLOW}]}}\n"
        f"workloads:\n  blast: {{{blast}, databases: [{{name: tiny, bytes_to_cache: 1000}}]}}\n"
    )
    s = ScaleSettings.from_workload(loaded, PRIMARY, "lab-r1-w")
    one_group = loaded.with_blast(workers=s.workers_per_group)
    settings_ = Settings(
        deployment="lab",
        location=PRIMARY,
        registry="r.azurecr.io",
        image_tag="1",
        managed_identity="/id",
        managed_identity_client_id="client",
        storage_account="data",
        subnet_id=subnet,
    )
    [template] = build(one_group, settings_, DeploymentSecrets.generate("lab")).groups
    return template, s
