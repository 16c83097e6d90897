"""The one user-facing error type (its exit codes are :class:`blast_client.errors.ExitCode`,
shared with ``blast-jobs``).

The CLI prints a :class:`DeployerError` to stderr without a traceback and exits
with its ``exit_code``; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any

from blast_client.errors import ExitCode


class DeployerError(Exception):
    """A failure the user can act on.

    Args:
        message (str): What went wrong, in one sentence.
        hint (str | None): What to do next. Default: None.
        code (str | None): A machine-readable code, for Azure errors the ARM error
            code (e.g. ``QuotaExceeded``). Default: None.
        data (Any): What the command did before it failed (the envelope's ``data``), e.g.
            the images a build did make. Default: None.
    """

    exit_code: ExitCode = ExitCode.RUNTIME

    def __init__(
        self, message: str, *, hint: str | None = None, code: str | None = None, data: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code
        self.data = data

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
