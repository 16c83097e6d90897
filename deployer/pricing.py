"""Cost estimates from the price data file (``deployer/data/aci-prices.json``).

ACI bills a container group per second for its requested vCPU and GB. The price
file states its source URL and the date it was read; ``--prices FILE`` or
``deployment.prices`` in the workload file override it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from deployer import defaults
from deployer.errors import InputError
from deployer.sizing import Resources
from deployer.workload import Prices

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class PriceSheet:
    """Prices applied to one plan.

    Args:
        vcpu_second (float): Price of one vCPU for one second.
        gb_second (float): Price of one GB for one second.
        currency (str): Currency.
        source (str): Where the prices come from (URL, file or workload file).
        read_on (str | None): When they were read, if known.
        region_note (str | None): Set when the region had no own entry.
    """

    vcpu_second: float
    gb_second: float
    currency: str
    source: str
    read_on: str | None = None
    region_note: str | None = None

    def per_hour(self, resources: Resources) -> float:
        """Return the cost of ``resources`` (tenths) for one hour."""
        cpu = resources.cpu / defaults.TENTHS
        gb = resources.memory / defaults.TENTHS
        return (cpu * self.vcpu_second + gb * self.gb_second) * SECONDS_PER_HOUR


def load(
    location: str, override_file: Path | None = None, inline: Prices | None = None
) -> PriceSheet:
    """Choose the prices for ``location``.

    Args:
        location (str): Azure region, e.g. ``eastus``.
        override_file (Path | None): A price file in the bundled file's format
            (``--prices``); wins over everything. Default: None.
        inline (Prices | None): ``deployment.prices`` of the workload file.
            Default: None.

    Raises:
        InputError: When the price file cannot be read or lacks prices.
    """
    if override_file is None and inline is not None:
        return PriceSheet(inline.vcpu_second, inline.gb_second, inline.currency, "workload file")
    path = override_file or defaults.price_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        regions = data.get("regions", {})
        entry = regions.get(location.lower().replace(" ", ""))
        note = None
        if entry is None:
            entry = data["default"]
            note = f"no prices for {location} in {path.name}; used its default entry"
        return PriceSheet(
            vcpu_second=float(entry["vcpu_second"]),
            gb_second=float(entry["gb_second"]),
            currency=str(data.get("currency", "USD")),
            source=str(data.get("source", path)),
            read_on=data.get("read_on"),
            region_note=note,
        )
    except OSError as exc:
        raise InputError(f"cannot read the price file {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InputError(
            f"{path} is not a price file",
            hint='it needs {"currency": ..., "default": {"vcpu_second": X, "gb_second": Y}, '
            '"regions": {"<region>": {...}}}',
        ) from None
