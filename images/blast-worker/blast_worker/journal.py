"""The lease journal: the message a worker holds, kept in a small file on its cache volume.

A worker killed mid-job (``kill -9``, out of memory) cannot give its message back: the
message stays invisible until its visibility timeout runs out, although the container is
usually restarted within seconds. So the worker writes the message id and the current pop
receipt to ``<cache>/.leases/<host>.json`` when it takes a message and after each lease
extension, and removes the file when it is done with the message. At start it reads the
file left by its previous life and makes that message visible again at once (a
``visibility_timeout=0`` update with the recorded receipt).

Why this keeps the delivery contract (see :mod:`blast_worker.worker`):

* A pop receipt is valid only while nobody else has received the message since: if the
  timeout ran out and another worker took it, or it was deleted, the update fails and
  nothing happens. So the journal can only shorten an invisibility that the dead process
  could no longer use, never take a message from a live worker.
* Releasing makes it one more delivery, exactly as an expired timeout would: the job runs
  again, its results are overwritten with the same bytes and its row is marked succeeded
  once (etag-guarded).
* The journal is locked (``flock``) by the live process: a second worker that would use the
  same file (same host name on the same volume) runs without a journal instead, and the
  kernel drops the lock of a killed process, so its successor takes it over at once.

The file is replaced atomically (write, then rename). It is not fsynced: it must survive
the death of the process, not of the machine (a machine that dies takes the container's
volume or its message holder with it, and the timeout covers that case).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("blast_worker.journal")

JOURNAL_DIR = ".leases"


@dataclass(frozen=True)
class HeldMessage:
    """A message a worker holds, as recorded in its journal.

    Attributes:
        message_id: The queue message id.
        pop_receipt: The receipt of the latest receive or lease extension.
        job_id: The job id if the message had one (for the log).
        recorded_at: Epoch of the record.
    """

    message_id: str
    pop_receipt: str
    job_id: str | None = None
    recorded_at: float = 0.0


def journal_key(hostname: str | None = None) -> str:
    """The journal's file stem: the host name (a container's name or id, stable across its
    restarts), reduced to characters safe in a file name.

    Args:
        hostname: Defaults to this host's name.
    """
    name = hostname if hostname is not None else socket.gethostname()
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".") or "worker"


class LeaseJournal:
    """The journal file of one worker process, locked for as long as it lives.

    Use :meth:`open`; it returns None when the file is locked by another live process.

    Args:
        path: The journal file (``.json``); its lock is the sibling ``.lock`` file.
        lock_fd: The open, locked lock file.
    """

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, cache: Path, key: str | None = None) -> LeaseJournal | None:
        """Lock and return the journal ``<cache>/.leases/<key>.json``, or None when another
        live worker holds it (it then keeps its own; this one runs without).

        Args:
            cache: The worker's cache directory (a volume that outlives the process).
            key: File stem; default :func:`journal_key`.

        Raises:
            OSError: the directory cannot be created or the file opened.
        """
        folder = cache / JOURNAL_DIR
        folder.mkdir(parents=True, exist_ok=True)
        stem = key or journal_key()
        fd = os.open(folder / f"{stem}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            log.warning(
                "lease journal %s is in use by another live worker; running without one "
                "(give each worker its own host name or cache volume)",
                folder / f"{stem}.json",
            )
            return None
        return cls(folder / f"{stem}.json", fd)

    def held(self) -> HeldMessage | None:
        """The message recorded by this worker's previous life, or None (none, or a file
        that cannot be read as one, which is logged and ignored)."""
        try:
            raw = json.loads(self.path.read_text())
            return HeldMessage(
                message_id=str(raw["message_id"]),
                pop_receipt=str(raw["pop_receipt"]),
                job_id=None if raw.get("job_id") is None else str(raw["job_id"]),
                recorded_at=float(raw.get("recorded_at") or 0.0),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable lease journal %s: %s", self.path, exc)
            return None

    def record(self, message_id: str, pop_receipt: str, job_id: str | None) -> None:
        """Note that this worker holds ``message_id`` with ``pop_receipt`` (replaces any
        earlier record).

        Args:
            message_id: The message id.
            pop_receipt: Its current pop receipt.
            job_id: The job id, if known.
        """
        held = HeldMessage(message_id, pop_receipt, job_id, round(time.time(), 3))
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(asdict(held)))
            os.replace(tmp, self.path)
        except OSError as exc:
            # Without a record a restart waits out the visibility timeout: slower, not wrong.
            log.warning("could not write the lease journal %s: %s", self.path, exc)

    def clear(self) -> None:
        """Forget the held message (done with it: deleted, released or poisoned)."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            # A stale record is harmless: its receipt no longer matches anything.
            log.warning("could not clear the lease journal %s: %s", self.path, exc)

    def close(self) -> None:
        """Drop the lock (the process's death does the same)."""
        os.close(self._lock_fd)
