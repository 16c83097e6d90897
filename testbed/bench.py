"""What every benchmark shares: its command line and its ``--smoke`` mode.

``--smoke`` runs the smallest workload that still goes through every step of the bench and
prints its figures (which then mean nothing). ``make test`` runs each bench that way
(``tests/integration/test_benches.py``), so a broken bench fails CI; ``make bench`` runs
them at full size.

A bench is a ``main(...)`` whose parameters are its typer options; ``run(main, smoke={...})``
adds ``--smoke`` and runs it as the bench's command line, like the project's other CLIs.
"""

from __future__ import annotations

import functools
import inspect
import sys
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import typer

SMOKE_HELP = (
    "a seconds-long run of the smallest workload that goes through every step "
    "(make test runs it; the figures then mean nothing)"
)

SmokeOpt = Annotated[bool, typer.Option("--smoke", help=SMOKE_HELP)]


def command(main: Callable[..., None], smoke: Mapping[str, object]) -> typer.Typer:
    """The bench's command line: ``main``'s options and ``--smoke``.

    Args:
        main: The bench; its parameters (typer options) are its options.
        smoke: Parameter name to value in smoke mode; they override the command line.

    Raises:
        AssertionError: A smoke key is no parameter of ``main`` (checked before any run).
    """
    hints = typing.get_type_hints(main, include_extras=True)
    params = [
        p.replace(annotation=hints[p.name]) for p in inspect.signature(main).parameters.values()
    ]
    for key in smoke:
        if key not in {p.name for p in params}:
            raise AssertionError(f"--smoke sets {key}, which is no option of this bench")

    @functools.wraps(main)
    def bench(*, smoke_mode: bool = False, **options: Any) -> None:
        main(**({**options, **smoke} if smoke_mode else options))

    # typer reads the options from the signature: main's, and --smoke (named apart from them).
    smoke_param = inspect.Parameter(
        "smoke_mode", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=SmokeOpt
    )
    bench.__signature__ = inspect.Signature([*params, smoke_param])  # type: ignore[attr-defined]
    bench.__annotations__ = {**hints, "smoke_mode": SmokeOpt, "return": None}
    doc = sys.modules[main.__module__].__doc__ or ""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(help=doc.splitlines()[0] if doc else None)(bench)
    return app


def run(main: Callable[..., None], smoke: Mapping[str, object]) -> None:
    """Run a bench from its command line (see ``command``); its description is its module
    docstring's first line."""
    command(main, smoke)()
