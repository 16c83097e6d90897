"""Database provisioning: verified, resumable, parallel ranged downloads into a shared cache.

Blob layout (written by ``blast-jobs db upload``): see :mod:`blast_client.databases`.

Cache layout (``BLAST_DB_CACHE``, a volume that several workers may share)::

    <cache>/<name>/<name>.n*       ready database (BLAST's -db is <cache>/<name>/<name>)
    <cache>/<name>/.ready.json     written last; its presence means "verified"
    <cache>/<name>.shard2of4/      one shard (:meth:`Provisioner.ensure_shard`): its volumes,
                                   the database's own files and <name>.shard2of4.nal
    <cache>/.staging/<name>/       downloads in progress: <file>.part + <file>.part.state
    <cache>/.locks/<name>.lock     flock held by the one worker that downloads

Each file is fetched in ranges by a thread pool and written in place with ``pwrite``. The
``.part.state`` file records finished ranges, so a download killed halfway resumes. A whole
file is checked against the manifest MD5 and the blob's Content-MD5 (every one that exists;
at least one must) and renamed into place. When all files are in, ``blastdbcmd -info`` must
accept the database, and then the staging directory is renamed to ``<cache>/<name>``.

Note: the lock is ``flock(2)``; it coordinates workers on one host sharing a local volume.
Filesystems that ignore flock (some network mounts) would allow duplicate, still-verified,
downloads, never a corrupt database.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient
from blast_client import shards
from blast_client.databases import MANIFEST, md5_file
from blast_client.messages import ShardRef
from blast_client.names import check_db_name

from blast_worker.jsonlog import kv

log = logging.getLogger("blast_worker.provision")

READY = ".ready.json"
DEFAULT_CHUNK = 8 * 1024 * 1024


class ProvisionError(Exception):
    """The database cannot be made ready; the message says why and what to do.

    Deterministic failures (missing database, MD5 mismatch, blastdbcmd refusal) raise this;
    storage outages raise the SDK's own exceptions so callers can retry them.
    """


@dataclass(frozen=True)
class RemoteFile:
    """One database file in Blob storage.

    Attributes:
        name: File name (no directory).
        blob: Full blob name.
        size: Bytes.
        etag: Blob ETag; ranges are fetched only while it is unchanged.
        md5: Expected MD5 digests (manifest and/or Content-MD5), at least one; the data
            must match all of them.
    """

    name: str
    blob: str
    size: int
    etag: str
    md5: tuple[bytes, ...]


def plan_chunks(size: int, chunk: int) -> list[tuple[int, int]]:
    """Byte ranges ``(offset, length)`` covering ``size`` bytes in ``chunk``-sized pieces.

    Args:
        size: File size.
        chunk: Range size (at least 1).
    """
    return [(off, min(chunk, size - off)) for off in range(0, size, chunk)]


class _PartState:
    """The record of finished ranges for one ``.part`` file: a JSON header line naming the
    blob version and chunk size, then one line per finished chunk index (append-only, so a
    crash loses at most the line being written)."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self.done: set[int] = set()
        self._lock = threading.Lock()
        if path.exists():
            lines = path.read_text().splitlines()
            try:
                same = bool(lines) and json.loads(lines[0]) == header
            except ValueError:
                same = False
            if same:
                self.done = {int(x) for x in lines[1:] if x.strip().isdigit()}
        if not path.exists() or not self.done:
            path.write_text(json.dumps(header) + "\n")
            self.done = set()

    def mark(self, index: int) -> None:
        with self._lock, self.path.open("a") as fh:
            fh.write(f"{index}\n")
            self.done.add(index)


