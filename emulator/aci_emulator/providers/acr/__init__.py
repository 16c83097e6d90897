"""The ``Microsoft.ContainerRegistry`` runs provider (:mod:`.provider`) and the registry data
plane its runs push to (:mod:`.registry`)."""

from .provider import ACR_SPEC_FILE, ACR_SPEC_NAME, AcrProvider
from .registry import FakeRegistry

__all__ = ["ACR_SPEC_FILE", "ACR_SPEC_NAME", "AcrProvider", "FakeRegistry"]
