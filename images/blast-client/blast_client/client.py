"""``BlastClient``: submit BLAST jobs, follow them, fetch results, list databases.

The one client of the BLAST service: ``blast-jobs`` is a thin CLI over it, and the notebook,
the web page and ``deployer run`` use it directly. Planning is pure (:meth:`BlastClient.plan`);
every other method talks to storage and turns storage failures into :class:`StorageError`.

Example::

    client = BlastClient.from_env(queue="blast-jobs")
    specs = client.plan(fasta_text, db="demo", program="blastn", options=Options(evalue=1e-5))
    ids = client.submit(specs)
    done = client.wait(ids, timeout=600)
    tsv = client.result(ids[0], 6)
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.storage.blob import ContainerClient, ContentSettings
from azure.storage.queue import QueueClient

from blast_client import shards
from blast_client.config import StorageConfig, load_storage_config
from blast_client.databases import (
    MANIFEST,
    METADATA_SUFFIXES,
    DatabaseInfo,
    build_manifest,
    database_info,
    parse_metadata,
)
from blast_client.dbfetch import DatabaseFetch, FetchProgress, FetchResult, FetchSettings
from blast_client.errors import InvalidRequest, JobNotFound, NoResult
from blast_client.fasta import (
    DEFAULT_BATCH_LEN,
    MAX_INLINE_BYTES,
    FastaError,
    batch_records,
    join_records,
    validate_fasta,
)
from blast_client.joblog import FINAL, JobLog, index_entries, queued_row, to_jsonable
from blast_client.messages import (
    FORMAT_FILES,
    NO_ARCHIVE,
    PROGRAMS,
    JobSpec,
    MessageError,
    Options,
    Query,
    hit_fasta_blob,
    parse_options,
    query_blob,
    result_blob,
)
from blast_client.names import InvalidName, check_db_name, check_job_id, check_run_id
from blast_client.ncbi import HttpSource, SourceDirectory, check_date, source_url
from blast_client.storage import Storage, storage_errors

SUBMIT_THREADS = 16
"""Storage requests in flight at once while submitting. At Azure's ~10 ms a request that is
under 2,000 a second: within a queue's 2,000 messages/s and a partition's 2,000 entities/s;
throttled answers (503) are retried by the SDK, slowing the submit down."""

RESULT_FORMATS = (6, 7, 15, 11)
"""Formats :meth:`BlastClient.result` can return; 11 is the BLAST archive, stored for jobs that
ask for 15 and for shards (:func:`blast_client.messages.keeps_archive`)."""


ARCHIVE_HINT = "submit it with --outfmt 6,15 to keep the archive"


def _no_archive(job_id: str) -> NoResult:
    """The answer to a request for the archive (11) of a job that kept none."""
    return NoResult(f"job {job_id} has no archive (11): {NO_ARCHIVE}", hint=ARCHIVE_HINT)


@dataclass(frozen=True)
class JobStatus:
    """A job as its job log row records it.

    Attributes:
        job_id: The job id.
        status: One of ``joblog.STATUSES``, or unknown (no row yet).
        program: BLAST program.
        db: Database name.
        name: Label given at submission ("" or None when none).
        run_id: The run the job belongs to, or None.
        attempts: Deliveries so far.
        submitted: Epoch seconds, or None.
        started: Epoch seconds of the last start, or None.
        finished: Epoch seconds, or None.
        worker: The worker that ran it last.
        hits: Number of hits (succeeded jobs).
        error: Why it failed, was poisoned or released, or None.
        results: Links to the result files by format (SAS links under key auth).
        row: The whole row as plain JSON (durations and any other columns).
    """

    job_id: str
    status: str
    program: str | None = None
    db: str | None = None
    name: str | None = None
    run_id: str | None = None
    attempts: int = 0
    submitted: float | None = None
    started: float | None = None
    finished: float | None = None
    worker: str | None = None
    hits: int | None = None
    error: str | None = None
    results: dict[int, str] = field(default_factory=dict)
    row: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def final(self) -> bool:
        """True once the job succeeded, failed, was poisoned or cancelled (:data:`FINAL`)."""
        return self.status in FINAL

    def result_blob(self, fmt: int) -> str:
        """Blob name of one result file in the results container.

        Args:
            fmt: Output format (6, 7, 15 or 11).
        """
        return result_blob(self.job_id, fmt)

    @property
    def hit_fasta_note(self) -> str | None:
        """None if the job stored its hit sequences (``hits.fasta``), else why not (one line)."""
        if self.row.get("hit_fasta") is True:
            return None
        if self.status != "succeeded":
            return f"job {self.job_id} is {self.status}"
        return str(self.row.get("hit_fasta_note") or "its worker predates stored hit sequences")

    def to_json(self) -> dict[str, Any]:
        """The row as plain JSON (what ``blast-jobs status --output json`` prints)."""
        return {"job_id": self.job_id, "status": self.status, **self.row}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobStatus:
        """Build from a job log entity.

        Args:
            row: The entity as read from the table.
        """
        doc = to_jsonable(dict(row))
        results: dict[int, str] = {}
        for key, url in (doc.get("results") or {}).items():
            with contextlib.suppress(ValueError):
                results[int(key)] = str(url)

        def number(key: str) -> float | None:
            value = doc.get(key)
            return float(value) if isinstance(value, int | float) else None

        hits = doc.get("hits")
        return cls(
            job_id=str(doc["job_id"]),
            status=str(doc.get("status") or "unknown"),
            program=doc.get("program") or None,
            db=doc.get("db") or None,
            name=doc.get("name") or None,
            run_id=doc.get("run_id") or None,
            attempts=int(doc.get("attempts") or 0),
            submitted=number("submitted"),
            started=number("started"),
            finished=number("finished"),
            worker=doc.get("worker") or None,
            hits=int(hits) if isinstance(hits, int | float) else None,
            error=doc.get("error") or None,
            results=results,
            row={k: v for k, v in doc.items() if k not in ("job_id", "status")},
        )


def new_job_ids(n: int, now: float | None = None) -> list[str]:
    """``n`` fresh, time-sortable job ids ``YYYYMMDDTHHMMSS-<8 hex>`` that sort in the order
    given: one time stamp, distinct random suffixes in ascending order. A search's batches
    take them in batch order, so ordering its jobs by id is batch order even when they share
    a submission time (``submit`` gives them one).

    Args:
        n: How many.
        now: Epoch seconds; defaults to the clock.
    """
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() if now is None else now))
    suffixes: set[str] = set()
    while len(suffixes) < n:
        suffixes.add(secrets.token_hex(4))
    return [f"{stamp}-{suffix}" for suffix in sorted(suffixes)]


def new_job_id(now: float | None = None) -> str:
    """A fresh, time-sortable job id: ``YYYYMMDDTHHMMSS-<8 hex>``.

    Args:
        now: Epoch seconds; defaults to the clock.
    """
    return new_job_ids(1, now)[0]


def plan_jobs(
    fasta: str,
    db: str,
    program: str = "blastn",
    options: Options | Mapping[str, Any] | None = None,
    batch_len: int | None = None,
    name: str | None = None,
    run_id: str | None = None,
    hit_fasta: bool = False,
) -> list[JobSpec]:
    """Validate a search and split its FASTA into jobs of about ``batch_len`` residues (pure).

    Args:
        fasta: All query FASTA.
        db: Database name.
        program: BLAST program.
        options: :class:`Options`, or raw options (as in a message) to check against the
            whitelist; None for BLAST's defaults and tabular output.
        batch_len: Residues per job; default after ElasticBLAST for the program.
        name: Label recorded with the jobs.
        run_id: Run the jobs belong to.
        hit_fasta: Have the workers store each job's hit sequences
            (:meth:`BlastClient.hit_sequences` reads them); off, a job skips that step.

    Returns:
        One inline-query job per batch, in batch order with ascending ids
        (:func:`new_job_ids`); :meth:`BlastClient.submit` moves large ones to blobs.

    Raises:
        InvalidRequest: on a bad program, database name, run id, option or FASTA.
    """
    if program not in PROGRAMS:
        raise InvalidRequest(f"unknown program {program!r}; use one of {', '.join(PROGRAMS)}")
    try:
        check_db_name(db)
        if run_id is not None:
            check_run_id(run_id)
        if options is None:
            opts = Options()
        elif isinstance(options, Options):
            opts = parse_options(options.to_json(), program)
        else:
            opts = parse_options(dict(options), program)
        records = validate_fasta(fasta, program)
    except (InvalidName, MessageError) as exc:
        raise InvalidRequest(str(exc)) from None
    except FastaError as exc:
        raise InvalidRequest(f"the query is not valid: {exc}") from None
    if name is not None and len(name) > 256:
        raise InvalidRequest("the name must be at most 256 characters")
    if batch_len is not None and batch_len < 1:
        raise InvalidRequest(f"batch_len must be at least 1, not {batch_len}")
    batches = list(batch_records(records, batch_len or DEFAULT_BATCH_LEN[program]))
    return [
        JobSpec(
            job_id,
            program,
            db,
            Query(fasta=join_records(batch)),
            opts,
            name,
            run_id=run_id,
            hit_fasta=hit_fasta,
        )
        for job_id, batch in zip(new_job_ids(len(batches)), batches, strict=True)
    ]


def database_blobs(container: ContainerClient, name: str) -> dict[str, int]:
    """File name -> bytes of every blob of database ``name`` (its manifest too): the listing
    the workers and the deployer cut shards by.

    Raises:
        azure.core.exceptions.AzureError: storage failed.
    """
    prefix = f"{name}/"
    return {
        str(b.name)[len(prefix) :]: int(b.size or 0)
        for b in container.list_blobs(name_starts_with=prefix)
        if "/" not in str(b.name)[len(prefix) :]
    }


class BlastClient:
    """The BLAST service as seen by its users.

    Args:
        connection_string: Storage connection string (Azurite or key auth).
        account_name: Storage account for ``DefaultAzureCredential`` when there is no
            connection string.
        queue: Job queue name (runs use their own); None for the default ``blast-jobs``.
        config: A complete storage configuration instead of the three above.
        storage: Ready storage clients (tests and callers that share them).
        retries: SDK-level retries of a failed request when the client builds its storage
            clients (1: quick, for workers with their own backoff; a control plane that must
            ride out throttling asks for more).

    Raises:
        ConfigError: when neither a connection string nor an account name is given.
    """

    def __init__(
        self,
        connection_string: str | None = None,
        *,
        account_name: str | None = None,
        queue: str | None = None,
        config: StorageConfig | None = None,
        storage: Storage | None = None,
        retries: int = 1,
    ) -> None:
        if storage is not None:
            config = storage.cfg
        if config is None:
            env = {
                "AZURE_STORAGE_CONNECTION_STRING": connection_string or "",
                "AZURE_STORAGE_ACCOUNT": account_name or "",
            }
            config = load_storage_config(env)
        if queue is not None and queue != config.queue:
            config = replace(config, queue=queue)
            storage = None
        self.config = config
        self._storage = storage
        self._retries = retries

    @classmethod
    def from_env(
        cls, queue: str | None = None, env: Mapping[str, str] | None = None, retries: int = 1
    ) -> BlastClient:
        """A client configured like the workers (see :mod:`blast_client.config`).

        Args:
            queue: Job queue, overriding ``BLAST_QUEUE``.
            env: Environment mapping; defaults to ``os.environ``.
            retries: SDK-level retries of a failed request (see :class:`Storage`).

        Raises:
            ConfigError: naming the missing or invalid variable.
        """
        cfg = load_storage_config(env)
        if queue is not None:
            cfg = replace(cfg, queue=queue)
        return cls(config=cfg, retries=retries)

    @property
    def storage(self) -> Storage:
        """The storage clients, built on first use."""
        if self._storage is None:
            self._storage = Storage(self.config, retries=self._retries)
        return self._storage

    @property
    def joblog(self) -> JobLog:
        """The job log."""
        return JobLog(self.storage.table)

    # -- set-up ---------------------------------------------------------------------------

    def ensure_resources(self, queues: Sequence[str] | None = None) -> list[str]:
        """Create the queue, poison queue, job table and containers if missing (idempotent).

        Args:
            queues: The job queues to create (each with its poison queue) instead of the
                configured one.

        Returns:
            What was created, e.g. ``["queue run-1", "queue run-1-poison"]``.
        """
        with storage_errors():
            return self.storage.ensure_resources(queues)

    # -- submitting -----------------------------------------------------------------------

    # Planning is pure (no storage), so the client offers the module function as it is.
    plan = staticmethod(plan_jobs)

    def submit(
        self,
        specs: Sequence[JobSpec],
        queue_of: Callable[[JobSpec], str] | None = None,
        *,
        rows: bool = True,
        on_sent: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Queue planned jobs: upload large queries, record each as queued, then enqueue.

        The row is written before the message, so a job is never running without a row.
        Index entries go in batch transactions, sent beside the rows and messages; blobs, rows
        and messages go :data:`SUBMIT_THREADS` at a time.

        Args:
            specs: Jobs from :meth:`plan`.
            queue_of: The queue of each job (a run pinned to shards puts each shard's jobs
                on a queue of its own); None puts them all on the configured queue.
            rows: Write each job's ``queued`` row and its index entries. A run's jobs go
                without: the run's record lists them, its readers count a job without a row
                as queued, and the worker's first write creates the row and its index
                entries (:meth:`JobLog.update_unless_final`). Each row is a request of its
                own (one partition per job): without them a large run's submission sends
                half the requests, and a third of the SDK's work.
            on_sent: Called with the number of jobs queued so far, as they go.

        Returns:
            Their job ids, in order.
        """
        inputs = self.storage.container(self.config.inputs_container)
        now = time.time()

        def place(spec: JobSpec) -> JobSpec:
            fasta = spec.query.fasta
            if fasta is None or len(fasta.encode()) <= MAX_INLINE_BYTES:
                return spec
            blob = query_blob(spec.job_id)
            inputs.upload_blob(blob, fasta.encode(), overwrite=True)
            return replace(spec, query=Query(blob=blob))

        queues = {self.config.queue: self.storage.queue}
        if queue_of is not None:
            queues.update({q: self.storage.queue_client(q) for q in map(queue_of, specs)})

        def queue(spec: JobSpec) -> QueueClient:
            return queues[queue_of(spec) if queue_of is not None else self.config.queue]

        def enqueue(spec: JobSpec) -> None:
            if rows:
                row = queued_row(spec.job_id, spec.program, spec.db, spec.name, now, spec.run_id)
                self.storage.table.upsert_entity(row, mode=UpdateMode.REPLACE)
            queue(spec).send_message(spec.to_message())

        with storage_errors(), ThreadPoolExecutor(SUBMIT_THREADS) as pool:
            placed = list(pool.map(place, specs))
            entries = [e for s in placed for e in index_entries(s.job_id, now, s.run_id)]
            index = pool.submit(self.joblog.upsert_batched, entries if rows else [])
            for sent, _ in enumerate(pool.map(enqueue, placed), 1):
                if on_sent is not None:
                    on_sent(sent)
            index.result()
        return [spec.job_id for spec in placed]

    # -- following ------------------------------------------------------------------------

    def status(self, job_id: str) -> JobStatus:
        """The job's row.

        Args:
            job_id: The job id.

        Raises:
            InvalidRequest: if ``job_id`` is not a valid id.
            JobNotFound: if there is no such job.
        """
        row = self._get(job_id)
        if row is None:
            raise JobNotFound(
                f"job {job_id} not found in table {self.config.table}",
                hint="check the id (`blast-jobs recent --since 1h` lists recent jobs)",
            )
        return JobStatus.from_row(row)

    def _get(self, job_id: str) -> dict[str, Any] | None:
        try:
            check_job_id(job_id)
        except InvalidName as exc:
            raise InvalidRequest(str(exc)) from None
        with storage_errors():
            return self.joblog.get(job_id)

    def run_jobs(self, run_id: str) -> list[JobStatus]:
        """Every job submitted with ``run_id``, by job id.

        Args:
            run_id: The run id.

        Raises:
            InvalidRequest: if ``run_id`` is not a valid id.
        """
        try:
            check_run_id(run_id)
        except InvalidName as exc:
            raise InvalidRequest(str(exc)) from None
        with storage_errors():
            return [JobStatus.from_row(row) for row in self.joblog.run_jobs(run_id)]

    def wait(
        self,
        job_ids: Sequence[str],
        timeout: float | None = None,
        interval: float = 2.0,
        on_progress: Callable[[list[JobStatus]], None] | None = None,
    ) -> list[JobStatus]:
        """Poll until every job is final or ``timeout`` passes.

        Args:
            job_ids: The jobs.
            timeout: Seconds to wait at most; None waits for ever.
            interval: Seconds between polls.
            on_progress: Called with the current statuses after every poll.

        Returns:
            The statuses in ``job_ids`` order; some are not final if the timeout passed
            (a job without a row yet is ``unknown``).
        """
        for job_id in job_ids:
            try:
                check_job_id(job_id)
            except InvalidName as exc:
                raise InvalidRequest(str(exc)) from None
        deadline = None if timeout is None else time.monotonic() + timeout
        current: dict[str, JobStatus] = {}
        while True:
            with storage_errors():
                for job_id in job_ids:
                    known = current.get(job_id)
                    if known is not None and known.final:
                        continue
                    row = self.joblog.get(job_id)
                    current[job_id] = (
                        JobStatus.from_row(row) if row else JobStatus(job_id, "unknown")
                    )
            statuses = [current[j] for j in job_ids]
            if on_progress is not None:
                on_progress(statuses)
            if all(s.final for s in statuses):
                return statuses
            if deadline is not None and time.monotonic() >= deadline:
                return statuses
            pause = interval if deadline is None else min(interval, deadline - time.monotonic())
            time.sleep(max(pause, 0.0))

    def result(self, job_id: str, fmt: int = 6, job: JobStatus | None = None) -> bytes:
        """One result file of a succeeded job.

        Args:
            job_id: The job id.
            fmt: 6 (tabular), 7 (commented tabular), 15 (JSON) or 11 (the BLAST archive).
            job: Its row as already read (saves reading it again), or None.

        Raises:
            InvalidRequest: on an unknown format.
            JobNotFound: if there is no such job.
            NoResult: if the job has not succeeded or was not asked for that format, or
                has no archive (11: a job that asked only for tabular output).
        """
        if fmt not in FORMAT_FILES:
            raise InvalidRequest(
                f"format {fmt} is not stored; choose from {', '.join(map(str, RESULT_FORMATS))}"
            )
        job = job or self.status(job_id)
        if job.status != "succeeded":
            raise NoResult(
                f"job {job_id} is {job.status}, so it has no results"
                + (f": {job.error}" if job.error else " yet"),
                hint=None if job.final else "`blast-jobs wait` waits for it",
            )
        # A row lists the links of every file stored; a job without an archive has none.
        if fmt == 11 and job.results and 11 not in job.results:
            raise _no_archive(job_id)
        container = self.storage.container(self.config.results_container)
        with storage_errors():
            try:
                return bytes(container.download_blob(job.result_blob(fmt)).readall())
            except ResourceNotFoundError:
                if fmt == 11:
                    raise _no_archive(job_id) from None
                raise NoResult(
                    f"job {job_id} has no format {fmt} output",
                    hint=f"submit it with --outfmt {fmt}",
                ) from None

    def hit_sequences(self, job_id: str) -> bytes:
        """The whole subject sequence of every hit of a succeeded job, as FASTA.

        Args:
            job_id: The job id.

        Raises:
            JobNotFound: if there is no such job.
            NoResult: if the job has not succeeded or stored none (the message says why, e.g.
                a database built without ``-parse_seqids``).
        """
        job = self.status(job_id)
        note = job.hit_fasta_note
        if note is not None:
            raise NoResult(f"job {job_id} has no hit sequences: {note}")
        container = self.storage.container(self.config.results_container)
        with storage_errors():
            try:
                blob = container.download_blob(hit_fasta_blob(job_id))
                return bytes(blob.readall())
            except ResourceNotFoundError:
                raise NoResult(f"job {job_id} has no hit sequences stored") from None

    def recent(self, limit: int | None = 50, since: float = 86400.0) -> list[JobStatus]:
        """Jobs submitted in the last ``since`` seconds, newest first.

        Args:
            limit: At most this many (None: all in the window).
            since: Window length in seconds (default one day).
        """
        now = time.time()
        with storage_errors():
            rows = list(self.joblog.recent(now - since, now))
        rows.reverse()
        if limit is not None:
            rows = rows[:limit]
        return [JobStatus.from_row(row) for row in rows]

    def queue_length(self) -> int:
        """Approximate number of messages waiting in the job queue."""
        with storage_errors():
            return int(self.storage.queue.get_queue_properties().approximate_message_count or 0)

    # -- databases ------------------------------------------------------------------------

    def databases(self) -> list[DatabaseInfo]:
        """The databases in the database container, by name.

        Title, molecule and counts come from each manifest (or makeblastdb's metadata file
        for older uploads); databases uploaded without a manifest are listed from their
        blobs alone.
        """
        container = self.storage.container(self.config.db_container)
        groups: dict[str, dict[str, int]] = {}
        with storage_errors():
            for blob in container.list_blobs():
                prefix, _, fname = str(blob.name).partition("/")
                if fname and "/" not in fname:
                    groups.setdefault(prefix, {})[fname] = int(blob.size or 0)
            infos: list[DatabaseInfo] = []
            for name, files in sorted(groups.items()):
                manifest: dict[str, Any] = {}
                if MANIFEST in files:
                    raw = container.download_blob(f"{name}/{MANIFEST}").readall()
                    with contextlib.suppress(ValueError):
                        doc = json.loads(raw)
                        manifest = doc if isinstance(doc, dict) else {}
                if not isinstance(manifest.get("files"), dict):
                    manifest["files"] = {
                        f: {"size": size} for f, size in files.items() if f != MANIFEST
                    }
                metadata = None
                if "title" not in manifest:
                    meta = next((f for f in files if Path(f).suffix in METADATA_SUFFIXES), None)
                    if meta is not None:
                        raw = container.download_blob(f"{name}/{meta}").readall()
                        metadata = parse_metadata(raw, Path(meta).suffix)
                infos.append(database_info(name, manifest, metadata))
        return infos

    def upload_database(self, name: str, files: Sequence[Path]) -> dict[str, Any]:
        """Upload makeblastdb output as database ``name`` with Content-MD5s, then the manifest.

        The manifest goes last, so a half-finished upload is never mistaken for a complete
        one (workers check every file against it). Blobs of an older version that the new
        file set does not overwrite are removed first.

        Args:
            name: Database name.
            files: The makeblastdb output files.

        Returns:
            What was uploaded: db, container, files, bytes, manifest, md5 (base64 by file).

        Raises:
            InvalidRequest: on a bad name or file list.
        """
        try:
            check_db_name(name)
        except InvalidName as exc:
            raise InvalidRequest(str(exc)) from None
        if not files:
            raise InvalidRequest("give the makeblastdb output files, e.g. mydb.n*")
        for f in files:
            if not f.is_file():
                raise InvalidRequest(f"{f} is not a file")
        if len({f.name for f in files}) != len(files):
            raise InvalidRequest("two files have the same name; upload one database at a time")
        manifest = build_manifest(name, list(files))
        container = self.storage.container(self.config.db_container)
        total = 0
        with storage_errors():
            stale = [
                b.name
                for b in container.list_blobs(name_starts_with=f"{name}/")
                if b.name.split("/", 1)[1] not in manifest["files"]
            ]
            for blob in stale:
                container.delete_blob(blob)
            for f in files:
                md5 = bytes.fromhex(manifest["files"][f.name]["md5"])
                with f.open("rb") as fh:
                    container.upload_blob(
                        f"{name}/{f.name}",
                        fh,
                        overwrite=True,
                        max_concurrency=4,
                        content_settings=ContentSettings(content_md5=bytearray(md5)),
                    )
                total += f.stat().st_size
            container.upload_blob(
                f"{name}/{MANIFEST}", json.dumps(manifest, indent=1), overwrite=True
            )
        return {
            "db": name,
            "container": self.config.db_container,
            "files": len(files),
            "bytes": total,
            "manifest": f"{name}/{MANIFEST}",
            "md5": {
                k: base64.b64encode(bytes.fromhex(v["md5"])).decode()
                for k, v in manifest["files"].items()
            },
        }

    def fetch_database(
        self,
        name: str,
        *,
        source: str | None = None,
        date: str | None = None,
        as_name: str | None = None,
        settings: FetchSettings | None = None,
        on_progress: Callable[[FetchProgress], None] | None = None,
        http: HttpSource | None = None,
    ) -> FetchResult:
        """Fetch NCBI's preformatted database ``name`` into the database container.

        Streams every volume from the source through gunzip and tar into Blob storage
        (nothing on local disk), verifies each tarball's MD5, and publishes the database
        only when all have passed; see :mod:`blast_client.dbfetch`. A database that is
        already current is left alone (``status`` "current"); an interrupted fetch resumes.

        Args:
            name: NCBI's name, e.g. ``swissprot``.
            source: ``ncbi`` (default), ``gcp``, ``aws`` or the URL of a mirror.
            date: ``YYYY-MM-DD``: the snapshot of that day (cloud copies only).
            as_name: The name in storage; defaults to ``name``.
            settings: Parallelism and sizes.
            on_progress: Called with the transfer's progress.
            http: The HTTP edge (timeouts, retries); a default one otherwise.

        Raises:
            InvalidRequest: bad name, source or date (exit code 2).
            UnknownDatabase: the source has no such database (exit code 2).
            SourceError: the source is unreachable or unreadable.
            FetchError: a volume failed its MD5 or is broken; nothing was published.
            StorageError: storage failed.
        """
        url = source_url(source)
        check_date(date)
        # Patient retries: a retried request is cheap next to restarting a volume.
        storage = Storage(self.config, retries=5)
        fetch = DatabaseFetch(
            storage.container(self.config.db_container),
            SourceDirectory(url, http or HttpSource()),
            settings,
            on_progress,
        )
        return fetch.run(name, date, as_name)

    def database_exists(self, name: str) -> bool:
        """True if database ``name`` has a manifest.

        Args:
            name: Database name.
        """
        blob = self.storage.container(self.config.db_container).get_blob_client(
            f"{name}/{MANIFEST}"
        )
        with storage_errors():
            return bool(blob.exists())

    def database(self, name: str) -> DatabaseInfo | None:
        """Database ``name`` as its manifest describes it (bytes-to-cache, molecule, ...),
        reading only that manifest; None when it has none.

        Args:
            name: Database name.

        Raises:
            StorageError: storage failed.
        """
        blob = self.storage.container(self.config.db_container).get_blob_client(
            f"{name}/{MANIFEST}"
        )
        with storage_errors():
            try:
                raw = blob.download_blob().readall()
            except ResourceNotFoundError:
                return None
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        return database_info(name, doc if isinstance(doc, dict) else {})

    def database_volumes(self, name: str) -> tuple[int, ...] | None:
        """Bytes of each volume of database ``name``, in its alias file's order, weighed as
        the workers weigh them to cut shards (:func:`blast_client.shards.stored_volumes` of
        its blobs); one volume of all its files when it has no alias file; None when it is
        not in storage.

        Args:
            name: Database name.

        Raises:
            StorageError: storage failed.
            ValueError: its alias file lists a volume without files.
        """
        container = self.storage.container(self.config.db_container)
        with storage_errors():
            files = database_blobs(container, name)
            files.pop(MANIFEST, None)
            alias = next((name + s for s in shards.ALIAS_SUFFIXES if name + s in files), None)
            if alias is None:
                return (sum(files.values()),) if files else None
            text = container.download_blob(f"{name}/{alias}").readall()
        volumes = shards.stored_volumes(name, text.decode("utf-8", "replace"), files)
        return tuple(v.bytes for v in volumes)

    def put_input(self, blob: str, data: bytes) -> None:
        """Store ``data`` in the inputs container (queries referenced by blob name).

        Args:
            blob: Blob name.
            data: The content.
        """
        with storage_errors():
            self.storage.container(self.config.inputs_container).upload_blob(
                blob, data, overwrite=True
            )

    def get_input(self, blob: str) -> bytes:
        """Read a blob of the inputs container (e.g. ``demo/<db>.queries.fa``).

        Args:
            blob: Blob name.

        Raises:
            NoResult: if there is no such blob.
        """
        container = self.storage.container(self.config.inputs_container)
        with storage_errors():
            try:
                return bytes(container.download_blob(blob).readall())
            except ResourceNotFoundError:
                raise NoResult(
                    f"{blob} is not in container {self.config.inputs_container}"
                ) from None
