"""The resource providers the fake ARM server serves, one module (or package) each.

A provider is a :class:`~aci_emulator.arm.ResourceProvider` subclass that names its
``namespace`` and ``spec_name`` and serves operations with ``op_<OperationId>`` methods.
:data:`PROVIDERS` is the registry :class:`~aci_emulator.FakeArm` builds from: adding a
provider is its module plus one entry here.
"""

from ..arm import ResourceProvider
from .aci import AciProvider
from .acr import AcrProvider

PROVIDERS: tuple[type[ResourceProvider], ...] = (AciProvider, AcrProvider)
"""Every provider the server serves, in routing order."""

__all__ = ["PROVIDERS", "AciProvider", "AcrProvider"]
