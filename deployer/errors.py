"""The one user-facing error type, and its named exit codes.

The CLI prints a :class:`DeployerError` to stderr without a traceback and exits
with its ``exit_code``; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the ``deployer`` CLI."""

    OK = 0
    #: Azure or runtime failure (the message shows the ARM error code).
    RUNTIME = 1
    #: Bad usage or bad input (workload file, flags, sizing that cannot fit).
    INPUT = 2


class DeployerError(Exception):
    """A failure the user can act on.

    Args:
        message (str): What went wrong, in one sentence.
        hint (str | None): What to do next. Default: None.
        code (str | None): A machine-readable code, for Azure errors the ARM error
            code (e.g. ``QuotaExceeded``). Default: None.
    """

    exit_code: ExitCode = ExitCode.RUNTIME

    def __init__(self, message: str, *, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code

    def __str__(self) -> str:
        text = self.message
        if self.code and self.exit_code == ExitCode.RUNTIME and self.code not in text:
            text = f"{text} [{self.code}]"
        if self.hint:
            text = f"{text}\n  hint: {self.hint}"
        return text


class InputError(DeployerError):
    """Bad input: a workload file, a flag, or a setting; exit code 2."""

    exit_code = ExitCode.INPUT


class WorkloadFileError(InputError):
    """A workload file is invalid.

    Args:
        problems (list[str]): One ``file:line: field: message`` string per problem.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems), code="InvalidWorkloadFile")
        self.problems = problems


class MissingSettingError(InputError):
    """A required setting is not configured anywhere in the settings chain."""


class MissingAzureScopeError(MissingSettingError):
    """The subscription or the resource group is not configured.

    ``plan`` catches this one to compare nothing with Azure instead of failing.
    """


class SizingError(InputError):
    """The workload cannot be sized within the ACI limits."""


class AzureError(DeployerError):
    """Azure answered with an error, or could not be reached; exit code 1."""


class QuotaError(DeployerError):
    """The plan needs more cores than the regional quota leaves; exit code 1."""


class CredentialError(DeployerError):
    """No Azure credential could be found."""
