"""The run's tuning (pure): threads per worker and batch length, from the database size, the
queries and the cores, after ElasticBLAST's tuner.

A run has a fixed number of cores: the workload's ``workers`` x ``threads_per_worker``. How
they are cut into workers matters, because every batch is one BLAST search that scans the
whole database (or shard) again:

* **threads per worker**: BLAST's threads share out one scan of the database, where more
  single-thread workers each scan it for their own batches; so a worker gets as many threads
  as its group holds (:data:`~deployer.defaults.MAX_BLAST_THREADS`), as long as every thread
  still has :data:`~deployer.defaults.MIN_CACHE_BYTES_PER_THREAD` of the database to scan
  (smaller databases leave threads idle, and single-thread workers do better). Fewer workers
  also cache fewer copies of the database, so they cost less memory. A sharded database
  first gets a worker per shard (each worker group serves one shard), threads after that.
* **batch length**: ElasticBLAST's length for the program times the threads (a worker of
  ``t`` threads searches a batch ``t`` times faster, so the per-job overhead stays the same
  share), except for blastn (:data:`LENGTH_WHATEVER_THE_THREADS`), but never so long that a
  worker has no batch; and the batches are a whole number of rounds of the workers, so no
  worker idles through a last, partial round. Each batch is
  ``ceil(letters / batches)`` plus the longest query less one, so whole queries never spill
  into one more, small batch (which would cost one more scan of the database).

What the workload file or the command line gives wins: ``threads_per_worker`` written in the
file, ``--batch-len``. An autoscaled run keeps both as they are: its scaler sizes the pool
from the backlog.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from blast_client.fasta import DEFAULT_BATCH_LEN, FastaError, batch_records, iter_records

from deployer import defaults, sizing
from deployer.errors import InputError
from deployer.plan.databases import worker_sizing
from deployer.workload import Workload

LENGTH_WHATEVER_THE_THREADS = frozenset({"blastn"})
"""Programs whose batches keep ElasticBLAST's length however many threads search them. blastn
looks the database up in a table built from the batch's query letters, and a longer batch
searches slower per letter: 14,000 queries of 700 bases (9.8 Mbp) against 30 Mbp with 2
threads took 41.5 and 48.0 s as one batch, 33.0 and 32.7 s as two, 34.8 and 34.3 s as four,
one after another (``-task blastn``, this project's 2-core machine). The other programs'
batches are 10,000 to 100,000 letters, far from that."""


@dataclass(frozen=True)
class Queries:
    """What the tuner needs to know of the queries.

    Args:
        count (int): Records.
        letters (int): Residues of all records.
        longest (int): Residues of the longest record.
    """

    count: int
    letters: int
    longest: int


def query_stats(fasta: str) -> Queries:
    """Count the records and letters of a FASTA text (pure)."""
    lengths = [len(r.sequence) for r in iter_records(fasta)]
    return Queries(len(lengths), sum(lengths), max(lengths, default=0))


@dataclass(frozen=True)
class Tuning:
    """The tuner's choice for one run.

    Args:
        program (str): The BLAST program.
        cores (int): The run's cores (workers x threads).
        workers (int): Workers (the run caps them at its batches).
        threads (int): BLAST threads (= vCPU) per worker.
        batch_len (int): Residues per batch, given to the batching.
        batches (int): Batches the tuner aims at (at most this many); the actual count, once
            the queries are cut, for :func:`tune_run`.
        why (str): Why, for ``deployer plan`` and ``deployer run``.
    """

    program: str
    cores: int
    workers: int
    threads: int
    batch_len: int
    batches: int
    why: str

    def describe(self) -> str:
        """One line for ``deployer plan`` and ``deployer run``."""
        return (
            f"Run tuning ({self.program}, {_n(self.cores, 'core')}): "
            f"{_n(self.workers, 'worker')} x {_n(self.threads, 'thread')}, "
            f"{_n(self.batches, 'batch', 'batches')} of at most "
            f"{self.batch_len:,} letters: {self.why}"
        )


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:.1f} MB"


def choose_threads(cores: int, max_threads: int, db_bytes: int) -> int:
    """Threads per worker for ``cores`` cores (pure): the most that divide the cores (so every
    core is used), are at most ``max_threads``, and leave each thread
    :data:`~deployer.defaults.MIN_CACHE_BYTES_PER_THREAD` of the database.

    Args:
        cores (int): The run's cores (>= 1).
        max_threads (int): Most threads one worker's group holds (>= 1).
        db_bytes (int): Bytes-to-cache one worker searches (the database, or its shard).
    """
    by_db = max(1, db_bytes // defaults.MIN_CACHE_BYTES_PER_THREAD)
    cap = max(1, min(cores, max_threads, by_db))
    return max(t for t in range(1, cap + 1) if cores % t == 0)


def tune(
    program: str,
    db_bytes: int,
    queries: Queries,
    cores: int,
    max_threads: int,
    *,
    threads: int | None = None,
    batch_len: int | None = None,
    shards: int = 1,
) -> Tuning:
    """Choose threads per worker and the batch length of a run (pure; see the module).

    Args:
        program (str): blastn, blastp, blastx, tblastn or tblastx.
        db_bytes (int): The database's bytes-to-cache (0 when unknown).
        queries (Queries): The queries' records and letters.
        cores (int): The run's cores: workers x threads per worker (>= 1).
        max_threads (int): Most threads a worker's group holds (>= 1).
        threads (int | None): Threads per worker the workload file gives (it wins; the
            workers are then cores // threads).
        batch_len (int | None): Residues per batch given on the command line (it wins).
        shards (int): Shards the database is searched in (each batch is one job per shard).

    Raises:
        ValueError: For cores, max_threads or shards below 1, or an unknown program.
    """
    if cores < 1 or max_threads < 1 or shards < 1:
        raise ValueError("cores, max_threads and shards must be at least 1")
    default_len = DEFAULT_BATCH_LEN[program]
    shard_bytes = math.ceil(db_bytes / shards)
    size = f"{_mb(db_bytes)} database" + (f" in {shards} shards" if shards > 1 else "")
    if threads is not None:
        t = threads
        thread_why = f"threads_per_worker {t} in the workload file"
    else:
        # Each worker group serves one shard (pinned), so at least one worker per shard: more
        # threads would put more workers, and cores, on the run than it was given.
        most = max_threads if shards == 1 else max(1, min(max_threads, cores // shards))
        t = choose_threads(cores, most, shard_bytes)
        if shards > 1 and t < choose_threads(cores, max_threads, shard_bytes):
            thread_why = (
                f"{_n(t, 'thread')} per worker: {cores} cores give each of the {shards} shards "
                "a worker of its own (a worker serves one shard)"
            )
        elif t > 1:
            thread_why = (
                f"{t} threads share each scan of the {size}, where {cores} single-thread "
                "workers would each scan it for their own batches (and cache it once each)"
            )
        elif cores > 1 and db_bytes == 0:
            thread_why = (
                "1 thread per worker: the database's size is unknown (deployer run reads it "
                "from its manifest in storage)"
            )
        elif cores > 1 and shard_bytes // defaults.MIN_CACHE_BYTES_PER_THREAD < 2:
            thread_why = (
                f"1 thread per worker: the {size} is too small to share out among threads "
                f"(under {_mb(defaults.MIN_CACHE_BYTES_PER_THREAD)} each)"
            )
        else:
            thread_why = f"1 thread per worker ({cores} cores)"
    workers = max(1, cores // t)
    letters = max(1, queries.letters)
    if batch_len is not None:
        return Tuning(
            program,
            cores,
            workers,
            t,
            batch_len,
            _greedy_count(queries, batch_len),
            f"{thread_why}; --batch-len {batch_len:,} given",
        )
    scaled = program not in LENGTH_WHATEVER_THE_THREADS
    per_job = default_len * (t if scaled else 1)
    jobs = math.ceil(letters / per_job) * shards
    rounds = math.ceil(jobs / workers)
    batches = max(1, min(max(1, queries.count), math.ceil(rounds * workers / shards)))
    length = math.ceil(letters / batches) + max(0, queries.longest - 1)
    per_batch = (
        f"ElasticBLAST's {default_len:,} letters x {_n(t, 'thread')} per batch at most"
        if scaled
        else f"ElasticBLAST's {default_len:,} letters per batch at most, whatever the threads: "
        "a longer blastn batch searches slower per letter"
    )
    batch_why = (
        f"{_n(rounds, 'round')} of {_n(workers, 'worker')} over {letters:,} query letters "
        f"({per_batch}), so no worker idles through a last, partial round"
    )
    return Tuning(program, cores, workers, t, length, batches, f"{thread_why}; {batch_why}")


def _greedy_count(queries: Queries, batch_len: int) -> int:
    """Batches ``batch_len`` makes of evenly long queries (an estimate; :func:`tune_run`
    counts the real ones)."""
    if queries.count == 0:
        return 0
    per = max(1, batch_len // max(1, queries.longest))
    return math.ceil(queries.count / per)


def max_threads(limits: sizing.Limits) -> int:
    """Most threads one worker can have in a group of ``limits`` (pure)."""
    return max(1, min(defaults.MAX_BLAST_THREADS, limits.max_cpu // defaults.TENTHS))


def tune_run(
    workload: Workload,
    fasta: str,
    program: str,
    db: str,
    batch_len: int | None = None,
) -> tuple[Workload, Tuning]:
    """The run's workload with the tuned workers and threads, and the tuning (pure).

    The batches' count in the tuning is the real one for these queries.

    Args:
        workload (Workload): The sized workload file (``workloads.blast`` set; its databases'
            bytes-to-cache filled in, unknown ones count as 0).
        fasta (str): The queries.
        program (str): The BLAST program.
        db (str): The database searched.
        batch_len (int | None): ``--batch-len``, which wins.
    """
    blast = workload.workloads.blast
    assert blast is not None, "checked by the caller"
    sized = worker_sizing(workload)
    choice = next((c for c in sized.choices if c.database == db), None)
    db_bytes = choice.bytes_to_cache if choice else 0
    shards = choice.shards if choice else 1
    stats = query_stats(fasta)
    cores = blast.workers * blast.threads_per_worker
    explicit = "threads_per_worker" in blast.model_fields_set or blast.autoscale is not None
    tuning = tune(
        program,
        db_bytes,
        stats,
        cores,
        max_threads(sized.limits),
        threads=blast.threads_per_worker if explicit else None,
        batch_len=batch_len or (DEFAULT_BATCH_LEN[program] if blast.autoscale else None),
        shards=shards,
    )
    if blast.autoscale is not None:
        tuning = Tuning(
            program,
            cores,
            blast.workers,
            blast.threads_per_worker,
            tuning.batch_len,
            tuning.batches,
            f"autoscaled: the scaler sizes the pool from the backlog, so threads_per_worker "
            f"{blast.threads_per_worker} and the batch length "
            f"{'given' if batch_len else 'after ElasticBLAST'} stay",
        )
    records = list(iter_records(fasta))
    actual = len(batch_records(records, tuning.batch_len)) if records else 0
    tuning = Tuning(
        program,
        cores,
        tuning.workers,
        tuning.threads,
        tuning.batch_len,
        actual,
        tuning.why,
    )
    tuned = workload.with_blast(workers=tuning.workers, threads_per_worker=tuning.threads)
    return tuned, tuning


@dataclass(frozen=True)
class RunQuery:
    """A run ``deployer plan --queries`` shows the tuning of.

    Args:
        fasta (str): The queries.
        program (str): The BLAST program.
        db (str | None): The database (default: the workload's first).
        batch_len (int | None): ``--batch-len`` (it wins).
    """

    fasta: str
    program: str = "blastn"
    db: str | None = None
    batch_len: int | None = None


def tune_query(workload: Workload, query: RunQuery) -> Tuning:
    """What ``deployer run`` would choose for ``query`` (pure).

    Raises:
        InputError: For a workload without BLAST, an unknown program or database, or
            queries that are not FASTA records.
    """
    blast = workload.workloads.blast
    if blast is None:
        raise InputError(
            "--queries shows how `deployer run` tunes a search, but the workload defines no "
            "blast workload",
            hint="add workloads.blast (workers, databases); see examples/",
        )
    if query.program not in DEFAULT_BATCH_LEN:
        raise InputError(
            f"--program {query.program!r} is not one of {', '.join(sorted(DEFAULT_BATCH_LEN))}"
        )
    names = [db.name for db in blast.databases]
    db = query.db or names[0]
    if db not in names:
        raise InputError(
            f"--db {db} is not a database of the workload ({', '.join(names)})",
            code="UnknownDatabase",
        )
    try:
        if not query_stats(query.fasta).count:
            raise InputError("the queries hold no FASTA record")
    except FastaError as exc:
        raise InputError(f"the queries are not FASTA: {exc}") from None
    return tune_run(workload, query.fasta, query.program, db, query.batch_len)[1]
