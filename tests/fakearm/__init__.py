"""A fake Azure Resource Manager server for testing the deployer with the real SDK.

Typical use (see README.md in this folder)::

    with FakeArm() as arm:
        client = aci_client(arm)
        client.container_groups.begin_create_or_update("rg", "cg", group).result()
        assert arm.calls(method="PUT")
"""

from __future__ import annotations

from typing import Any

from .aci import ACI_SPEC_FILE, AciProvider, ContainerGroupState
from .acr import ACR_SPEC_FILE, AcrProvider, FakeRegistry
from .client import LoopbackHttpPolicy, aci_client, is_loopback_url
from .server import (
    FAKE_SUBSCRIPTION_ID,
    FAKE_TOKEN,
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
from .spec import SPECS_DIR, Problem, SpecNotFoundError, SwaggerSpec


class FakeArm(FakeArmServer):
    """The fake ARM server with every provider this package implements.

    Providers are attributes: ``arm.aci`` (Microsoft.ContainerInstance) and
    ``arm.acr`` (Microsoft.ContainerRegistry runs; give it ``arm.acr.storage`` and
    ``arm.acr.registry`` before scheduling runs).

    :param kwargs: passed to :class:`FakeArmServer` (``token``, ``subscription_id``).
    """

    def __init__(self, **kwargs: Any) -> None:
        self.aci = AciProvider()
        self.acr = AcrProvider()
        super().__init__([self.aci, self.acr], **kwargs)


__all__ = [
    "ACI_SPEC_FILE",
    "ACR_SPEC_FILE",
    "FAKE_SUBSCRIPTION_ID",
    "FAKE_TOKEN",
    "SPECS_DIR",
    "AciProvider",
    "AcrProvider",
    "ArmRequest",
    "ArmResponse",
    "AsyncOperation",
    "Call",
    "ContainerGroupState",
    "FakeArm",
    "FakeArmServer",
    "FakeCredential",
    "FakeRegistry",
    "Faults",
    "LoopbackHttpPolicy",
    "Problem",
    "ResourceProvider",
    "SpecNotFoundError",
    "SwaggerSpec",
    "aci_client",
    "arm_error",
    "is_loopback_url",
]
