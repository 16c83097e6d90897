"""What a refused container-group create means, and when to try Spot again (pure).

:func:`classify` maps an ARM error (HTTP status and error code) to one of three verdicts:

* ``capacity``: no capacity (or no quota) in that region now. A Spot worker group is
  recreated as regular when ``blast.spot_fallback`` is true, else Spot is tried again after
  :func:`spot_retry_at`; a regular group goes to the next overflow location.
* ``configuration``: the request itself is wrong; retrying cannot help, the user (or a bug
  report) must act.
* ``retry``: throttling or a transient failure; send the same request again after a backoff.

The lists below are the ones documented in the README ("Spot and fallback"); keep them there too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from deployer import defaults
from deployer.errors import DeployerError

Kind = Literal["capacity", "configuration", "retry"]

SPOT_CONFIGURATION_CODES: Final = frozenset(
    {
        "SpotPriorityContainerGroupNotSupportedForInboundConnectivity",
        "SpotPriorityContainerGroupNotSupportedInSku",
        "SpotPriorityContainerGroupWithGPUResourcesNotSupported",
        "PriorityNotSpecified",
    }
)
"""Documented Spot refusals of the request itself (network properties, SKU, GPU, value)."""

CAPACITY_CODES: Final = frozenset({"SkuNotAvailable", "ServiceUnavailable"})
"""Codes that mean "not available in this region now", whatever their status."""

CAPACITY_WORDS: Final = ("capacity", "quota", "notavailable", "unavailable")
"""A 409 or 503 whose code contains one of these (any case) is a capacity refusal too,
e.g. ``ContainerGroupQuotaReached`` or ``InsufficientCapacity``."""

QUOTA_WORDS: Final = ("quota",)
"""Capacity refusals that concern the region's quota: no group of any priority fits there."""

CAPACITY_STATUSES: Final = frozenset({409, 503})
RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
RETRY_CODES: Final = frozenset(
    {"Conflict", "AnotherOperationInProgress", "TooManyRequests", "ServiceUnreachable"}
)


@dataclass(frozen=True)
class Verdict:
    """What a refused create means.

    Args:
        kind (Kind): ``capacity``, ``configuration`` or ``retry``.
        status (int | None): HTTP status (None when Azure was not reached).
        code (str | None): ARM error code.
        quota (bool): The region's quota is used up (every priority), not just Spot capacity.
        reason (str): One sentence for the decision log.
    """

    kind: Kind
    status: int | None
    code: str | None
    quota: bool = False
    reason: str = ""


def classify(status: int | None, code: str | None) -> Verdict:
    """Classify a refused container-group create.

    Args:
        status (int | None): HTTP status of the ARM response; None when no response came
            (network failure) or only the code is known.
        code (str | None): The ARM error code (``error.code``), if any.

    Returns:
        Verdict: The verdict, with the reason in one sentence.
    """
    name = code or ""
    lowered = name.lower()
    if name in SPOT_CONFIGURATION_CODES:
        return Verdict(
            "configuration", status, code, reason=f"ACI refused the Spot request itself ({name})"
        )
    worded = any(w in lowered for w in CAPACITY_WORDS)
    if name in CAPACITY_CODES or ((status is None or status in CAPACITY_STATUSES) and worded):
        quota = any(w in lowered for w in QUOTA_WORDS)
        what = "quota" if quota else "capacity"
        return Verdict(
            "capacity", status, code, quota, f"no {what} in the region now ({name or status})"
        )
    if status is None or status in RETRY_STATUSES or name in RETRY_CODES:
        return Verdict("retry", status, code, reason=f"transient ({name or status or 'no answer'})")
    return Verdict(
        "configuration", status, code, reason=f"ACI refused the request ({name or status})"
    )


def classify_error(exc: BaseException) -> Verdict:
    """Classify an exception from a create: an SDK error, or the deployer's translation.

    Args:
        exc (BaseException): ``HttpResponseError`` (status and code), a network error, or a
            :class:`~deployer.errors.DeployerError` carrying the ARM code (``HTTP<status>``
            when Azure gave none).
    """
    if isinstance(exc, HttpResponseError):
        code = exc.error.code if exc.error and exc.error.code else None
        return classify(exc.status_code, code)
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return classify(None, None)
    if isinstance(exc, DeployerError):
        code = exc.code or ""
        if code.startswith("HTTP") and code[4:].isdigit():
            return classify(int(code[4:]), None)
        return classify(None, exc.code)
    return Verdict("configuration", None, None, reason=f"unexpected error {type(exc).__name__}")


def spot_retry_at(refused_at: float, refusals: int) -> float:
    """When to try Spot again in a region that refused it ``refusals`` times in a row.

    The wait starts at :data:`~deployer.defaults.SPOT_RETRY_BASE_S` and doubles per
    refusal, up to :data:`~deployer.defaults.SPOT_RETRY_MAX_S`.

    Args:
        refused_at (float): Epoch seconds of the last refusal.
        refusals (int): Consecutive refusals (>= 1).
    """
    wait = defaults.SPOT_RETRY_BASE_S * (1 << min(max(0, refusals - 1), 30))
    return refused_at + min(wait, defaults.SPOT_RETRY_MAX_S)
