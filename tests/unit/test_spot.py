"""Refused creates: which ARM errors mean "no Spot capacity now", "configuration" or "retry"."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance import models as m

from aci_emulator import FakeArm
from deployer import defaults
from deployer.errors import AzureError, QuotaError
from deployer.spot import (
    CAPACITY_CODES,
    SPOT_CONFIGURATION_CODES,
    classify,
    classify_error,
    spot_retry_at,
)


@pytest.mark.parametrize(
    ("status", "code", "kind", "quota"),
    [
        # The four documented Spot refusals of the request itself.
        (
            400,
            "SpotPriorityContainerGroupNotSupportedForInboundConnectivity",
            "configuration",
            False,
        ),
        (400, "SpotPriorityContainerGroupNotSupportedInSku", "configuration", False),
        (400, "SpotPriorityContainerGroupWithGPUResourcesNotSupported", "configuration", False),
        (400, "PriorityNotSpecified", "configuration", False),
        # Capacity: the named codes at any status, others by their words on 409/503.
        (409, "SkuNotAvailable", "capacity", False),
        (400, "SkuNotAvailable", "capacity", False),
        (409, "ServiceUnavailable", "capacity", False),
        (503, "ServiceUnavailable", "capacity", False),
        (409, "ContainerGroupQuotaReached", "capacity", True),
        (409, "InsufficientCapacity", "capacity", False),
        (503, "RegionCapacityNotAvailable", "capacity", False),
        (None, "QuotaExceeded", "capacity", True),
        # Transient: throttling, 5xx without a capacity code, no answer, conflicts.
        (429, "TooManyRequests", "retry", False),
        (429, "QuotaThrottled", "retry", False),
        (503, None, "retry", False),
        (500, "InternalServerError", "retry", False),
        (502, None, "retry", False),
        (None, None, "retry", False),
        (409, "AnotherOperationInProgress", "retry", False),
        # Anything else the request got wrong.
        (400, "InvalidRequestContent", "configuration", False),
        (403, "AuthorizationFailed", "configuration", False),
        (400, "QuotaPolicyBroken", "configuration", False),
    ],
)
def test_classify_table(status: int | None, code: str | None, kind: str, quota: bool) -> None:
    verdict = classify(status, code)
    assert (verdict.kind, verdict.quota) == (kind, quota)
    assert verdict.reason and "\n" not in verdict.reason


def test_the_documented_lists_are_the_ones_in_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for code in SPOT_CONFIGURATION_CODES | CAPACITY_CODES:
        assert f"`{code}`" in readme, code


def test_spot_retry_backs_off_doubling_up_to_the_cap() -> None:
    base, cap = defaults.SPOT_RETRY_BASE_S, defaults.SPOT_RETRY_MAX_S
    assert spot_retry_at(1000.0, 1) == 1000.0 + base
    assert spot_retry_at(1000.0, 2) == 1000.0 + 2 * base
    assert spot_retry_at(1000.0, 50) == 1000.0 + cap


def test_deployer_errors_are_classified_by_their_code() -> None:
    assert classify_error(AzureError("x", code="SkuNotAvailable")).kind == "capacity"
    assert classify_error(AzureError("x", code="HTTP429")).kind == "retry"
    assert classify_error(AzureError("x", code="ServiceUnreachable")).kind == "retry"
    assert classify_error(QuotaError("x", code="QuotaExceeded")).quota
    assert classify_error(ServiceRequestError("down")).kind == "retry"
    assert classify_error(ValueError("bug")).kind == "configuration"


def _spot_group() -> m.ContainerGroup:
    return m.ContainerGroup(
        location="westeurope",
        containers=[
            m.Container(
                name="w",
                image="r.azurecr.io/blast-worker:1",
                resources=m.ResourceRequirements(
                    requests=m.ResourceRequests(cpu=2.0, memory_in_gb=4.0)
                ),
            )
        ],
        os_type="Linux",
        restart_policy="OnFailure",
        priority="Spot",
    )


@pytest.mark.parametrize(
    ("code", "kind"), [("SkuNotAvailable", "capacity"), ("ServiceUnavailable", "capacity")]
)
def test_a_refusal_through_the_real_sdk_is_classified(
    fake_arm: FakeArm, fake_arm_aci_client: ContainerInstanceManagementClient, code: str, kind: str
) -> None:
    fake_arm.faults.script(
        409,
        method="PUT",
        path="containerGroups/",
        body={"error": {"code": code, "message": "not available in the location now"}},
    )
    with pytest.raises(HttpResponseError) as info:
        fake_arm_aci_client.container_groups.begin_create_or_update(
            "research", "w1", _spot_group()
        ).result()
    assert classify_error(info.value).kind == kind
    # The same Spot body is valid against the 2023-05-01 spec once capacity is back.
    created = fake_arm_aci_client.container_groups.begin_create_or_update(
        "research", "w1", _spot_group()
    ).result()
    assert created.priority == "Spot"