class Provisioner:
    """Makes databases available in the local cache.

    Args:
        container: The database container.
        cache: Cache directory (``BLAST_DB_CACHE``).
        concurrency: Parallel range requests.
        chunk_size: Bytes per range request.
        blastdbcmd: The blastdbcmd executable.
        status: Called with "provisioning" while a download runs (for the health endpoint).
    """

    def __init__(
        self,
        container: ContainerClient,
        cache: Path,
        concurrency: int = 8,
        chunk_size: int = DEFAULT_CHUNK,
        blastdbcmd: str = "blastdbcmd",
        status: Callable[[str], None] | None = None,
    ) -> None:
        self.container = container
        self.cache = cache
        self.concurrency = concurrency
        self.chunk_size = chunk_size
        self.blastdbcmd = blastdbcmd
        self.status = status or (lambda _state: None)

    def db_path(self, name: str) -> Path:
        """The ``-db`` argument for a ready database.

        Args:
            name: Database name.
        """
        return self.cache / check_db_name(name) / name

    def is_ready(self, name: str) -> bool:
        """True when ``name`` is verified in the cache.

        Args:
            name: Database name.
        """
        return (self.cache / check_db_name(name) / READY).is_file()

    def cached(self) -> list[str]:
        """The databases and shards verified in the cache (their directories' names, e.g.
        ``nt.shard2of4``), sorted: what this worker's searches keep in memory."""
        return sorted(p.parent.name for p in self.cache.glob(f"*/{READY}"))

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        locks = self.cache / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with (locks / f"{name}.lock").open("a") as fh:
            start = time.monotonic()
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("another worker is downloading %s; waiting for it", name)
                fcntl.flock(fh, fcntl.LOCK_EX)
                log.info(
                    "lock on %s acquired",
                    name,
                    extra=kv(db=name, waited_s=round(time.monotonic() - start, 2)),
                )
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def ensure(self, name: str) -> tuple[Path, float]:
        """Make ``name`` ready locally, downloading it if needed (once per shared cache).

        Args:
            name: Database name.

        Returns:
            The ``-db`` path and the seconds spent downloading (0 if it was already there).

        Raises:
            ProvisionError: the database does not exist, fails its MD5 or blastdbcmd check.
            azure.core.exceptions.AzureError: on storage trouble (retry later).
        """
        check_db_name(name)
        if self.is_ready(name):
            return self.db_path(name), 0.0
        start = time.monotonic()
        with self._lock(name):
            if self.is_ready(name):  # another worker finished while we waited
                return self.db_path(name), 0.0
            self.status("provisioning")
            self._download(name)
        return self.db_path(name), time.monotonic() - start

    def ensure_shard(self, name: str, ref: ShardRef) -> tuple[Path, float]:
        """Make one shard of ``name`` ready locally: only its volumes and the database's own
        files are fetched and verified, and its alias file carries the whole database's
        statistics (:mod:`blast_client.shards`).

        Args:
            name: Database name.
            ref: The shard.

        Returns:
            The shard's ``-db`` path and the seconds spent downloading (0 if it was there).

        Raises:
            ProvisionError: as :meth:`ensure`, and when the database cannot be cut so.
            azure.core.exceptions.AzureError: on storage trouble (retry later).
        """
        # A database name has no dots, so a shard's directory never meets a database's.
        key = shards.shard_name(check_db_name(name), ref.index, ref.count)
        ready = self.cache / key / READY
        if ready.is_file():
            return self.cache / key / key, 0.0
        start = time.monotonic()
        with self._lock(key):
            if ready.is_file():
                return self.cache / key / key, 0.0
            self.status("provisioning")
            files = self.remote_files(name)
            shard, alias = self._shard_alias(name, ref, files)
            wanted = set(shards.shard_files(shard, [f.name for f in files]))
            self._install(key, [f for f in files if f.name in wanted], {alias[0]: alias[1]})
        return self.cache / key / key, time.monotonic() - start

    def _shard_alias(
        self, name: str, ref: ShardRef, files: list[RemoteFile]
    ) -> tuple[shards.Shard, tuple[str, str]]:
        """The shard and its alias file (name, text), from the database's alias file, its
        blobs' sizes and its manifest's totals."""
        by_name = {f.name: f for f in files}
        top = next((by_name[name + s] for s in shards.ALIAS_SUFFIXES if name + s in by_name), None)
        if top is None:
            raise ProvisionError(
                f"database {name} has one volume (no {name}.nal or {name}.pal), so it cannot "
                f"be cut into {ref.count} shards: rebuild it with makeblastdb -max_file_sz"
            )
        raw = self.container.download_blob(top.blob).readall()
        if any(hashlib.md5(raw, usedforsecurity=False).digest() != d for d in top.md5):
            raise ProvisionError(f"MD5 mismatch: {top.blob}; re-upload the database")
        alias = raw.decode("utf-8", "replace")
        try:
            manifest = json.loads(self.container.download_blob(f"{name}/{MANIFEST}").readall())
        except ResourceNotFoundError:
            manifest = {}
        nseq, letters = manifest.get("sequences"), manifest.get("residues")
        if not isinstance(nseq, int) or not isinstance(letters, int):
            raise ProvisionError(
                f"database {name}: its manifest has no sequences and residues, which a shard's "
                "statistics need; re-upload it with `blast-jobs db upload` (makeblastdb's "
                "metadata file)"
            )
        try:
            sizes = {f.name: f.size for f in files}
            volumes = shards.stored_volumes(name, alias, sizes)
            shard = shards.split(name, volumes, ref.count)[ref.index]
        except ValueError as exc:
            raise ProvisionError(str(exc)) from None
        title = manifest.get("title") or name
        suffix = top.name[len(name) :]
        text = shards.alias_file(shard, str(title), nseq, letters)
        return shard, (shard.name + suffix, text)

    def remote_files(self, name: str) -> list[RemoteFile]:
        """List the database's blobs with their expected MD5s.

        Args:
            name: Database name.

        Raises:
            ProvisionError: no such database, or a file without any MD5 to check.
        """
        prefix = f"{name}/"
        blobs = {
            b.name[len(prefix) :]: b
            for b in self.container.list_blobs(name_starts_with=prefix)
            if "/" not in b.name[len(prefix) :]
        }
        manifest: dict[str, Any] = {}
        if MANIFEST in blobs:
            raw = self.container.download_blob(prefix + MANIFEST).readall()
            try:
                manifest = json.loads(raw)["files"]
            except (ValueError, KeyError, TypeError):
                raise ProvisionError(
                    f"database {name}: {prefix}{MANIFEST} is not a valid manifest; "
                    "re-upload with `blast-jobs db upload`"
                ) from None
        files = [n for n in blobs if n != MANIFEST]
        if not files:
            raise ProvisionError(
                f"database {name!r} is not in container {self.container.container_name!r}: "
                f"upload it with `blast-jobs db upload {name} <makeblastdb files>`"
            )
        result: list[RemoteFile] = []
        for fname in sorted(files):
            props = blobs[fname]
            expected: list[bytes] = []
            entry = manifest.get(fname)
            if isinstance(entry, dict) and isinstance(entry.get("md5"), str):
                try:
                    expected.append(bytes.fromhex(entry["md5"]))
                except ValueError:
                    raise ProvisionError(
                        f"database {name}: manifest MD5 for {fname} is not hex"
                    ) from None
            content_md5 = props.content_settings.content_md5
            if content_md5:
                expected.append(bytes(content_md5))
            if not expected:
                raise ProvisionError(
                    f"database {name}: {fname} has neither a manifest entry nor a "
                    "Content-MD5, so it cannot be verified; upload with `blast-jobs db upload` "
                    "(writes a manifest) or `azcopy copy --put-md5`"
                )
            if manifest and fname not in manifest:
                raise ProvisionError(
                    f"database {name}: blob {fname} is not listed in the manifest; "
                    "re-upload the database with `blast-jobs db upload`"
                )
            result.append(
                RemoteFile(fname, prefix + fname, int(props.size), str(props.etag), tuple(expected))
            )
        missing = sorted(set(manifest) - set(files))
        if missing:
            raise ProvisionError(
                f"database {name}: manifest lists {missing} but those blobs are missing; "
                "re-upload the database"
            )
        return result

    def _download(self, name: str) -> None:
        self._install(name, self.remote_files(name))

    def _install(
        self, name: str, files: list[RemoteFile], written: dict[str, str] | None = None
    ) -> None:
        """Fetch ``files`` (and write ``written``: file name -> text) into ``<cache>/<name>``,
        check it with blastdbcmd, then mark it ready."""
        staging = self.cache / ".staging" / name
        staging.mkdir(parents=True, exist_ok=True)
        total = sum(f.size for f in files)
        log.info(
            "downloading database %s: %d files, %.1f MiB",
            name,
            len(files),
            total / 2**20,
            extra=kv(db=name, files=len(files), bytes=total),
        )
        start = time.monotonic()
        self.download_files(files, staging)
        for fname, text in (written or {}).items():
            (staging / fname).write_text(text)
        self._check(name, staging)
        (staging / READY).write_text(
            json.dumps(
                {
                    "name": name,
                    "files": {f.name: f.md5[0].hex() for f in files},
                    "verified_at": time.time(),
                }
            )
        )
        final = self.cache / name
        if final.exists():
            trash = self.cache / ".staging" / f".old-{name}-{os.getpid()}-{time.time_ns()}"
            os.rename(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.rename(staging, final)
        elapsed = time.monotonic() - start
        log.info(
            "database %s ready (%.1f MiB in %.1f s)",
            name,
            total / 2**20,
            elapsed,
            extra=kv(db=name, bytes=total, seconds=round(elapsed, 3)),
        )

    def download_files(self, files: list[RemoteFile], dest: Path) -> None:
        """Download and verify ``files`` into ``dest`` with parallel ranged requests,
        resuming any ``.part`` file left by an earlier attempt.

        Args:
            files: What to fetch.
            dest: Target directory; verified files appear there under their own names.

        Raises:
            ProvisionError: when a file fails its MD5 check (its partial data is discarded).
        """
        progress = _Progress(sum(f.size for f in files))
        jobs: list[tuple[RemoteFile, int, int, int, _PartState, int]] = []
        fds: dict[str, int] = {}
        hashers: dict[str, _StreamHash] = {}
        try:
            for rf in files:
                final = dest / rf.name
                if final.exists():
                    digest = md5_file(final)
                    if all(d == digest for d in rf.md5) and final.stat().st_size == rf.size:
                        progress.add(rf.size)
                        continue
                    final.unlink()
                part = dest / (rf.name + ".part")
                state = _PartState(
                    dest / (rf.name + ".part.state"),
                    {"etag": rf.etag, "size": rf.size, "chunk": self.chunk_size},
                )
                fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o644)
                fds[rf.name] = fd
                os.ftruncate(fd, rf.size)
                chunks = plan_chunks(rf.size, self.chunk_size)
                hashers[rf.name] = _StreamHash(fd, chunks, set(state.done))
                for index, (off, length) in enumerate(chunks):
                    if index in state.done:
                        progress.add(length)
                    else:
                        jobs.append((rf, index, off, length, state, fd))
            resumed = progress.done
            if resumed:
                log.info(
                    "resuming download: %.1f MiB already present",
                    resumed / 2**20,
                    extra=kv(resumed_bytes=resumed),
                )

            def fetch(job: tuple[RemoteFile, int, int, int, _PartState, int]) -> None:
                rf, index, off, length, state, fd = job
                data = (
                    self.container.get_blob_client(rf.blob)
                    .download_blob(
                        offset=off,
                        length=length,
                        max_concurrency=1,
                        etag=rf.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
                    .readall()
                )
                if len(data) != length:
                    raise ProvisionError(f"{rf.blob}: short read at {off}")
                os.pwrite(fd, data, off)
                state.mark(index)
                hashers[rf.name].add(index, data)
                progress.add(length)

            pool = ThreadPoolExecutor(max_workers=self.concurrency)
            try:
                # copy_context: progress lines from these threads keep the job id
                futures = [pool.submit(contextvars.copy_context().run, fetch, job) for job in jobs]
                for future in as_completed(futures):
                    future.result()
            finally:
                # On the first failure, drop the ranges not started yet.
                pool.shutdown(wait=True, cancel_futures=True)
            digests = {name: h.finish() for name, h in hashers.items()}
        finally:
            for fd in fds.values():
                os.close(fd)
        bad: list[str] = []
        for rf in files:
            if rf.name not in fds:
                continue
            part = dest / (rf.name + ".part")
            got = digests[rf.name]
            wrong = [d for d in rf.md5 if d != got]
            if wrong:
                # Discard only the bad file: the others are verified and can be reused.
                part.unlink(missing_ok=True)
                bad.append(f"{rf.blob} (expected {wrong[0].hex()}, got {got.hex()})")
            else:
                os.rename(part, dest / rf.name)
            (dest / (rf.name + ".part.state")).unlink(missing_ok=True)
        if bad:
            raise ProvisionError(
                f"MD5 mismatch: {'; '.join(bad)}; the blob is corrupt or was replaced without "
                "its manifest: re-upload the database with `blast-jobs db upload`"
            )

    def _check(self, name: str, staging: Path) -> None:
        try:
            proc = subprocess.run(
                [self.blastdbcmd, "-db", str(staging / name), "-info"],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        except FileNotFoundError:
            raise ProvisionError(
                f"{self.blastdbcmd} not found: install ncbi-blast+ in the worker image"
            ) from None
        if proc.returncode != 0:
            raise ProvisionError(
                f"database {name} failed `blastdbcmd -info`: {proc.stderr.strip()[-500:]}"
            )
        summary = " ".join(proc.stdout.split()[:40])
        log.info("blastdbcmd -info %s: %s", name, summary, extra=kv(db=name))


class _StreamHash:
    """MD5 of a file assembled from ranges that finish out of order, computed while they
    arrive (so verification needs no second pass over the file).

    Ranges are hashed in file order: a finished range waits in memory until all ranges before
    it are hashed (with a bounded pool that is at most about ``concurrency`` ranges). Ranges
    present from an earlier, interrupted attempt are read back from the file.

    Args:
        fd: The ``.part`` file, open for reading.
        chunks: Its ranges, in order.
        present: Indexes of ranges already on disk.
    """

    def __init__(self, fd: int, chunks: list[tuple[int, int]], present: set[int]) -> None:
        self.fd = fd
        self.chunks = chunks
        self.present = present
        self.pending: dict[int, bytes] = {}
        self.next = 0
        self.digest = hashlib.md5(usedforsecurity=False)
        self._lock = threading.Lock()

    def add(self, index: int, data: bytes) -> None:
        """Take a finished range.

        Args:
            index: Its position in ``chunks``.
            data: Its bytes.
        """
        with self._lock:
            self.pending[index] = data
            self._advance()

    def _advance(self) -> None:
        while self.next < len(self.chunks):
            if self.next in self.pending:
                data = self.pending.pop(self.next)
            elif self.next in self.present:
                off, length = self.chunks[self.next]
                data = os.pread(self.fd, length, off)
            else:
                return
            self.digest.update(data)
            self.next += 1

    def finish(self) -> bytes:
        """The digest of the whole file (every range must have arrived)."""
        with self._lock:
            self._advance()
            if self.next != len(self.chunks):
                raise RuntimeError("not every range of the file was downloaded")
            return self.digest.digest()


class _Progress:
    """Logs download progress at most every 2 seconds and at each 25%."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._last_log = self._start
        self._last_quarter = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            quarter = 4 * self.done // max(self.total, 1)
            if now - self._last_log >= 2.0 or quarter > self._last_quarter:
                self._last_log = now
                self._last_quarter = quarter
                rate = self.done / max(now - self._start, 1e-6)
                log.info(
                    "download %.0f%% (%.1f of %.1f MiB, %.1f MiB/s)",
                    100 * self.done / max(self.total, 1),
                    self.done / 2**20,
                    self.total / 2**20,
                    rate / 2**20,
                    extra=kv(done_bytes=self.done, total_bytes=self.total),
                )


def decode_md5(value: str) -> bytes:
    """Parse an MD5 given as hex or base64 (Azure shows Content-MD5 as base64).

    Args:
        value: The text.

    Raises:
        ValueError: if it is neither a 16-byte hex nor base64 digest.
    """
    with contextlib.suppress(ValueError):
        raw = bytes.fromhex(value)
        if len(raw) == 16:
            return raw
    with contextlib.suppress(binascii.Error):
        raw = base64.b64decode(value, validate=True)
        if len(raw) == 16:
            return raw
    raise ValueError(f"{value!r} is not an MD5 digest")
