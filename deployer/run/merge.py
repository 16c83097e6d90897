"""A run's merged results and its manifest.

The merge of each format is :mod:`blast_client.merge`'s, which the web page uses too; a run
merges every derived format it asked for (``blast_client.messages.OUTPUT_FORMATS``) into a
file named as each job's (``FORMAT_FILES``). A run never writes a merged file that silently
misses a batch: :func:`merge` and :func:`write_run` raise :class:`MergeError` naming every
batch whose result could not be merged.

:func:`write_run` streams: it downloads the batches :data:`MERGE_THREADS` at a time, in
order, and appends each to the output files as it comes (:class:`Streamed`), so a run's
results are never all in memory; its files are byte-identical to :func:`merge`'s of the
results the workers stored. A batch searched whole is read once per format it needs
(:func:`fetched`): its outfmt 6 is taken from its 7 when the run asks for both (:data:`DERIVED`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from blast_client import merge as results
from blast_client import shardmerge
from blast_client.messages import FORMAT_EXTENSIONS, FORMAT_FILES

from deployer.run.state import Batch, Run, batch_state

MERGE_THREADS = 16
"""Batches downloaded at once (and at most twice as many held) while merging."""


DERIVED: dict[int, tuple[int, Callable[[bytes], bytes]]] = {
    6: (7, results.tabular_of_commented),
}
"""The formats a batch searched whole takes from another of its results when the run asks for
both, each with that format and how: 6 is 7 without its comment lines, byte for byte
(:func:`blast_client.merge.tabular_lines`). A run names formats only, never columns
(``blast_client.messages.parse_options``), so its 6 and 7 have BLAST's same default columns,
and the worker writes both from one search: 6 as those lines of 7 (a tabular-only job) or
with ``blast_formatter`` from the archive it formats 7 from (a job that asks for 15:
``tests/integration/blast/test_shard_equality.py`` checks the two agree for blastn, megablast
and blastp, and ``tests/integration/run/test_deployer_run.py``'s 6,7,15 run that its merged 6
is one direct blastn's). A third of a
6,7,15 run's downloads, the merge's main cost at scale. A batch of shards reads each format:
its merge (:mod:`blast_client.shardmerge`) cuts and orders each by its archives."""


def fetched(fmts: Sequence[int], sharded: bool) -> tuple[int, ...]:
    """The formats a batch's merge downloads of each of its jobs (pure): a batch of shards
    its archives (11), which its merge reads, and each of ``fmts``; a batch searched whole
    each of ``fmts`` but those :data:`DERIVED` from another it downloads.

    Args:
        fmts (Sequence[int]): The run's merged formats.
        sharded (bool): Whether the batch is searched in shards.
    """
    if sharded:
        return (11, *fmts)
    return tuple(f for f in fmts if not (f in DERIVED and DERIVED[f][0] in fmts))


class MergeError(ValueError):
    """A batch's result is not what the worker writes; the message names each such batch."""


@dataclass(frozen=True)
class ShardStats:
    """What merging outfmt 15 of a batch of shards needs (:mod:`deployer.run.shardstats`).

    Attributes:
        first_oids: Each shard's first ordinal id in the whole database, in shard order.
        totals: The whole database's (sequences, letters).
    """

    first_oids: tuple[int, ...]
    totals: tuple[int, int]


def merge(fmt: int, parts: Sequence[bytes]) -> bytes:
    """Merge the parts of one format (6, 7 or 15), refusing to leave a batch out.

    Args:
        fmt (int): The output format.
        parts (Sequence[bytes]): One result per succeeded batch, in batch order.

    Raises:
        MergeError: When a part cannot be merged.
    """
    merged = results.merge(fmt, parts)
    if merged.bad:
        raise MergeError("; ".join(str(b) for b in merged.bad))
    return merged.data


def batch_part(
    fmt: int,
    archives: shardmerge.Archives,
    parts: Sequence[bytes],
    stats: ShardStats | None = None,
    max_target_seqs: int | None = None,
) -> bytes:
    """One batch's result in format ``fmt``: its job's, or its shards' merged into one
    search of the whole database (:mod:`blast_client.shardmerge`), cut to the run's
    ``max_target_seqs`` (None: BLAST's 500), which each shard was asked for too.

    Args:
        fmt (int): 6, 7 or 15.
        archives (shardmerge.Archives): Each job's archive (11), in shard order, or as
            parsed.
        parts (Sequence[bytes]): Each job's result in ``fmt``, in shard order.
        stats (ShardStats | None): The database's numbers, which 15 of shards needs.
        max_target_seqs (int | None): The run's ``-max_target_seqs``.

    Raises:
        MergeError: When the shards' results cannot be merged.
    """
    if len(parts) == 1:
        return parts[0]
    try:
        if fmt == 6:
            return shardmerge.merge_tabular(archives, parts, max_target_seqs)
        if fmt == 7:
            return shardmerge.merge_commented(archives, parts, max_target_seqs)
        if fmt == 15 and stats is not None:
            if len(stats.first_oids) != len(parts):
                raise MergeError(
                    f"{len(parts)} shards but the database's first ids are of "
                    f"{len(stats.first_oids)}"
                )
            return shardmerge.merge_json(
                archives, parts, max_target_seqs, stats.first_oids, stats.totals
            )
    except ValueError as exc:
        raise MergeError(str(exc)) from None
    if fmt == 15:
        raise MergeError("outfmt 15 of a batch of shards needs the database's first ids and totals")
    raise MergeError(f"outfmt {fmt} of a batch of shards is not merged")


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def batch_file(index: int, job_id: str, fmt: int) -> str:
    """Path of a kept per-batch file under the output directory (the archives, 11)."""
    return f"batches/{index:05d}-{job_id}.{FORMAT_EXTENSIONS[fmt]}"


@dataclass(frozen=True)
class Digest:
    """A written file's sha256 (hex) and size."""

    sha256: str
    bytes: int


def manifest(
    run: Run, files: Mapping[str, bytes | Digest], job_states: Mapping[str, str]
) -> dict[str, Any]:
    """The run's ``manifest.json``: batches, job ids, sha256 of every file, parameters. A batch
    of shards names each shard's archive, which the merge read (a batch searched whole keeps none:
    its jobs write their tabular output without one, ``blast_client.messages.keeps_archive``).

    Args:
        run (Run): The run record.
        files (Mapping[str, bytes | Digest]): Every written file (its content or its digest)
            by its path under the output directory.
        job_states (Mapping[str, str]): Final state of each job id; a job without a row
            never started (a run's jobs are queued without one), so it is ``queued``.
    """
    digests = {
        path: f if isinstance(f, Digest) else Digest(sha256(f), len(f)) for path, f in files.items()
    }
    return {
        "run_id": run.run_id,
        "deployment": run.deployment,
        "status": run.status,
        "created": run.created,
        "finished": run.finished,
        "parameters": run.params,
        "queries": run.queries,
        "batches": [
            {
                "index": b.index,
                "job_id": b.job_id,
                "queries": b.queries,
                "state": job_states.get(b.job_id, "queued"),
                **(
                    {
                        "archive": batch_file(b.index, b.job_id, 11),
                        "shards": [
                            {
                                "shard": i,
                                "job_id": job,
                                "state": job_states.get(job, "queued"),
                                "archive": batch_file(b.index, job, 11),
                            }
                            for i, job in enumerate(b.shards, start=1)
                        ],
                        "state": batch_state(b, job_states),
                    }
                    if b.shards
                    else {}
                ),
            }
            for b in run.batches
        ],
        "files": {
            path: {"sha256": d.sha256, "bytes": d.bytes} for path, d in sorted(digests.items())
        },
    }


class _Sink:
    """A file being written, hashed as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[bytes] = path.open("wb")
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.hash.update(data)
        self.size += len(data)

    def close(self) -> Digest:
        self.file.close()
        return Digest(self.hash.hexdigest(), self.size)


class Streamed:
    """One format merged part by part into a file, byte-identical to :func:`merge`.

    Args:
        fmt (int): 6, 7 or 15.
        sink (IO[bytes]): Where the merged bytes go.
    """

    def __init__(self, fmt: int, sink: Any) -> None:
        if fmt not in results.MERGERS:
            raise KeyError(fmt)
        self.fmt = fmt
        self.sink = sink
        self.bad: list[results.BadPart] = []
        self.parts = 0
        self.total = 0  # queries (7) or reports (15) so far
        if fmt == 15:
            sink.write(b'{\n  "BlastOutput2": [')

    def add(self, part: bytes) -> None:
        """Append the next batch's part (a bad one is recorded, not written)."""
        self.parts += 1
        if self.fmt == 6:
            self.sink.write(part)
        elif self.fmt == 7:
            split = results.split_commented(part)
            if split is None:
                self.bad.append(results.BadPart(self.parts, results.NO_PROCESSED_LINE))
                return
            self.sink.write(split[0])
            self.total += split[1]
        else:
            try:
                reports = results.json_reports(part)
            except ValueError as exc:
                self.bad.append(results.BadPart(self.parts, str(exc)))
                return
            for report in reports:
                # json.dumps of the whole document nests each report two levels deep
                text = json.dumps(report, indent=2).replace("\n", "\n    ")
                self.sink.write((("," if self.total else "") + "\n    " + text).encode())
                self.total += 1

    def reject(self, reason: str) -> None:
        """Count the next batch's part as bad without writing it (its shards did not merge)."""
        self.parts += 1
        self.bad.append(results.BadPart(self.parts, reason))

    def finish(self) -> None:
        """Write the end of the file."""
        if self.fmt == 7:
            noun = "query" if self.total == 1 else "queries"
            self.sink.write(f"# BLAST processed {self.total} {noun}\n".encode())
        elif self.fmt == 15:
            self.sink.write(b"\n  ]\n}\n" if self.total else b"]\n}\n")


@dataclass(frozen=True)
class Written:
    """What :func:`write_run` wrote.

    Attributes:
        files: The digest of every file written, by its path under the output directory.
        hits: Each batch of shards' hits after the merge's cut to ``max_target_seqs``, by
            its batch job id (:func:`blast_client.shardmerge.merged_hsps`): its shards' own
            counts add up to more.
    """

    files: dict[str, Digest]
    hits: dict[str, int]


def write_run(
    out: Path,
    batches: Sequence[Batch],
    fmts: Sequence[int],
    fetch: Callable[[str, int], bytes],
    threads: int = MERGE_THREADS,
    stats: ShardStats | None = None,
    max_target_seqs: int | None = None,
) -> Written:
    """Write a run's results under ``out``: each format in ``fmts`` merged into its file,
    downloading ``threads`` batches at a time, each the formats :func:`fetched` names. A batch
    of shards is first merged into one search of the whole database from its shards' archives
    (:func:`batch_part`), which are kept under ``batches/``; a batch searched whole has no
    archive to read.

    Args:
        out (Path): The output directory (created).
        batches (Sequence[Batch]): The succeeded batches, in batch order.
        fmts (Sequence[int]): The merged formats (6, 7, 15).
        fetch (Callable[[str, int], bytes]): One result file of a job (by its id).
        threads (int): Batches downloaded at once.
        stats (ShardStats | None): The database's numbers, which outfmt 15 of shards needs.
        max_target_seqs (int | None): The run's ``-max_target_seqs``, which the merge of a
            batch's shards cuts to (None: BLAST's 500).

    Returns:
        Every file written, and each batch of shards' merged hits.

    Raises:
        MergeError: naming every batch whose result could not be merged; no merged file is
            left then (nor after any other error).
    """
    (out / "batches").mkdir(parents=True, exist_ok=True)
    sinks = {fmt: _Sink(out / f"{FORMAT_FILES[fmt]}.part") for fmt in fmts}
    merged = {fmt: Streamed(fmt, sinks[fmt]) for fmt in fmts}
    files: dict[str, Digest] = {}
    hits: dict[str, int] = {}

    def download(batch: Batch) -> _Downloaded:
        # Only the merge of shards reads archives (a batch searched whole may have none).
        parts = {
            fmt: [fetch(job, fmt) for job in batch.jobs]
            for fmt in fetched(fmts, bool(batch.shards))
        }
        for fmt in fmts:
            if fmt not in parts:
                source, derive = DERIVED[fmt]
                parts[fmt] = [derive(part) for part in parts[source]]
        # Each archive is a file of its own: written here, beside the other downloads.
        kept = {}
        for job, archive in zip(batch.jobs, parts.get(11, []), strict=False):
            path = batch_file(batch.index, job, 11)
            (out / path).write_bytes(archive)
            kept[path] = Digest(sha256(archive), len(archive))
        archives: shardmerge.Archives = parts.get(11, [])
        if batch.shards:
            # Parsed here, while the next batches download, and once for the count and every
            # format: most of a sharded merge's time. One that does not parse stays bytes, and
            # fails each format's merge, which names the batch.
            with contextlib.suppress(ValueError):
                archives = [shardmerge.parse_archive(a) for a in parts.get(11, [])]
        return parts, kept, archives

    try:
        with ThreadPoolExecutor(threads) as pool:
            for batch, (parts, kept, archives) in zip(
                batches, _in_order(pool, download, batches, 2 * threads), strict=False
            ):
                files.update(kept)
                if batch.shards:
                    with contextlib.suppress(ValueError):  # the merges below name the batch
                        hits[batch.job_id] = shardmerge.merged_hsps(archives, max_target_seqs)
                for fmt in fmts:
                    try:
                        part = batch_part(fmt, archives, parts[fmt], stats, max_target_seqs)
                    except MergeError as exc:
                        merged[fmt].reject(str(exc))
                    else:
                        merged[fmt].add(part)
        for m in merged.values():
            m.finish()
        bad = [str(b) for m in merged.values() for b in m.bad]
        if bad:
            raise MergeError("; ".join(bad))
    except BaseException:
        for sink in sinks.values():
            sink.close()
            sink.path.unlink(missing_ok=True)
        raise
    for fmt, sink in sinks.items():
        files[FORMAT_FILES[fmt]] = sink.close()
        os.replace(sink.path, out / FORMAT_FILES[fmt])
    return Written(files, hits)


_Downloaded = tuple[dict[int, list[bytes]], dict[str, Digest], shardmerge.Archives]
"""A batch's parts by format (each job's, in shard order), its archives as written, and its
archives for the merge (parsed, if they parse, when the batch is of shards)."""


def _in_order(
    pool: ThreadPoolExecutor,
    fn: Callable[[Batch], _Downloaded],
    items: Iterable[Batch],
    window: int,
) -> Iterable[_Downloaded]:
    """``fn`` of each item, in order, with at most ``window`` in flight or waiting."""
    pending: deque[Future[_Downloaded]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
