"""What a run cost: per-group vCPU-seconds and GB-seconds, priced (pure).

ACI bills a container group per second for its requested vCPU and memory, from the start of
its first container to the stop of its last. The janitor records those times from the groups'
own instance views (:class:`~deployer.run.state.GroupBill`) just before it deletes each
group; a group still running is billed up to ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from deployer.backends.base import ObservedGroup
from deployer.pricing import PriceSheet
from deployer.run.state import GroupBill


@dataclass(frozen=True)
class BillLine:
    """One group's share of the bill."""

    group: str
    kind: str
    seconds: float
    vcpu_seconds: float
    gb_seconds: float
    cost: float
    priority: str = "Regular"
    location: str = ""


@dataclass(frozen=True)
class Bill:
    """The run's bill: one line per group and the total."""

    lines: tuple[BillLine, ...]
    vcpu_seconds: float
    gb_seconds: float
    cost: float
    currency: str


def bill_of(
    group: ObservedGroup, kind: str, vcpu: float, memory_gb: float, now: float
) -> GroupBill | None:
    """Billing times of an observed group: first container start to last stop (or ``now``).

    Args:
        group (ObservedGroup): The group as last observed (with container times).
        kind (str): ``workers`` or ``janitor``.
        vcpu (float): The group's requested vCPU.
        memory_gb (float): The group's requested GB.
        now (float): Epoch seconds, the stop of containers that have not stopped.

    Returns:
        GroupBill | None: None when no container has started (nothing billed).
    """
    starts = [c.started for c in group.containers if c.started is not None]
    if not starts:
        return None
    stops = [
        c.finished if c.state == "Terminated" and c.finished is not None else now
        for c in group.containers
    ]
    priority = str((group.canonical.get("recreate") or {}).get("priority") or "Regular")
    return GroupBill(
        group.name,
        kind,
        vcpu,
        memory_gb,
        min(starts),
        max([*stops, min(starts)]),
        priority,
        (group.location or "").replace(" ", "").lower(),
    )


def price(bills: Iterable[GroupBill], prices: PriceSheet) -> Bill:
    """Price the recorded groups.

    Args:
        bills (Iterable[GroupBill]): One per group.
        prices (PriceSheet): From :func:`deployer.pricing.load`; a Spot group is priced at
            ``prices.rates("Spot")``.
    """
    lines: list[BillLine] = []
    for b in sorted(bills, key=lambda b: (b.kind != "workers", b.group)):
        vcpu_s, gb_s = b.vcpu * b.seconds, b.memory_gb * b.seconds
        per_vcpu_s, per_gb_s = prices.rates(b.priority)  # each group at its own priority
        cost = vcpu_s * per_vcpu_s + gb_s * per_gb_s
        lines.append(
            BillLine(b.group, b.kind, b.seconds, vcpu_s, gb_s, cost, b.priority, b.location)
        )
    return _total(lines, prices.currency)


def _total(lines: Sequence[BillLine], currency: str) -> Bill:
    return Bill(
        tuple(lines),
        sum(line.vcpu_seconds for line in lines),
        sum(line.gb_seconds for line in lines),
        sum(line.cost for line in lines),
        currency,
    )
