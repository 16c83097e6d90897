"""The deployer against the fake ARM server, for tests and benches: where the Azure REST specs
must be, the resource group and the environment variables the deployer's tests isolate, and a
cluster workload of many groups."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterable, Iterator

import pytest

from aci_emulator import FakeRegistry


def require_specs(specs_dir: pathlib.Path, ci: bool) -> pathlib.Path:
    """Return ``specs_dir``; when it is missing, skip the test, or fail it under CI.

    :param specs_dir: the Azure REST specs directory.
    :param ci: True when the ``CI`` environment variable is set: nothing may skip there.
    :return: ``specs_dir``.
    """
    if not specs_dir.is_dir():
        message = (
            f"Azure REST specs not found at {specs_dir}: the fake ARM server validates "
            "request bodies against them"
        )
        if ci:
            pytest.fail(message + " (CI is set, so this is a failure, not a skip)")
        pytest.skip(message)
    return specs_dir


DEPLOYER_RESOURCE_GROUP = "research"
DEPLOYER_ENV_VARS = (
    "AZURE_SUBSCRIPTION_ID",
    "DEPLOYER_RESOURCE_GROUP",
    "DEPLOYER_LOCATION",
    "DEPLOYER_REGISTRY",
    "DEPLOYER_IMAGE_TAG",
    "DEPLOYER_ARM_ENDPOINT",
    "DEPLOYER_REGISTRY_ENDPOINT",
    "DEPLOYER_ACCESS_TOKEN",
    "DEPLOYER_REGISTRY_USERNAME",
    "DEPLOYER_REGISTRY_PASSWORD",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
)
"""Azure settings the deployer reads; tests unset them so the machine's own never leak in."""


IDENTITY = (
    "/subscriptions/00000000-0000-0000-0000-00000000fa4e/resourceGroups/research/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/aci-research"
)


def cluster_yaml(engines: int = 44, vcpu: float = 1, notebook: bool = True) -> str:
    """A workload of one head group plus ceil(engines / 4) engine groups (1 vCPU each)."""
    return f"""
    deployment:
      name: lab
      location: eastus
      registry: aciresearch.azurecr.io
      image_tag: "1.0"
      managed_identity: {IDENTITY}
      managed_identity_client_id: 11111111-1111-1111-1111-111111111111
      storage_account: aciresearchdata
    workloads:
      ipyparallel:
        engines: {engines}
        vcpu_per_engine: {vcpu}
        notebook: {str(notebook).lower()}
      blast:
        workers: 1
        threads_per_worker: 2
        databases:
          - {{name: demo, bytes_to_cache: 1000000}}
    """


REGISTRY_ADMIN = ("aciresearch", "registry-password-9f8e7d")
"""The admin user and password the registry of :func:`registry_with_images` accepts."""
SEEDED_TAGS = ("1.0", "1.1", "latest")
"""The tags the deployer's fake-ARM tests pin (``cluster_yaml``'s, an update's, the default)."""


@contextlib.contextmanager
def registry_with_images(tags: Iterable[str] = SEEDED_TAGS) -> Iterator[FakeRegistry]:
    """A registry data plane holding a manifest of every image ACI deploys, at ``tags``.

    The deployer checks with it (``DEPLOYER_REGISTRY_ENDPOINT``) that each image it deploys
    exists, with the groups' credentials: :data:`REGISTRY_ADMIN`, or the fake ARM token
    exchanged for an ACR token (managed identity).

    :param tags: the tags each image has.
    :return: the started registry; stopped afterwards.
    """
    from deployer.imagebuild import catalogue, images

    from .engine import REPO

    registry = FakeRegistry().start()
    try:
        registry.admins[REGISTRY_ADMIN[0]] = REGISTRY_ADMIN[1]
        found = catalogue.load(images.find_images_dir(REPO))
        for spec in found.images:
            if spec.service:
                for tag in dict.fromkeys(tags):
                    registry.push(spec.name, tag, {"org.aci-research.image": spec.name})
        yield registry
    finally:
        registry.stop()
