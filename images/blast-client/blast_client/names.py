"""Validation of names that end up in paths, blob names or storage resource names.

Everything a message names is checked here before it touches the filesystem or storage, so
path traversal (``..``, absolute paths, backslashes, control characters) cannot get through.
"""

from __future__ import annotations

import re

_PATTERNS: dict[str, re.Pattern[str]] = {
    # Azure: queues and containers are 3-63 lower-case letters, digits and single dashes.
    "queue": re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$"),
    "container": re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$"),
    # Azure: tables are 3-63 letters and digits, starting with a letter.
    "table": re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$"),
    "account": re.compile(r"^[a-z0-9]{3,24}$"),
}

# Job ids, run ids and database names: safe as blob prefixes, table keys and file names.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# A blob path segment: no leading dot, so neither "." nor ".." nor hidden files.
_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")


class InvalidName(ValueError):
    """A name is not acceptable; the message says which rule it breaks."""


def check_resource_name(value: str, kind: str, pattern: str | None = None) -> str:
    """Check a queue, table, container or account name against Azure's naming rules.

    Args:
        value: The name.
        kind: Human label used in the error ("queue", "container", ...).
        pattern: Which rule to apply; defaults to ``kind``.

    Returns:
        The name, unchanged.

    Raises:
        InvalidName: when the name breaks the rule.
    """
    rule = _PATTERNS[pattern or kind]
    if not rule.fullmatch(value):
        hint = {
            "queue": "3-63 lower-case letters, digits and single dashes",
            "container": "3-63 lower-case letters, digits and single dashes",
            "table": "3-63 letters and digits, starting with a letter",
            "account": "3-24 lower-case letters and digits",
        }[pattern or kind]
        raise InvalidName(f"{value!r} is not a valid {kind} name: use {hint}")
    return value


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidName(
            f"{what} {_short(value)} is not valid: use 1-64 letters, digits, '_' or '-'"
        )
    return value


def check_job_id(value: object) -> str:
    """Check a job id: 1-64 letters, digits, ``_`` or ``-``, starting with a letter or digit.

    Args:
        value: The candidate id (any JSON value).

    Returns:
        The id.

    Raises:
        InvalidName: when it is not such a string.
    """
    return _check_id(value, "job id")


def check_run_id(value: object) -> str:
    """Check a run id: the same rule as a job id.

    Args:
        value: The candidate id (any JSON value).

    Returns:
        The id.

    Raises:
        InvalidName: when it is not such a string.
    """
    return _check_id(value, "run id")


def check_db_name(value: object) -> str:
    """Check a database name: 1-64 letters, digits, ``_`` or ``-`` (no dots, no slashes).

    Args:
        value: The candidate name (any JSON value).

    Returns:
        The name.

    Raises:
        InvalidName: when it is not such a string.
    """
    return _check_id(value, "database name")


def check_blob_path(value: object, what: str = "blob name") -> str:
    """Check a relative blob path: ``/``-separated segments, none empty or starting with a dot.

    Args:
        value: The candidate path (any JSON value).
        what: Label used in the error.

    Returns:
        The path.

    Raises:
        InvalidName: on absolute paths, ``..``, backslashes, empty segments or odd characters.
    """
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise InvalidName(f"{what} {_short(value)} is not valid: give a relative blob path")
    segments = value.split("/")
    if any(not _SEGMENT.fullmatch(seg) for seg in segments):
        raise InvalidName(
            f"{what} {_short(value)} is not valid: use '/'-separated segments of letters, "
            "digits, '.', '_' or '-' that do not start with a dot"
        )
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
