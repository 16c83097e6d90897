"""The errors of the client API: one line for people, a stable code for programs.

Every error carries ``code`` (a short machine-readable word), ``message`` (what went wrong,
in one line), ``hint`` (what to do, or None) and ``exit_code`` (what a CLI should exit with:
1 failure, 2 bad usage or input), which is exactly the CLI's JSON error envelope.
"""

from __future__ import annotations

from dataclasses import dataclass
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


NOT_SIGNED_IN = "CredentialUnavailable"
"""``StorageFailure.code`` when no Entra ID credential could be found (nothing was sent)."""


@dataclass(frozen=True)
class StorageFailure:
    """What a storage SDK error said (``blast_client.storage.storage_failure`` reads it).

    Attributes:
        code: Storage's error code (``AuthorizationPermissionMismatch``...), or
            :data:`NOT_SIGNED_IN` when the credential found no sign-in.
        status: HTTP status, None when nothing was answered.
        service: ``blob``, ``queue`` or ``table``; None when unknown.
        account: The storage account; None when unknown.
        sas: The request was signed with a SAS.
        message: Storage's message, first line.
    """

    code: str | None
    status: int | None
    service: str | None
    account: str | None
    sas: bool
    message: str


class StorageError(BlastClientError):
    """Storage is unreachable or refused a request.

    Args:
        message: What went wrong, one line.
        hint: What to do about it, or None.
        failure: What the storage SDK reported (Azure's error code, the service and
            account), for callers that add their own advice; None when not from the SDK.
    """

    code = "storage"

    def __init__(
        self, message: str, hint: str | None = None, failure: StorageFailure | None = None
    ) -> None:
        super().__init__(message, hint)
        self.failure = failure
