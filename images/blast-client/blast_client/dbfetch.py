"""``blast-jobs db fetch``: an NCBI database streamed from HTTP into Blob storage, verified.

Each volume (``<db>.NN.tar.gz``) flows through gunzip and tar straight into Blob storage:
nothing lands on local disk, and volumes transfer in parallel (each volume itself as
parallel range requests, consumed in order). The files are written where the workers
provision from (:mod:`blast_client.databases`): ``<name>/<file>`` plus ``<name>/manifest.json``.

Nothing is visible until everything is verified. Each file's bytes are *staged* as blocks of
its final blob (``Put Block``): staged blocks are invisible until a block list is committed.
A volume counts as verified when its tarball's MD5 matches the source's ``.md5``. Only when
every volume has passed does the fetch commit the block lists (with each file's Content-MD5),
remove files of an older version, and write the manifest last, so a failed fetch publishes
nothing.

Resume: block ids are derived from the tarball's MD5 and the block's index, and a journal
blob, ``<name>/.fetch/journal.json`` (a nested name, which neither the workers nor ``db
list`` read), records each verified volume's files. A later run keeps the verified volumes
whose staged blocks are still there (Azure keeps uncommitted blocks for a week) and restarts
the others from their first byte.

Planning is pure (:func:`plan_fetch`, :func:`select_files`, :func:`fetched_manifest`, ...);
:class:`DatabaseFetch` does the I/O, through :class:`~blast_client.ncbi.HttpSource` and a
``ContainerClient`` (key or managed identity alike).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import tarfile
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, ContainerClient, ContentSettings

from blast_client.databases import MANIFEST, parse_metadata
from blast_client.errors import BlastClientError, InvalidRequest, StorageError
from blast_client.names import InvalidName, check_blob_path, check_db_name
from blast_client.ncbi import (
    HttpSource,
    RemoteFile,
    SourceDatabase,
    SourceDirectory,
    SourceError,
    TransientError,
    molecule_of,
)
from blast_client.storage import storage_errors

JOURNAL = ".fetch/journal.json"
"""The journal's name under the database's prefix."""
MIB = 2**20


class FetchError(BlastClientError):
    """The fetch failed (MD5 mismatch, a broken tarball, an interrupted transfer); nothing
    was published and verified volumes are kept for the next run."""

    code = "fetch_failed"


@dataclass(frozen=True)
class FetchSettings:
    """How hard the fetch pushes.

    Attributes:
        connections: HTTP requests in flight in all.
        parallel_volumes: Volumes transferred at the same time (each gets an equal share of
            the connections; a single volume gets them all, as parallel ranges).
        segment: Bytes per range request.
        block: Bytes per staged block (Azure allows 50,000 per blob: 4 MiB blocks reach
            195 GiB, far above any NCBI volume file).
        uploads_per_volume: Blocks of one volume being staged while it reads on.
        volume_attempts: Whole-volume attempts (an MD5 mismatch, or a dropped connection to a
            server without range requests, restarts the volume).
    """

    connections: int = 8
    parallel_volumes: int = 8
    segment: int = 8 * MIB
    block: int = 4 * MIB
    uploads_per_volume: int = 2
    volume_attempts: int = 2


# -- pure planning ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StagedFile:
    """One file of a volume, staged as blocks of its blob.

    Attributes:
        size: Bytes.
        md5: Hex MD5 of its content.
        blocks: Number of staged blocks.
    """

    size: int
    md5: str
    blocks: int


@dataclass(frozen=True)
class VolumeRecord:
    """A verified volume.

    Attributes:
        name: Tarball name.
        md5: The tarball's (verified) hex MD5.
        size: The tarball's bytes.
        files: Its files by name.
    """

    name: str
    md5: str
    size: int
    files: dict[str, StagedFile]

    def to_json(self) -> dict[str, Any]:
        """The record as the journal stores it."""
        return {
            "md5": self.md5,
            "size": self.size,
            "files": {
                n: {"size": f.size, "md5": f.md5, "blocks": f.blocks}
                for n, f in sorted(self.files.items())
            },
        }


def block_id(tar_md5: str, index: int) -> str:
    """The id of block ``index`` of a file from the tarball with MD5 ``tar_md5`` (pure).

    Ids depend only on the tarball and position, so a restarted volume re-stages the same
    ids, and volumes that carry the same file name never collide. Every id has one length,
    as Azure requires within a blob.

    Args:
        tar_md5: Hex MD5 of the tarball.
        index: Block index within the file.
    """
    return base64.b64encode(f"{tar_md5[:24]}{index:08d}".encode()).decode()


def block_ids(tar_md5: str, count: int) -> list[str]:
    """Ids of a file's ``count`` blocks (pure).

    Args:
        tar_md5: Hex MD5 of the tarball.
        count: Number of blocks.
    """
    return [block_id(tar_md5, i) for i in range(count)]


def parse_journal(doc: Any) -> dict[str, VolumeRecord]:
    """Verified volumes from a journal document; anything unreadable counts as none (pure).

    Args:
        doc: The parsed journal.
    """
    out: dict[str, VolumeRecord] = {}
    volumes = doc.get("volumes") if isinstance(doc, dict) else None
    if not isinstance(volumes, dict):
        return out
    for name, entry in volumes.items():
        try:
            files = {
                fname: StagedFile(int(f["size"]), str(f["md5"]), int(f["blocks"]))
                for fname, f in entry["files"].items()
            }
            out[name] = VolumeRecord(name, str(entry["md5"]), int(entry["size"]), files)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return out


def journal_doc(source: str, volumes: Mapping[str, VolumeRecord]) -> dict[str, Any]:
    """The journal document (pure).

    Args:
        source: Where the volumes came from (for people reading it).
        volumes: Verified volumes.
    """
    return {
        "version": 1,
        "source": source,
        "volumes": {n: v.to_json() for n, v in sorted(volumes.items())},
    }


@dataclass(frozen=True)
class FetchPlan:
    """What a fetch will do.

    Attributes:
        current: True when storage already holds exactly these tarballs' content.
        transfer: Volumes to transfer, in volume order.
        kept: Volumes verified by an earlier run, kept.
    """

    current: bool
    transfer: tuple[str, ...]
    kept: tuple[str, ...]


def plan_fetch(
    db: str,
    tarballs: Mapping[str, str],
    existing: Mapping[str, Any] | None,
    journal: Mapping[str, VolumeRecord],
    as_name: str,
) -> FetchPlan:
    """Decide what to transfer (pure).

    Args:
        db: The source's database name.
        tarballs: The source's tarballs (volume order) and their published MD5s.
        existing: The manifest of the database already in storage under ``as_name``.
        journal: Volumes a previous run verified.
        as_name: The name in storage.

    Raises:
        InvalidRequest: when ``as_name`` holds a database that was uploaded, not fetched
            (a fetch never replaces it).
    """
    if existing is not None:
        source = existing.get("source")
        if not isinstance(source, dict):
            raise InvalidRequest(
                f"database {as_name} exists and was uploaded, not fetched; "
                "a fetch does not replace it",
                hint=f"fetch under another name: blast-jobs db fetch {db} --as NAME",
            )
        if source.get("db") == db and source.get("tarballs") == dict(tarballs):
            return FetchPlan(True, (), ())
    kept = tuple(v for v in tarballs if v in journal and journal[v].md5 == tarballs[v])
    transfer = tuple(v for v in tarballs if v not in kept)
    return FetchPlan(False, transfer, kept)


def select_files(
    volumes: Sequence[VolumeRecord],
) -> dict[str, tuple[VolumeRecord, StagedFile]]:
    """The file set of the database: each name from the first volume that carries it (pure).

    NCBI's tarballs may repeat database-wide files (taxonomy, alias, index files) in every
    volume; repeats must be identical.

    Args:
        volumes: Verified volumes in volume order.

    Raises:
        FetchError: when two volumes carry different content under one name.
    """
    chosen: dict[str, tuple[VolumeRecord, StagedFile]] = {}
    for volume in volumes:
        for name, staged in sorted(volume.files.items()):
            if name not in chosen:
                chosen[name] = (volume, staged)
            elif chosen[name][1].md5 != staged.md5:
                raise FetchError(
                    f"the source is inconsistent: {chosen[name][0].name} and {volume.name} "
                    f"both hold {name}, with different content",
                    hint="report it to the mirror's maintainers, or try another --source",
                )
    return chosen


def alias_file(as_name: str, db: str, molecule: str | None, title: str | None) -> tuple[str, bytes]:
    """The BLAST alias file that lets ``-db <name>`` open a database stored under another
    name (``--as``) without touching NCBI's files (pure).

    The v5 index files name their volumes, so the files keep their names and the alias, in
    the same directory, points at them.

    Args:
        as_name: The name in storage (and the alias's base name).
        db: NCBI's name, which the files carry.
        molecule: ``nucleotide`` or ``protein``.
        title: The database's title.
    """
    suffix = ".pal" if molecule == "protein" else ".nal"
    text = f"#\n# Alias file written by blast-jobs db fetch\n#\nTITLE {title or db}\nDBLIST {db}\n"
    return f"{as_name}{suffix}", text.encode()


def fetched_manifest(
    as_name: str,
    db: SourceDatabase,
    tarballs: Mapping[str, str],
    files: Mapping[str, tuple[int, str]],
    fetched_at: str,
) -> dict[str, Any]:
    """The database manifest of a fetched database (pure).

    The workers read ``files`` (size and hex MD5 of each blob) exactly as for ``db upload``;
    the rest says what the database is and where it came from. NCBI's metadata is kept
    whole under ``source.metadata`` (its ``files`` are tarball URLs of the source).

    Args:
        as_name: The name in storage.
        db: The source's database.
        tarballs: Tarball name -> verified MD5 (how a later fetch tells it is current).
        files: File name -> (size, hex MD5).
        fetched_at: ISO 8601 time of the fetch.
    """
    info = parse_metadata(json.dumps(db.metadata), "")
    manifest: dict[str, Any] = {
        "version": 1,
        "name": as_name,
        "files": {n: {"size": s, "md5": m} for n, (s, m) in sorted(files.items())},
        **info,
        "source": {
            "kind": "ncbi",
            "db": db.name,
            "url": db.base,
            "snapshot": db.snapshot,
            "tarballs": dict(tarballs),
            "fetched_at": fetched_at,
            "metadata": db.metadata,
        },
    }
    if manifest.get("molecule") is None:
        manifest["molecule"] = molecule_of(db.metadata)
    return manifest


def segments(size: int, segment: int) -> list[tuple[int, int]]:
    """Ranges ``(offset, length)`` covering ``size`` bytes (pure).

    Args:
        size: File size.
        segment: Range size.
    """
    return [(off, min(segment, size - off)) for off in range(0, size, segment)]


def member_name(member: tarfile.TarInfo, volume: str) -> str | None:
    """The file name of a tarball entry, None for a directory entry to skip (pure).

    NCBI's tarballs are flat: a regular file per database file. Anything else (links,
    devices, paths) is refused rather than followed.

    Args:
        member: The tar entry.
        volume: Tarball name, for the error.

    Raises:
        FetchError: for an entry that is not a plain file with a safe name.
    """
    name = member.name[2:] if member.name.startswith("./") else member.name
    if member.isdir() and name.strip("/") in ("", "."):
        return None
    if not member.isfile():
        raise FetchError(f"{volume} holds {member.name!r}, which is not a plain file")
    try:
        check_blob_path(name, "file name")
    except InvalidName:
        raise FetchError(f"{volume} holds an entry with an unsafe name {member.name!r}") from None
    if "/" in name:
        raise FetchError(f"{volume} holds {member.name!r} in a directory; NCBI's are flat")
    return name


@dataclass(frozen=True)
class FetchProgress:
    """Progress of a transfer, for a bar or a log line.

    Attributes:
        total: Bytes of the tarballs being transferred.
        done: Bytes read so far (a restarted volume counts again from zero).
        volumes_total: Volumes being transferred.
        volumes_done: Volumes verified so far.
        elapsed: Seconds since the transfer began.
    """

    total: int
    done: int
    volumes_total: int
    volumes_done: int
    elapsed: float

    @property
    def rate(self) -> float:
        """Bytes per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far, or None before there is a rate."""
        if self.rate <= 0:
            return None
        return max(self.total - self.done, 0) / self.rate


@dataclass(frozen=True)
class FetchResult:
    """What a fetch did.

    Attributes:
        db: The name in storage.
        source_db: NCBI's name.
        source: URL of the directory the volumes came from.
        snapshot: Snapshot name, or None.
        status: ``fetched`` or ``current`` (nothing to do).
        volumes: Volumes of the database.
        transferred: Volumes transferred by this run.
        kept: Volumes kept from an earlier, interrupted run.
        bytes: Tarball bytes transferred by this run.
        files: Files of the database.
        seconds: Wall time.
        container: The database container.
        manifest: The manifest blob.
        info: Title, molecule, sequences, residues, bytes_to_cache, last_updated.
    """

    db: str
    source_db: str
    source: str
    snapshot: str | None
    status: str
    volumes: int
    transferred: int
    kept: int
    bytes: int
    files: int
    seconds: float
    container: str
    manifest: str
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The result as plain JSON."""
        return {
            "db": self.db,
            "source_db": self.source_db,
            "source": self.source,
            "snapshot": self.snapshot,
            "status": self.status,
            "volumes": self.volumes,
            "transferred_volumes": self.transferred,
            "kept_volumes": self.kept,
            "bytes": self.bytes,
            "files": self.files,
            "seconds": round(self.seconds, 3),
            "container": self.container,
            "manifest": self.manifest,
            **self.info,
        }


