"""An autoscaled workload and the scaler ``deployer run`` builds for it, shared by the unit
tests of the run janitor's scaling pass and the emulator's end-to-end tests."""

from __future__ import annotations

from deployer.deployment_secrets import DeploymentSecrets, Secret
from deployer.run.autoscaling import RunScaler, run_scaler
from deployer.settings import Settings
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


def run_scaler_for(workload: str, run_id: str, admin: bool = False) -> RunScaler:
    """The scaler ``deployer run`` builds for ``workload`` as run ``run_id`` of deployment
    ``lab`` in westeurope.

    Args:
        workload (str): The workload file's YAML text.
        run_id (str): The run.
        admin (bool): Registry admin credentials instead of a managed identity.
    """
    settings = Settings(
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
    scaler = run_scaler(
        parse(workload), settings, DeploymentSecrets.generate("lab"), run_id, f"run-{run_id}"
    )
    assert scaler is not None
    return scaler
