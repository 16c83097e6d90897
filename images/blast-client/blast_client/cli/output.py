"""What every command line of the project shares: ``--output text|json`` before or after
the command, and the one JSON envelope.

``blast-jobs`` (this package) and ``deployer`` (which depends on this library) both declare
the option with :data:`OutputOpt` on the app, on each command and on each group of commands;
the value given after the command wins, then the one given before it, then ``text``.

With ``--output json`` a command prints exactly one envelope on stdout, of one shape whether
it succeeded or not (README, "CLI conventions")::

    {"command": "status", "ok": true, "data": {...}, "error": null}
    {"command": "wait", "ok": false, "data": [...] | null,
     "error": {"code": "job_failed", "message": "...", "hint": "..." | null, "exit_code": 1}}

``data`` is null on failure unless the command has partial results to give (the jobs a
failed wait saw, the summary of a failed run). Errors for people are one line on stderr, in
both formats; the exit code is the error's (:class:`~blast_client.errors.ExitCode`).
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from enum import StrEnum
from typing import Annotated, Any, Protocol

import typer

from blast_client.errors import ExitCode


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


class UserError(Protocol):
    """What the envelope needs of an error (``BlastClientError``, ``DeployerError``)."""

    @property
    def message(self) -> str:
        """What went wrong, in one line."""

    @property
    def hint(self) -> str | None:
        """What to do about it."""

    @property
    def code(self) -> str | None:
        """A short word for programs; None gives a generic one from the exit code."""

    @property
    def exit_code(self) -> int:
        """What the process exits with."""


def error_json(error: UserError) -> dict[str, Any]:
    """The envelope's ``error`` object.

    Args:
        error: The error.
    """
    code = error.code or ("invalid_input" if error.exit_code == ExitCode.INPUT else "error")
    return {
        "code": code,
        "message": error.message,
        "hint": error.hint,
        "exit_code": int(error.exit_code),
    }


def envelope(command: str, data: Any = None, error: UserError | None = None) -> dict[str, Any]:
    """The envelope: the same four keys on success and on failure.

    Args:
        command: The command, e.g. ``status`` or ``run status``.
        data: JSON-able payload; on failure the partial result, or None.
        error: The error, or None on success.
    """
    return {
        "command": command,
        "ok": error is None,
        "data": data,
        "error": None if error is None else error_json(error),
    }


def envelope_text(command: str, data: Any = None, error: UserError | None = None) -> str:
    """The envelope as the JSON text a command prints (values JSON lacks become strings).

    Args:
        command: The command.
        data: JSON-able payload.
        error: The error, or None on success.
    """
    return json.dumps(envelope(command, data, error), indent=2, sort_keys=True, default=str)
