"""The errors of the client API: one line for people, a stable code for programs.

Every error carries ``code`` (a short machine-readable word), ``message`` (what went wrong,
in one line), ``hint`` (what to do, or None) and ``exit_code`` (what a CLI should exit with:
1 failure, 2 bad usage or input), which is exactly the CLI's JSON error envelope.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Process exit codes of every command line of the project (``blast-jobs``, ``deployer``)."""

    OK = 0
    #: A failure: storage or Azure unreachable or refusing, a job failed, a wait timed out.
    RUNTIME = 1
    #: Bad usage or bad input (a flag, a file, a name, a setting).
    INPUT = 2


class BlastClientError(Exception):
    """A user-facing failure of a client call.

    Args:
        message: What went wrong, one line.
        hint: What to do about it, or None.
        data: Optional payload (for example the job rows of a failed wait).
    """

    code = "error"
    exit_code: ExitCode = ExitCode.RUNTIME

    def __init__(self, message: str, hint: str | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.data = data

    def to_json(self) -> dict[str, Any]:
        """The error as the JSON envelope's ``error`` object."""
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "exit_code": int(self.exit_code),
        }


class InvalidRequest(BlastClientError):
    """The input cannot be used: a bad name, FASTA, option or file (exit code 2)."""

    code = "invalid_input"
    exit_code = ExitCode.INPUT


class JobNotFound(BlastClientError):
    """No job log row has this id."""

    code = "not_found"


class NoResult(BlastClientError):
    """The job has not succeeded, or did not produce the requested format."""

    code = "no_result"


class StorageError(BlastClientError):
    """Storage is unreachable or refused a request."""

    code = "storage"
