"""The janitor's heartbeat file, and the check its image's HEALTHCHECK runs."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from deployer import defaults

HEARTBEAT = Path(
    os.environ.get("JANITOR_HEARTBEAT") or Path(tempfile.gettempdir()) / "janitor.beat"
)


def beat() -> None:
    """Record that a pass has just finished."""
    HEARTBEAT.touch()


def fresh(now: float, interval: float) -> bool:
    """True when the last pass ended less than three intervals plus a minute ago."""
    try:
        return now - HEARTBEAT.stat().st_mtime < 3 * interval + 60
    except OSError:
        return False


def main() -> None:
    """``python -m deployer.run.heartbeat check``: exit 0 when fresh."""
    interval = float(os.environ.get("JANITOR_INTERVAL") or defaults.JANITOR_INTERVAL_S)
    ok = fresh(time.time(), interval)
    print("healthy" if ok else f"unhealthy: no janitor pass recorded in {HEARTBEAT} lately")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