# -- the transfer (I/O) ----------------------------------------------------------------------


class _Counter:
    """Thread-safe progress with a throttled callback."""

    def __init__(
        self, total: int, volumes: int, report: Callable[[FetchProgress], None] | None
    ) -> None:
        self.total = total
        self.volumes_total = volumes
        self.done = 0
        self.volumes_done = 0
        self.report = report
        self.start = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()

    def add(self, n: int = 0, volume: bool = False, force: bool = False) -> None:
        with self._lock:
            self.done += n
            self.volumes_done += int(volume)
            now = time.monotonic()
            if self.report is None or not (force or volume or now - self._last >= 0.2):
                return
            self._last = now
            snapshot = FetchProgress(
                self.total, self.done, self.volumes_total, self.volumes_done, now - self.start
            )
        self.report(snapshot)


class _Segment:
    """One range in flight: chunks wait here, in order, until the reader takes them."""

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.finished = False
        self.error: BaseException | None = None
        self.cond = threading.Condition()

    def put(self, chunk: bytes) -> None:
        with self.cond:
            self.chunks.append(chunk)
            self.cond.notify()

    def finish(self, error: BaseException | None = None) -> None:
        with self.cond:
            self.finished = True
            self.error = error
            self.cond.notify()

    def take(self) -> bytes | None:
        """The next chunk; None once the range is complete."""
        with self.cond:
            while not self.chunks and not self.finished:
                self.cond.wait()
            if self.chunks:
                return self.chunks.popleft()
            if self.error is not None:
                raise self.error
            return None


