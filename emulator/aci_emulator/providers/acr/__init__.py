"""``Microsoft.ContainerRegistry``: the runs provider (:mod:`.provider`), the registry data
plane its runs push to (:mod:`.registry`), and registry management (:mod:`.registries`,
another spec)."""

from .provider import ACR_SPEC_FILE, ACR_SPEC_NAME, AcrProvider
from .registries import RegistriesProvider
from .registry import FakeRegistry

__all__ = ["ACR_SPEC_FILE", "ACR_SPEC_NAME", "AcrProvider", "FakeRegistry", "RegistriesProvider"]
