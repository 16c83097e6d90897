"""Workers that finish jobs at once: the run machinery under load, without BLAST.

Messages are taken from the run's queue many at a time, as many workers would take them, and
each goes through the job protocol of the real worker with :mod:`blast_client`: the row read
(a finished job's redelivery is dropped), ``running``, the result blobs uploaded,
``finish_once``, the message deleted. The results are small but real in form: one tabular line
per query (6), its commented form (7), BLAST JSON (15) and a stand-in archive (11) where the
real worker stores one (``keeps_archive``), so the merge reads what a run of BLAST would give
it. The scale bench and tests use them to measure and check the control plane, not BLAST.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from queue import Empty, Queue
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.core.pipeline.transport import RequestsTransport
from blast_client import BlastClient
from blast_client.fasta import iter_records
from blast_client.joblog import FINAL
from blast_client.messages import keeps_archive, parse_message, result_blob
from blast_client.storage import Storage

log = logging.getLogger("testbed.fast_workers")

LEASE_S = 30
"""A message's lease. A job takes well under a second, but a request can fail on a loaded
machine (Azurite closes its kept-alive connections when its event loop stalls, and a POST or
MERGE is not retried): its message then comes back after this, not after ten minutes (each
such job held a 2,000-batch test up by the lease). A lease that runs out early is harmless, as
in the real worker (the row is final: dropped; a second finish loses to the first's etag)."""

RECEIVE = 32
"""Messages taken by one receive: Azure's most."""

THREADS = 12
"""Jobs worked on at once in each worker process. A job is six requests one after another,
so on a loaded machine each waits on the scheduler more than on Azurite or Python: 4 threads
left both half idle."""

IDLE_S = (0.2, 3.0)
"""The pause after an empty receive: the first, and the most it doubles to."""

FIELDS = (
    "query acc.ver, subject acc.ver, % identity, alignment length, mismatches, gap opens, "
    "q. start, q. end, s. start, s. end, evalue, bit score"
)


def results(fasta: str, db: str) -> dict[int, bytes]:
    """The result files of one batch: a hit of each query on itself (pure).

    Args:
        fasta: The batch's queries.
        db: The database name (in the commented header).
    """
    records = list(iter_records(fasta))
    lines, blocks, reports = [], [], []
    for record in records:
        qid = record.header.split()[0]
        n = len(record.sequence)
        line = f"{qid}\tsubj_{qid}\t100.000\t{n}\t0\t0\t1\t{n}\t1\t{n}\t1.00e-10\t{2 * n}\n"
        lines.append(line)
        blocks.append(
            f"# BLASTN 2.16.0+\n# Query: {qid}\n# Database: {db}\n# Fields: {FIELDS}\n"
            f"# 1 hits found\n{line}"
        )
        reports.append(
            {"report": {"results": {"search": {"query_title": qid, "hits": [{"num": 1}]}}}}
        )
    noun = "query" if len(records) == 1 else "queries"
    return {
        6: "".join(lines).encode(),
        7: ("".join(blocks) + f"# BLAST processed {len(records)} {noun}\n").encode(),
        15: (json.dumps({"BlastOutput2": reports}, indent=2) + "\n").encode(),
        11: f"Blast4-archive ::= {{ queries {len(records)} }}\n".encode(),
    }


@dataclass
class FastWorkers:
    """Threads that finish the jobs of one queue through the job protocol.

    One receiver takes up to :data:`RECEIVE` messages at a time, as many workers would, and
    ``threads`` job threads work through them, each message through the real job protocol:
    Azurite's receive finds and sorts every visible message of the queue (Azure's does not),
    so with 10,000 waiting a receive costs it ~100 ms whatever it returns, and receives of a
    few held a run to a few jobs a second. The receiver takes more only once fewer messages
    wait than there are job threads, so each is worked on well within its lease.

    Args:
        connection_string: The storage account.
        queue: The run's queue.
        threads: How many jobs are worked on at once.
    """

    connection_string: str
    queue: str
    threads: int = THREADS
    done: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)
    _inbox: Queue[Any] = field(default_factory=Queue)

    def start(self) -> FastWorkers:
        """Start the receiver and the job threads (each its own clients, never a shared test
        transport)."""
        loops: list[tuple[Callable[[str], None], str]] = [(self._receive, "fast-receiver")]
        loops += [(self._work, f"fast-{i}") for i in range(self.threads)]
        for target, name in loops:
            t = threading.Thread(target=target, args=(name,), name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        """Stop after the messages in hand (those taken but not started come back after
        their lease, as a stopped worker's do)."""
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def _storage(self) -> Storage:
        config = BlastClient(connection_string=self.connection_string, queue=self.queue).config
        transport = RequestsTransport(use_env_settings=False)  # loopback: no proxy to read
        return Storage(config, client_kwargs={"transport": transport}, retries=5)

    def _receive(self, name: str) -> None:
        """Take messages whenever fewer wait than there are job threads."""
        storage = self._storage()
        idle = IDLE_S[0]
        while not self._stop.is_set():
            if self._inbox.qsize() >= self.threads:
                self._stop.wait(0.02)
                continue
            try:
                messages = list(
                    storage.queue.receive_messages(
                        messages_per_page=RECEIVE, max_messages=RECEIVE, visibility_timeout=LEASE_S
                    )
                )
            except ResourceNotFoundError:  # the run ended and its queue was dropped
                break
            except Exception as exc:  # noqa: BLE001 - a dropped connection: receive again
                log.warning("fast worker %s: %s", name, str(exc).splitlines()[0])
                self._stop.wait(idle)
                continue
            if not messages:
                # Backed off while the queue is empty, as a real worker does: after the run
                # its polls would compete with the merge for Azurite.
                self._stop.wait(idle)
                idle = min(IDLE_S[1], 2 * idle)
                continue
            idle = IDLE_S[0]
            for msg in messages:
                self._inbox.put(msg)
        for _ in range(self.threads):
            self._inbox.put(None)  # the job threads end once the inbox is worked through

    def _work(self, worker: str) -> None:
        storage = self._storage()
        client = BlastClient(storage=storage)
        results_container = storage.container(client.config.results_container)
        while True:
            try:
                msg = self._inbox.get(timeout=0.5)
            except Empty:
                if self._stop.is_set():
                    return
                continue
            if msg is None or self._stop.is_set():
                return
            try:
                self._finish(client, storage, results_container, worker, msg)
            except Exception as exc:  # noqa: BLE001 - the message comes back; carry on
                # e.g. PopReceiptMismatch: the lease ran out on a loaded machine and another
                # worker took the message (it finds the row final and drops it).
                log.warning("fast worker %s: %s", worker, str(exc).splitlines()[0])
                continue
            with self._lock:
                self.done += 1

    def _finish(
        self, client: BlastClient, storage: Storage, results_container: Any, worker: str, msg: Any
    ) -> None:
        """The job protocol for one message: row read, running, results, finish, delete."""
        spec = parse_message(str(msg.content))
        found = client.joblog.read(spec.job_id)
        running = None
        if found is None or found[0].get("status") not in FINAL:
            running = client.joblog.update_unless_final(
                spec.job_id,
                found[1] if found is not None else None,
                status="running",
                started=time.time(),
                worker=worker,
                attempts=int(msg.dequeue_count or 1),
                run_id=spec.run_id,
            )
        if running is not None and running.done:
            fasta = spec.query.fasta
            if fasta is None:
                fasta = client.get_input(str(spec.query.blob)).decode()
            files = results(fasta, spec.db)
            links = {}
            archive = {11} if keeps_archive(spec.options.outfmt, spec.shard is not None) else set()
            for fmt in sorted({*archive, 6, *spec.options.outfmt}):
                name = result_blob(spec.job_id, fmt)
                results_container.upload_blob(name, files[fmt], overwrite=True)
                links[str(fmt)] = storage.blob_link(client.config.results_container, name)[0]
            hits = files[6].count(b"\n")
            client.joblog.finish_once(
                spec.job_id,
                running.etag,
                finished=time.time(),
                worker=worker,
                hits=hits,
                results=links,
            )
        storage.queue.delete_message(msg)


def _serve(connection_string: str, queue: str, threads: int, stop: Any) -> None:
    """One worker process: threads until ``stop`` is set."""
    workers = FastWorkers(connection_string, queue, threads).start()
    stop.wait()
    workers.stop()


@contextlib.contextmanager
def worker_processes(
    connection_string: str, queue: str, processes: int = 2, threads: int = THREADS
) -> Iterator[None]:
    """Fast workers in processes of their own (so the run's side keeps its CPU and its
    memory figure), stopped on leaving."""
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    procs = [
        ctx.Process(target=_serve, args=(connection_string, queue, threads, stop), daemon=True)
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    try:
        yield
    finally:
        stop.set()
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.kill()
