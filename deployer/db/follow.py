"""Following a ``deployer db fetch`` group (pure): its log and its state, read for people.

The container runs ``blast-jobs db fetch NAME --output json`` with ``BLAST_PROGRESS=json``,
so its log holds JSON progress lines on stderr (``{"event": "db-fetch-progress", ...}``,
:class:`blast_client.cli.progress.JsonProgress`) and, at the end, the JSON envelope on
stdout (``{"command": "db fetch", "ok": ..., "data": ..., "error": ...}``, indented), with
the error's one line on stderr when it failed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from blast_client.cli.progress import FETCH_EVENT

from deployer.backends.base import ObservedGroup
from deployer.errors import DeployerError, InputError


@dataclass(frozen=True)
class LogProgress:
    """One progress line of the fetch.

    Args:
        done (int): Bytes of tarballs read.
        total (int): Bytes of tarballs to read.
        volumes_done (int): Volumes verified.
        volumes (int): Volumes to transfer.
        rate (float): Bytes per second so far.
        eta (float | None): Seconds left, or None before there is a rate.
    """

    done: int
    total: int
    volumes_done: int
    volumes: int
    rate: float
    eta: float | None


def last_progress(text: str) -> LogProgress | None:
    """The newest progress line in a log (tail), or None (pure).

    Args:
        text (str): The log; other lines and broken lines are skipped.
    """
    for line in reversed(text.splitlines()):
        if FETCH_EVENT not in line:
            continue
        try:
            doc = json.loads(line[line.find("{") :])
            if doc.get("event") != FETCH_EVENT:
                continue
            eta = doc.get("eta")
            return LogProgress(
                int(doc["done"]),
                int(doc["total"]),
                int(doc["volumes_done"]),
                int(doc["volumes"]),
                float(doc["rate"]),
                None if eta is None else float(eta),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return None


def envelope(text: str) -> dict[str, Any] | None:
    """The ``db fetch`` envelope at the end of a log, or None when there is none (pure).

    The envelope is printed as one indented JSON document; it starts on a line of its own
    with ``{``. Lines after it (a message on stderr) are ignored.

    Args:
        text (str): The log.
    """
    lines = text.splitlines()
    decoder = json.JSONDecoder()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].strip() != "{":
            continue
        try:
            doc, _ = decoder.raw_decode("\n".join(lines[i:]))
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("command") == "db fetch" and "ok" in doc:
            return doc
    return None


def last_words(text: str, limit: int = 300) -> str:
    """The last non-empty, non-JSON line of a log, for a failure without an envelope (pure).

    Args:
        text (str): The log.
        limit (int): Most characters kept.
    """
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line and not line.startswith(("{", "}", '"')):
            return line[:limit]
    return "no output"


def phase(group: ObservedGroup | None) -> str:
    """What the group is doing, in a few words (pure).

    Args:
        group (ObservedGroup | None): The group as last observed; None before it is seen.
    """
    if group is None:
        return "creating the group"
    if group.provisioning_state == "Failed":
        return "provisioning failed"
    container = group.containers[0] if group.containers else None
    if container is None or container.state in (None, "Waiting"):
        detail = container.detail if container is not None and container.detail else None
        return f"starting ({detail})" if detail else f"starting ({group.provisioning_state})"
    if container.state == "Running":
        return "fetching"
    return f"finished (exit code {container.exit_code})"


def exit_code(group: ObservedGroup) -> int | None:
    """The fetch container's exit code once it has terminated, else None (pure)."""
    container = group.containers[0] if group.containers else None
    if container is None or container.state != "Terminated":
        return None
    return container.exit_code


def failure(envelope: dict[str, Any] | None, log: str, code: int | None) -> DeployerError:
    """The error of a fetch that did not succeed, from its envelope or its log (pure)."""
    error = (envelope or {}).get("error") or {}
    message = str(error.get("message") or last_words(log))
    hint = error.get("hint")
    kind = InputError if (error.get("exit_code") or code) == 2 else DeployerError
    return kind(
        f"the fetch failed: {message}",
        hint=str(hint) if hint else None,
        code=str(error.get("code") or "FetchFailed"),
    )