class _RangedReader(io.RawIOBase):
    """A file read as parallel range requests, delivered in order as the bytes arrive.

    Keeps up to ``window`` ranges in flight on the shared download pool. The first range's
    bytes flow on while they arrive, so unpacking overlaps downloading even for a volume of
    one range; a dropped range resumes where it stopped (:meth:`HttpSource.read_range`).
    """

    def __init__(
        self,
        http: HttpSource,
        url: str,
        size: int,
        settings: FetchSettings,
        window: int,
        pool: ThreadPoolExecutor,
        on_bytes: Callable[[bytes], None],
        on_progress: Callable[[int], None],
    ) -> None:
        super().__init__()
        self.http = http
        self.url = url
        self.ranges = deque(segments(size, settings.segment))
        self.window = window
        self.pool = pool
        self.on_bytes = on_bytes
        self.on_progress = on_progress
        self.pending: deque[tuple[_Segment, Future[None]]] = deque()
        self.buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def _download(self, segment: _Segment, offset: int, length: int) -> None:
        def sink(chunk: bytes) -> None:
            if self.closed:  # the volume failed or finished: stop downloading for it
                raise SourceError("cancelled")
            self.on_progress(len(chunk))
            segment.put(chunk)

        try:
            self.http.read_range(self.url, offset, length, sink)
        except BaseException as exc:
            segment.finish(exc)
            raise
        segment.finish()

    def _fill(self) -> None:
        while self.ranges and len(self.pending) < self.window:
            offset, length = self.ranges.popleft()
            segment = _Segment()
            future = self.pool.submit(self._download, segment, offset, length)
            self.pending.append((segment, future))

    def readinto(self, buffer: Any) -> int:
        while not self.buffer:
            self._fill()
            if not self.pending:
                return 0
            chunk = self.pending[0][0].take()
            if chunk is None:
                self.pending.popleft()
                continue
            self.on_bytes(chunk)
            self.buffer = memoryview(chunk)
        n = min(len(buffer), len(self.buffer))
        buffer[:n] = self.buffer[:n]
        self.buffer = self.buffer[n:]
        return n

    def close(self) -> None:
        for _segment, future in self.pending:
            future.cancel()
        self.pending.clear()
        super().close()


