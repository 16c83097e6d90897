"""What every command line of the project shares: ``--output text|json`` before or after
the command.

``blast-jobs`` (this package) and ``deployer`` (which depends on this library) both declare
the option with :data:`OutputOpt` on the app, on each command and on each group of commands;
the value given after the command wins, then the one given before it, then ``text``.
"""

from __future__ import annotations

from contextvars import ContextVar
from enum import StrEnum
from typing import Annotated

import typer


class Output(StrEnum):
    """Output format of every command."""

    text = "text"
    json = "json"


OutputOpt = Annotated[
    Output | None,
    typer.Option(
        "--output",
        "-o",
        help="text: for people; json: one envelope {command, ok, data, error} on stdout. "
        "Accepted before or after the command. Default: text.",
    ),
]

_given_before: ContextVar[Output | None] = ContextVar("output_before_command", default=None)


def remember_output(given: Output | None, *, nested: bool = False) -> None:
    """Keep the ``--output`` given before the command (the app's callback calls this).

    Args:
        given: The flag's value; None when not given.
        nested: True in the callback of a group of commands (``blast-jobs db``): a flag
            there overrides one given before it, and its absence keeps that one.
    """
    if given is not None or not nested:
        _given_before.set(given)


def output_format(given: Output | None) -> Output:
    """The command's output format: its own ``--output``, else the one given before the
    command, else text.

    Args:
        given: The command's own ``--output``; None when not given.
    """
    return given or _given_before.get() or Output.text
