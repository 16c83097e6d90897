"""Output for every command: human text, or one JSON envelope with ``--output json``.

Exit codes: 0 success; 1 a user-facing error (storage unreachable, job failed or missing,
wait timed out); 2 usage or configuration error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit code ``code``.

    Args:
        message: What went wrong and what to do next.
        code: Exit code (1 by default).
        data: Optional payload for the JSON envelope.
    """

    def __init__(self, message: str, code: int = EXIT_ERROR, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.data = data


@dataclass
class Result:
    """What a command returns.

    Attributes:
        data: JSON-able payload.
        text: Renders the payload for humans; defaults to pretty JSON.
        code: Exit code.
        error: Error message when the command did not fully succeed.
        raw: Bytes to write to stdout verbatim in text mode (e.g. result files).
    """

    data: Any
    text: Callable[[Any], str] | None = None
    code: int = EXIT_OK
    error: str | None = None
    raw: bytes | None = field(default=None, repr=False)


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
        envelope = {"ok": result.code == EXIT_OK, "command": command, "data": result.data}
        if result.error:
            envelope["error"] = result.error
        out.write(json.dumps(envelope, indent=2, default=str) + "\n")
    elif result.raw is not None:
        out.flush()
        sys.stdout.buffer.write(result.raw)
        sys.stdout.buffer.flush()
    else:
        text = result.text(result.data) if result.text else json.dumps(result.data, indent=2)
        if text:
            out.write(text if text.endswith("\n") else text + "\n")
        if result.error:
            sys.stderr.write(f"blast-jobs: {result.error}\n")
    return result.code


def emit_error(command: str, exc: CliError, output: str) -> int:
    """Print a user-facing error (JSON envelope on stdout, or a line on stderr).

    Args:
        command: Command name.
        exc: The error.
        output: "text" or "json".
    """
    if output == "json":
        doc = {"ok": False, "command": command, "error": exc.message, "data": exc.data}
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    else:
        sys.stderr.write(f"blast-jobs: {exc.message}\n")
    return exc.code