class _StreamReader(io.RawIOBase):
    """A file read as one streamed GET (servers without range requests)."""

    def __init__(
        self,
        body: Any,
        stop: threading.Event,
        on_bytes: Callable[[bytes], None],
        on_progress: Callable[[int], None],
    ) -> None:
        super().__init__()
        self.body = body
        self.stop = stop
        self.on_bytes = on_bytes
        self.on_progress = on_progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.stop.is_set():
            raise SourceError("interrupted")
        data = self.body.read(len(buffer))
        self.on_bytes(data)
        self.on_progress(len(data))
        buffer[: len(data)] = data
        return len(data)


class _Mismatch(Exception):
    def __init__(self, volume: str, expected: str, got: str) -> None:
        super().__init__(f"{volume}: expected MD5 {expected}, got {got}")
        self.volume, self.expected, self.got = volume, expected, got


class DatabaseFetch:
    """One fetch of one database into the database container.

    Args:
        container: The database container (``BLAST_DB_CONTAINER``).
        source: The source directory.
        settings: Parallelism and sizes.
        on_progress: Called with :class:`FetchProgress` during the transfer.
        clock: Wall clock for ``fetched_at`` (tests).
    """

    def __init__(
        self,
        container: ContainerClient,
        source: SourceDirectory,
        settings: FetchSettings | None = None,
        on_progress: Callable[[FetchProgress], None] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.container = container
        self.source = source
        self.http = source.http
        self.settings = settings or FetchSettings()
        self.on_progress = on_progress
        self.clock = clock

    # -- reading storage --

    def _read_json(self, blob: str) -> Any:
        try:
            raw = self.container.download_blob(blob).readall()
        except ResourceNotFoundError:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def _blocks_present(self, blob: str, ids: list[str]) -> bool:
        """True when ``blob`` has these blocks staged, or committed as exactly this list
        (a publish that was interrupted after committing it)."""
        if not ids:
            return True
        try:
            committed, uncommitted = self.container.get_blob_client(blob).get_block_list("all")
        except ResourceNotFoundError:
            return False
        if [b.id for b in committed] == ids:
            return True
        return set(ids) <= {b.id for b in uncommitted}

    # -- the run --

    def run(self, name: str, date: str | None = None, as_name: str | None = None) -> FetchResult:
        """Fetch ``name`` (as ``as_name``), or say it is current.

        Args:
            name: NCBI's database name.
            date: ``YYYY-MM-DD`` for a dated snapshot, None for the newest.
            as_name: The name in storage; defaults to ``name``.

        Raises:
            InvalidRequest: a bad name, or ``as_name`` holds an uploaded database.
            UnknownDatabase: the source has no such database.
            SourceError: the source is unreachable or unreadable.
            FetchError: a volume failed (nothing published; verified volumes kept).
            StorageError: storage failed.
        """
        started = time.monotonic()
        target = as_name or name
        for value, what in ((name, "NAME"), (target, "--as")):
            try:
                check_db_name(value)
            except InvalidName as exc:
                raise InvalidRequest(f"{what}: {exc}") from None
        db = self.source.database(name, date)
        with ThreadPoolExecutor(self.settings.connections, "fetch-http") as pool:
            md5s = pool.map(lambda v: self.source.md5(db, v), db.volumes)
            tarballs = dict(zip(db.volumes, md5s, strict=True))
            with storage_errors():
                if not self.container.exists():
                    raise StorageError(
                        f"container {self.container.container_name} does not exist",
                        hint="run `blast-jobs init` first",
                    )
                existing = self._read_json(f"{target}/{MANIFEST}")
                journal = parse_journal(self._read_json(f"{target}/{JOURNAL}"))
            plan = plan_fetch(name, tarballs, existing, journal, target)
            if plan.current and existing is not None:
                return self._result(db, target, "current", existing, (), 0, started)
            with storage_errors():
                transfer = self._recheck(plan, journal, tarballs, target)
            kept = {v: journal[v] for v in db.volumes if v not in transfer}
            sizes = pool.map(lambda v: self.http.head(db.url(v)), transfer)
            heads = dict(zip(transfer, sizes, strict=True))
            counter = _Counter(
                sum(h.size or 0 for h in heads.values()), len(transfer), self.on_progress
            )
            counter.add(force=True)
            verified = self._transfer(db, target, tarballs, transfer, heads, kept, counter, pool)
        with storage_errors():
            manifest = self._publish(db, target, tarballs, verified)
        return self._result(db, target, "fetched", manifest, transfer, counter.done, started)

    def _result(
        self,
        db: SourceDatabase,
        target: str,
        status: str,
        manifest: Mapping[str, Any],
        transferred: Sequence[str],
        nbytes: int,
        started: float,
    ) -> FetchResult:
        files = manifest.get("files")
        return FetchResult(
            db=target,
            source_db=db.name,
            source=db.base,
            snapshot=db.snapshot,
            status=status,
            volumes=len(db.volumes),
            transferred=len(transferred),
            kept=len(db.volumes) - len(transferred) if status == "fetched" else 0,
            bytes=nbytes,
            files=len(files) if isinstance(files, dict) else 0,
            seconds=time.monotonic() - started,
            container=self.container.container_name,
            manifest=f"{target}/{MANIFEST}",
            info={k: manifest.get(k) for k in INFO_KEYS},
        )

    def _recheck(
        self,
        plan: FetchPlan,
        journal: Mapping[str, VolumeRecord],
        tarballs: Mapping[str, str],
        target: str,
    ) -> tuple[str, ...]:
        """Volumes to transfer: the plan's, plus kept ones whose staged blocks are gone."""
        gone: set[str] = set()
        if plan.kept:
            chosen = select_files([journal[v] for v in plan.kept])
            for fname, (volume, staged) in chosen.items():
                if not self._blocks_present(
                    f"{target}/{fname}", block_ids(volume.md5, staged.blocks)
                ):
                    gone.add(volume.name)
        return tuple(v for v in tarballs if v in plan.transfer or v in gone)

    def _transfer(
        self,
        db: SourceDatabase,
        target: str,
        tarballs: Mapping[str, str],
        transfer: Sequence[str],
        heads: Mapping[str, RemoteFile],
        kept: Mapping[str, VolumeRecord],
        counter: _Counter,
        pool: ThreadPoolExecutor,
    ) -> dict[str, VolumeRecord]:
        verified = dict(kept)
        if not transfer:
            return verified
        parallel = max(1, min(self.settings.parallel_volumes, len(transfer)))
        window = max(1, self.settings.connections // parallel)
        failures: list[BlastClientError] = []
        uploads = ThreadPoolExecutor(parallel * self.settings.uploads_per_volume, "fetch-put")
        volumes = ThreadPoolExecutor(parallel, "fetch-volume")
        try:
            futures = {
                volumes.submit(
                    self._volume,
                    db,
                    target,
                    v,
                    tarballs[v],
                    heads[v],
                    window,
                    pool,
                    uploads,
                    counter,
                ): v
                for v in transfer
            }
            for future in as_completed(futures):
                try:
                    record = future.result()
                except BlastClientError as exc:
                    failures.append(exc)
                    continue
                except AzureError:
                    with storage_errors():
                        raise
                verified[record.name] = record
                counter.add(volume=True)
                with storage_errors():
                    self.container.upload_blob(
                        f"{target}/{JOURNAL}",
                        json.dumps(journal_doc(db.base, verified), indent=1),
                        overwrite=True,
                    )
        except BaseException:
            self.http.stop.set()  # Ctrl-C or a storage failure: every request gives up
            raise
        finally:
            volumes.shutdown(wait=True, cancel_futures=True)
            uploads.shutdown(wait=True, cancel_futures=True)
        if failures:
            first = failures[0]
            done = sum(1 for v in db.volumes if v in verified)
            raise type(first)(
                first.message
                + ("" if len(failures) == 1 else f" (and {len(failures) - 1} more volumes failed)"),
                hint=f"nothing was published; {done} of {len(db.volumes)} volumes are verified "
                "and kept: run the same command again to resume",
            )
        return verified

    def _volume(
        self,
        db: SourceDatabase,
        target: str,
        volume: str,
        expected: str,
        head: RemoteFile,
        window: int,
        pool: ThreadPoolExecutor,
        uploads: ThreadPoolExecutor,
        counter: _Counter,
    ) -> VolumeRecord:
        last: Exception | None = None
        for _attempt in range(self.settings.volume_attempts):
            counted = 0

            def count(n: int) -> None:
                nonlocal counted
                counted += n
                counter.add(n)

            try:
                return self._volume_once(
                    db, target, volume, expected, head, window, pool, uploads, count
                )
            except (_Mismatch, TransientError) as exc:
                last = exc
                counter.add(-counted)
        if isinstance(last, _Mismatch):
            raise FetchError(
                f"MD5 mismatch for {db.url(volume)}: expected {last.expected} (its .md5), "
                f"got {last.got}, {self.settings.volume_attempts} times"
            )
        raise SourceError(f"{db.url(volume)}: {last}")

    def _volume_once(
        self,
        db: SourceDatabase,
        target: str,
        volume: str,
        expected: str,
        head: RemoteFile,
        window: int,
        pool: ThreadPoolExecutor,
        uploads: ThreadPoolExecutor,
        count: Callable[[int], None],
    ) -> VolumeRecord:
        digest = hashlib.md5(usedforsecurity=False)
        size = 0

        def seen(data: bytes) -> None:
            nonlocal size
            digest.update(data)
            size += len(data)

        url = db.url(volume)
        if head.ranges and head.size:
            reader: io.RawIOBase = _RangedReader(
                self.http, url, head.size, self.settings, window, pool, seen, count
            )
            return self._unpack(reader, volume, target, expected, digest, lambda: size, uploads)
        with self.http.stream(url) as body:
            reader = _StreamReader(body, self.http.stop, seen, count)
            return self._unpack(reader, volume, target, expected, digest, lambda: size, uploads)

    def _unpack(
        self,
        reader: io.RawIOBase,
        volume: str,
        target: str,
        expected: str,
        digest: Any,
        size: Callable[[], int],
        uploads: ThreadPoolExecutor,
    ) -> VolumeRecord:
        """gunzip | tar | stage blocks, then check the tarball's MD5."""
        files: dict[str, StagedFile] = {}
        stager = _Stager(self.container, uploads, self.settings.uploads_per_volume)
        broken: str | None = None
        try:
            try:
                with tarfile.open(fileobj=reader, mode="r|gz") as tar:
                    for member in tar:
                        fname = member_name(member, volume)
                        if fname is None:
                            continue
                        if fname in files:
                            raise FetchError(f"{volume} holds {fname} twice")
                        stream = tar.extractfile(member)
                        assert stream is not None  # a regular file (member_name checked)
                        files[fname] = stager.file(
                            stream, f"{target}/{fname}", expected, self.settings.block
                        )
            except (tarfile.TarError, zlib.error, EOFError) as exc:
                broken = str(exc) or type(exc).__name__
            # The tarball's MD5 covers every byte, also those after tar's end marker.
            while reader.read(1 << 20):
                pass
            stager.wait()
        finally:
            reader.close()
        got = digest.hexdigest()
        if got != expected:
            raise _Mismatch(volume, expected, got)
        if broken is not None:
            raise FetchError(f"{volume} matches its MD5 but is not a valid tar.gz ({broken})")
        return VolumeRecord(volume, expected, size(), files)

    def _publish(
        self,
        db: SourceDatabase,
        target: str,
        tarballs: Mapping[str, str],
        verified: Mapping[str, VolumeRecord],
    ) -> dict[str, Any]:
        """Commit every file, drop an older version's leftovers, write the manifest last."""
        chosen = select_files([verified[v] for v in db.volumes])
        files = {n: (s.size, s.md5) for n, (_, s) in chosen.items()}
        alias: tuple[str, bytes] | None = None
        if target != db.name:
            alias = alias_file(target, db.name, db.molecule, db.metadata.get("description"))
            if alias[0] in files:
                raise FetchError(f"--as {target}: {db.name} already holds a file {alias[0]}")
            files[alias[0]] = (len(alias[1]), hashlib.md5(alias[1]).hexdigest())

        def commit(item: tuple[str, tuple[VolumeRecord, StagedFile]]) -> None:
            fname, (volume, staged) = item
            self.container.get_blob_client(f"{target}/{fname}").commit_block_list(
                [BlobBlock(block_id=b) for b in block_ids(volume.md5, staged.blocks)],
                content_settings=_content(staged.md5),
            )

        with ThreadPoolExecutor(8, "fetch-commit") as pool:
            list(pool.map(commit, chosen.items()))
        if alias is not None:
            self.container.upload_blob(
                f"{target}/{alias[0]}",
                alias[1],
                overwrite=True,
                content_settings=_content(files[alias[0]][1]),
            )
        keep = set(files) | {MANIFEST}
        for blob in self.container.list_blobs(name_starts_with=f"{target}/"):
            rest = str(blob.name)[len(target) + 1 :]
            if "/" not in rest and rest not in keep:
                self.container.delete_blob(blob.name)
        manifest = fetched_manifest(
            target, db, tarballs, files, self.clock().isoformat(timespec="seconds")
        )
        self.container.upload_blob(
            f"{target}/{MANIFEST}", json.dumps(manifest, indent=1), overwrite=True
        )
        with contextlib.suppress(ResourceNotFoundError):
            self.container.delete_blob(f"{target}/{JOURNAL}")
        return manifest


INFO_KEYS = (
    "title",
    "molecule",
    "sequences",
    "residues",
    "bytes_to_cache",
    "last_updated",
)


class _Stager:
    """Stages one volume's blocks on the upload pool, at most ``slots`` at a time, so reading
    goes on while blocks travel and memory stays bounded."""

    def __init__(self, container: ContainerClient, pool: ThreadPoolExecutor, slots: int) -> None:
        self.container = container
        self.pool = pool
        self.slots = threading.Semaphore(slots)
        self.puts: list[Future[None]] = []
        self.errors: list[BaseException] = []

    def _put(self, blob: Any, bid: str, data: bytes) -> None:
        try:
            blob.stage_block(bid, data, length=len(data))
        except BaseException as exc:
            self.errors.append(exc)
            raise
        finally:
            self.slots.release()

    def file(self, stream: Any, blob_name: str, tar_md5: str, block: int) -> StagedFile:
        """Stage one file's content as blocks of ``blob_name``; return what was staged."""
        blob = self.container.get_blob_client(blob_name)
        digest = hashlib.md5(usedforsecurity=False)
        size = index = 0
        while data := stream.read(block):
            digest.update(data)
            size += len(data)
            self.slots.acquire()
            if self.errors:
                self.slots.release()
                raise self.errors[0]
            self.puts.append(self.pool.submit(self._put, blob, block_id(tar_md5, index), data))
            index += 1
        return StagedFile(size, digest.hexdigest(), index)

    def wait(self) -> None:
        """Wait for every staged block; raise the first failure."""
        for put in self.puts:
            put.result()


def _content(md5_hex: str) -> ContentSettings:
    return ContentSettings(
        content_type="application/octet-stream", content_md5=bytearray(bytes.fromhex(md5_hex))
    )
