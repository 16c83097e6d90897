"""A fake Azure Resource Manager for the real Azure SDK, and the local ACI emulator.

Typical use (see README.md beside this package)::

    with FakeArm() as arm:
        client = aci_client(arm)
        client.container_groups.begin_create_or_update("rg", "cg", group).result()
        assert arm.calls(method="PUT")

The layout: :mod:`.arm` (the generic ARM endpoint: routing, async operations, faults),
:mod:`.spec` (Swagger loading, ``$ref`` resolution, body validation), :mod:`.providers`
(one per resource provider: ACI, ACR runs and registries, resource groups, storage, managed
identities, role assignments), :mod:`.runtime` (emulator mode on Docker),
:mod:`.client` (SDK clients for the fake), :mod:`.azurite`, :mod:`.cli` (``aci-emulator``).
"""

from .arm import (
    FAKE_SUBSCRIPTION_ID,
    FAKE_TENANT_ID,
    FAKE_TOKEN,
    FAKE_USER_OBJECT_ID,
    ArmRequest,
    ArmResponse,
    AsyncOperation,
    Call,
    FakeArmServer,
    FakeCredential,
    Faults,
    ResourceProvider,
    arm_error,
)
from .client import LoopbackHttpPolicy, aci_client, is_loopback_url
from .fakearm import FakeArm
from .providers import (
    PROVIDERS,
    ManagedIdentityProvider,
    RegistriesProvider,
    ResourcesProvider,
    RoleAssignmentsProvider,
    RoleDefinitionsProvider,
    StorageProvider,
)
from .providers.aci import ACI_SPEC_FILE, ACI_SPEC_NAME, AciProvider, ContainerGroupState
from .providers.acr import ACR_SPEC_FILE, ACR_SPEC_NAME, AcrProvider, FakeRegistry
from .runtime import DockerRuntime, EmulatorSettings
from .spec import SPECS_DIR, SPECS_ENV, Problem, SpecNotFoundError, SwaggerSpec, specs_dir

__all__ = [
    "ACI_SPEC_FILE",
    "ACI_SPEC_NAME",
    "ACR_SPEC_FILE",
    "ACR_SPEC_NAME",
    "FAKE_SUBSCRIPTION_ID",
    "FAKE_TENANT_ID",
    "FAKE_TOKEN",
    "FAKE_USER_OBJECT_ID",
    "PROVIDERS",
    "SPECS_DIR",
    "SPECS_ENV",
    "AciProvider",
    "AcrProvider",
    "ArmRequest",
    "ArmResponse",
    "AsyncOperation",
    "Call",
    "ContainerGroupState",
    "DockerRuntime",
    "EmulatorSettings",
    "FakeArm",
    "FakeArmServer",
    "FakeCredential",
    "FakeRegistry",
    "Faults",
    "LoopbackHttpPolicy",
    "ManagedIdentityProvider",
    "Problem",
    "RegistriesProvider",
    "ResourceProvider",
    "ResourcesProvider",
    "RoleAssignmentsProvider",
    "RoleDefinitionsProvider",
    "SpecNotFoundError",
    "StorageProvider",
    "SwaggerSpec",
    "aci_client",
    "arm_error",
    "is_loopback_url",
    "specs_dir",
]
