"""Output of every ``blast-jobs`` command: human text, or the JSON envelope of
:mod:`blast_client.cli.output` with ``--output json``.

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
from blast_client.cli.output import Output, envelope_text, output_format
from blast_client.errors import BlastClientError, ExitCode


@dataclass
class Result:
    """What a command returns.

    Attributes:
        data: JSON-able payload.
        text: Renders the payload for humans; defaults to pretty JSON.
        error: Set when the command did not fully succeed (its exit code is the error's);
            ``data`` is then the partial result.
        raw: Bytes to write to stdout verbatim in text mode (e.g. result files).
    """

    data: Any
    text: Callable[[Any], str] | None = None
    error: BlastClientError | None = None
    raw: bytes | None = field(default=None, repr=False)

    @property
    def code(self) -> int:
        """The exit code."""
        return int(self.error.exit_code if self.error is not None else ExitCode.OK)


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
    if output == Output.json:
        out.write(envelope_text(command, result.data, result.error) + "\n")
    elif result.raw is not None:
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


def emit_error(command: str, exc: BlastClientError, output: str, out: TextIO | None = None) -> int:
    """Print a failed command (the envelope on stdout with ``--output json``; one line on
    stderr in both formats) and return its exit code.

    Args:
        command: Command name.
        exc: The error; its ``data``, if any, is the partial result.
        output: "text" or "json".
        out: Stream; defaults to stdout.
    """
    return emit(command, Result(exc.data, lambda _: "", error=exc), output, out)


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
