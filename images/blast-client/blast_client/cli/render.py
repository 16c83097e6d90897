"""Output for every command: human text, or one JSON envelope with ``--output json``.

The envelope (shared with ``deployer``)::

    {"command": "<name>", "ok": true, "data": <payload>}
    {"command": "<name>", "ok": false, "data": <payload or null>,
     "error": {"code": str, "message": str, "hint": str | null, "exit_code": int}}

Exit codes: 0 success; 1 failure (storage unreachable, job failed or missing, wait timed
out); 2 bad usage, input or configuration. Errors for people are one line on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TextIO

import typer

from blast_client.cli.context import Context
from blast_client.cli.output import Output, output_format
from blast_client.errors import BlastClientError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


@dataclass
class Result:
    """What a command returns.

    Attributes:
        data: JSON-able payload.
        text: Renders the payload for humans; defaults to pretty JSON.
        error: Set when the command did not fully succeed (its exit code is the error's).
        raw: Bytes to write to stdout verbatim in text mode (e.g. result files).
    """

    data: Any
    text: Callable[[Any], str] | None = None
    error: BlastClientError | None = None
    raw: bytes | None = field(default=None, repr=False)

    @property
    def code(self) -> int:
        """The exit code."""
        return self.error.exit_code if self.error is not None else EXIT_OK


def envelope(command: str, data: Any, error: BlastClientError | None) -> dict[str, Any]:
    """The JSON envelope.

    Args:
        command: Command name.
        data: Payload.
        error: The error, or None on success.
    """
    doc: dict[str, Any] = {"command": command, "ok": error is None, "data": data}
    if error is not None:
        doc["error"] = error.to_json()
    return doc


def error_line(error: BlastClientError) -> str:
    """The one stderr line for people: message, then the hint.

    Args:
        error: The error.
    """
    return f"blast-jobs: {error.message}" + (f"; {error.hint}" if error.hint else "") + "\n"


def emit(command: str, result: Result, output: str, out: TextIO | None = None) -> int:
    """Print ``result`` in the chosen format and return its exit code.

    Args:
        command: Command name, recorded in the JSON envelope.
        result: The command's result.
        output: "text" or "json".
        out: Stream; defaults to stdout.
    """
    out = out or sys.stdout
    if output == "json":
        doc = envelope(command, result.data, result.error)
        out.write(json.dumps(doc, indent=2, default=str) + "\n")
        return result.code
    if result.raw is not None:
        out.flush()
        sys.stdout.buffer.write(result.raw)
        sys.stdout.buffer.flush()
    else:
        text = result.text(result.data) if result.text else json.dumps(result.data, indent=2)
        if text:
            out.write(text if text.endswith("\n") else text + "\n")
    if result.error is not None:
        sys.stderr.write(error_line(result.error))
    return result.code


def emit_error(command: str, exc: BlastClientError, output: str) -> int:
    """Print a failed command (JSON envelope on stdout, or one line on stderr).

    Args:
        command: Command name.
        exc: The error.
        output: "text" or "json".
    """
    if output == "json":
        doc = envelope(command, exc.data, exc)
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    else:
        sys.stderr.write(error_line(exc))
    return exc.exit_code


def run(command: str, output: Output | None, action: Callable[[Context], Result]) -> NoReturn:
    """Run one command: resolve ``--output``, print its result or error, exit with its code.

    Args:
        command: Command name, recorded in the JSON envelope.
        output: The command's own ``--output`` (None: the one before the command, or text).
        action: Does the work with a fresh :class:`Context`.
    """
    fmt = output_format(output)
    ctx = Context(output=fmt)
    try:
        code = emit(command, action(ctx), fmt)
    except BlastClientError as exc:
        code = emit_error(command, exc, fmt)
    raise typer.Exit(code)
