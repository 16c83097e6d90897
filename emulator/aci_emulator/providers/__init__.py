"""The resource providers the fake ARM server serves, one module (or package) each.

A provider is a :class:`~aci_emulator.arm.ResourceProvider` subclass that names its
``namespace`` and ``spec_name`` and serves operations with ``op_<OperationId>`` methods.
:data:`PROVIDERS` is the registry :class:`~aci_emulator.FakeArm` builds from: adding a
provider is its module plus one entry here.
"""

from ..arm import ResourceProvider
from .aci import AciProvider
from .acr import AcrProvider, RegistriesProvider
from .authorization import RoleAssignmentsProvider, RoleDefinitionsProvider
from .identity import ManagedIdentityProvider
from .resources import ResourcesProvider
from .storage import StorageProvider

PROVIDERS: tuple[type[ResourceProvider], ...] = (
    AciProvider,
    AcrProvider,
    RegistriesProvider,
    ResourcesProvider,
    StorageProvider,
    ManagedIdentityProvider,
    RoleAssignmentsProvider,
    RoleDefinitionsProvider,
)
"""Every provider the server serves. A request goes to the operation whose path template is
the most specific among all of them (ties: the first here)."""

__all__ = [
    "PROVIDERS",
    "AciProvider",
    "AcrProvider",
    "ManagedIdentityProvider",
    "RegistriesProvider",
    "ResourcesProvider",
    "RoleAssignmentsProvider",
    "RoleDefinitionsProvider",
    "StorageProvider",
]
