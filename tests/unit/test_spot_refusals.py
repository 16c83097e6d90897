"""The fake ARM server refuses Spot requests ACI refuses, with ACI's error codes (real SDK),
and the deployer classifies them as configuration errors (no fallback, no retry loop)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerinstance import models as m

from aci_emulator import FakeArm, aci_client
from deployer.backends.aci import AciBackend, make_client, to_model
from deployer.plan import ContainerSpec, GroupSpec
from deployer.sizing import Resources
from deployer.spot import SPOT_CONFIGURATION_CODES, classify
from testbed.fake_arm import DEPLOYER_RESOURCE_GROUP


def _spot_model() -> m.ContainerGroup:
    worker = ContainerSpec("w", "blast-worker", "r.azurecr.io/blast-worker:1", Resources(10, 20))
    spec = GroupSpec("spot-1", "blast", "workers", (worker,), priority="Spot")
    return to_model(spec, "westeurope")


def _with_ip(g: m.ContainerGroup) -> None:
    g.containers[0].ports = [m.ContainerPort(port=80)]
    g.ip_address = m.IpAddress(type="Public", ports=[m.Port(port=80)])


def _with_subnet(g: m.ContainerGroup) -> None:
    g.subnet_ids = [m.ContainerGroupSubnetId(id="/subscriptions/s/resourceGroups/r/x/subnets/a")]


def _confidential(g: m.ContainerGroup) -> None:
    g.sku = "Confidential"


def _gpu(g: m.ContainerGroup) -> None:
    g.containers[0].resources.requests.gpu = m.GpuResource(count=1, sku="V100")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (_with_ip, "SpotPriorityContainerGroupNotSupportedForInboundConnectivity"),
        (_with_subnet, "SpotPriorityContainerGroupNotSupportedForInboundConnectivity"),
        (_confidential, "SpotPriorityContainerGroupNotSupportedInSku"),
        (_gpu, "SpotPriorityContainerGroupWithGPUResourcesNotSupported"),
    ],
)
def test_a_spot_group_with_network_a_non_standard_sku_or_gpu_is_refused_with_acis_code(
    fake_arm: FakeArm, change: Callable[[m.ContainerGroup], None], code: str
) -> None:
    body = _spot_model()
    change(body)
    with aci_client(fake_arm) as aci, pytest.raises(HttpResponseError) as caught:
        aci.container_groups.begin_create_or_update(DEPLOYER_RESOURCE_GROUP, "spot-1", body)
    assert caught.value.status_code == 400 and caught.value.error is not None
    assert caught.value.error.code == code and code in SPOT_CONFIGURATION_CODES
    assert classify(400, code).kind == "configuration"
    assert fake_arm.aci.group(DEPLOYER_RESOURCE_GROUP, "spot-1") is None
    # The same group as Regular is accepted: only Spot is refused.
    body.priority = "Regular"
    with aci_client(fake_arm) as aci:
        aci.container_groups.begin_create_or_update(
            DEPLOYER_RESOURCE_GROUP, "spot-1", body
        ).result()


def test_the_deployers_spot_body_is_accepted(
    fake_arm: FakeArm, deployer_arm: dict[str, str]
) -> None:
    """What the deployer renders for a Spot group (no IP, no subnet, Standard) passes."""
    backend = AciBackend(
        make_client(fake_arm.subscription_id), DEPLOYER_RESOURCE_GROUP, "westeurope"
    )
    worker = ContainerSpec("w", "blast-worker", "r.azurecr.io/blast-worker:1", Resources(10, 20))
    backend.create_or_update(GroupSpec("spot-2", "blast", "workers", (worker,), priority="Spot"))
    stored = fake_arm.aci.group(DEPLOYER_RESOURCE_GROUP, "spot-2")
    assert stored is not None and stored.properties["priority"] == "Spot"
    assert stored.properties.get("sku", "Standard") == "Standard"
