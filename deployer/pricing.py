"""Cost estimates from the price data file (``deployer/data/aci-prices.json``).

ACI bills a container group per second for its requested vCPU and GB, at the
regular or the Spot price (``properties.priority``). The price file states its
source URL and the date it was read, and holds the Spot prices under ``spot``;
``--prices FILE`` or ``deployment.prices`` (with ``spot``) in the workload file
override it. Without Spot prices, Spot groups are priced at the regular price, an
upper bound, and the sheet says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        spot_vcpu_second (float | None): Spot price of one vCPU for one second.
        spot_gb_second (float | None): Spot price of one GB for one second.
        spot_note (str | None): Set when there are no Spot prices.
    """

    vcpu_second: float
    gb_second: float
    currency: str
    source: str
    read_on: str | None = None
    region_note: str | None = None
    spot_vcpu_second: float | None = None
    spot_gb_second: float | None = None
    spot_note: str | None = None

    def rates(self, priority: str = "Regular") -> tuple[float, float]:
        """(per vCPU-second, per GB-second) at ``priority`` (``Regular`` or ``Spot``).

        Spot without Spot prices is priced at the regular price (an upper bound).
        """
        if priority.lower() == "spot" and self.spot_vcpu_second is not None:
            return self.spot_vcpu_second, self.spot_gb_second or 0.0
        return self.vcpu_second, self.gb_second

    def per_hour(self, resources: Resources, priority: str = "Regular") -> float:
        """Return the cost of ``resources`` (tenths) for one hour at ``priority``."""
        cpu = resources.cpu / defaults.TENTHS
        gb = resources.memory / defaults.TENTHS
        vcpu_second, gb_second = self.rates(priority)
        return (cpu * vcpu_second + gb * gb_second) * SECONDS_PER_HOUR


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
        spot = inline.spot
        return PriceSheet(
            inline.vcpu_second,
            inline.gb_second,
            inline.currency,
            "workload file",
            spot_vcpu_second=spot.vcpu_second if spot else None,
            spot_gb_second=spot.gb_second if spot else None,
            spot_note=None if spot else _NO_SPOT.format(where="deployment.prices"),
        )
    path = override_file or defaults.price_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entry, note = _entry(data, location, path.name, "")
        spot_vcpu = spot_gb = spot_note = None
        if "spot" in data:
            spot, spot_region = _entry(data["spot"], location, path.name, "Spot ")
            if note and spot_region:
                note = (
                    f"no prices (regular or Spot) for {location} in {path.name}; "
                    "used its default entries"
                )
            else:
                note = note or spot_region
            spot_vcpu, spot_gb = float(spot["vcpu_second"]), float(spot["gb_second"])
        else:
            spot_note = _NO_SPOT.format(where=path.name)
        return PriceSheet(
            vcpu_second=float(entry["vcpu_second"]),
            gb_second=float(entry["gb_second"]),
            currency=str(data.get("currency", "USD")),
            source=str(data.get("source", path)),
            read_on=data.get("read_on"),
            region_note=note,
            spot_vcpu_second=spot_vcpu,
            spot_gb_second=spot_gb,
            spot_note=spot_note,
        )
    except OSError as exc:
        raise InputError(f"cannot read the price file {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InputError(
            f"{path} is not a price file",
            hint='it needs {"currency": ..., "default": {"vcpu_second": X, "gb_second": Y}, '
            '"regions": {"<region>": {...}}}, optionally "spot" with its own "default" and '
            '"regions"',
        ) from None


_NO_SPOT = "no Spot prices in {where}; Spot groups are priced at the regular price"


def _entry(data: dict[str, Any], location: str, name: str, what: str) -> tuple[Any, str | None]:
    """The ``regions`` entry of ``location``, else ``default`` with a note."""
    entry = data.get("regions", {}).get(location.lower().replace(" ", ""))
    if entry is not None:
        return entry, None
    return data["default"], f"no {what}prices for {location} in {name}; used its default entry"


def fixed_prices() -> dict[str, Any]:
    """The bundled prices of what ``deployer init`` creates (``data/fixed-prices.json``):
    the registry per day, storage per GB-month, with their source and date."""
    path = defaults.price_file(defaults.FIXED_PRICE_FILE)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
