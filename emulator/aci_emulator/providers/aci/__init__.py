"""The ``Microsoft.ContainerInstance`` provider: operations (:mod:`.provider`), the resource
model (:mod:`.groups`) and capacity rules (:mod:`.capacity`)."""

from .groups import GROUP_TYPE, ContainerGroupState
from .provider import ACI_SPEC_FILE, ACI_SPEC_NAME, AciProvider

__all__ = ["ACI_SPEC_FILE", "ACI_SPEC_NAME", "GROUP_TYPE", "AciProvider", "ContainerGroupState"]
