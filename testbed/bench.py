"""What every benchmark shares: its ``--smoke`` mode.

``--smoke`` runs the smallest workload that still goes through every step of the bench and
prints its figures (which then mean nothing). ``make test`` runs each bench that way
(``tests/integration/test_benches.py``), so a broken bench fails CI; ``make bench`` runs
them at full size.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

SMOKE_HELP = (
    "a seconds-long run of the smallest workload that goes through every step "
    "(make test runs it; the figures then mean nothing)"
)


def parse_args(parser: argparse.ArgumentParser, smoke: Mapping[str, object]) -> argparse.Namespace:
    """Add ``--smoke`` to a bench's options and parse its command line.

    Args:
        parser: The bench's options.
        smoke: Option (destination name) to value in smoke mode; they override the command
            line.
    """
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    if args.smoke:
        for key, value in smoke.items():
            if not hasattr(args, key):
                raise AssertionError(f"--smoke sets {key}, which is no option of this bench")
            setattr(args, key, value)
    return args
