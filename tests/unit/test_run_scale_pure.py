"""The pure parts of runs at scale: the incremental job view, the streamed merge, the
batch transactions and a run's batches packed in few entities."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from blast_client import JobStatus
from blast_client import merge as blast_merge
from blast_client.joblog import FINAL, MAX_TRANSACTION, STATUSES, transactions
from blast_client.messages import FORMAT_FILES
from hypothesis import given, settings
from hypothesis import strategies as st

from deployer.run import decide, merge
from deployer.run.jobview import JobView, id_ranges
from deployer.run.state import Batch, Run
from deployer.run.store import BATCHES_PER_ENTITY_CHARS, pack_batches, unpack_batches
from testbed import fast_workers

# --- the incremental view against a full read ---------------------------------------------

SKEW = 5.0


@dataclass
class Table:
    """Job rows as the service holds them: each row's status and its Timestamp, which is the
    writing server's clock (true time plus that server's skew)."""

    now: float = 0.0
    rows: dict[str, tuple[str, float]] = field(default_factory=dict)

    def write(self, job_id: str, status: str, after: float, skew: float) -> None:
        """A write after ``after`` seconds; refused on a final row, as every write after a
        row exists is conditional on it not being final (``JobLog.update_unless_final``)."""
        self.now += after
        if self.rows.get(job_id, ("queued", 0.0))[0] not in FINAL:
            self.rows[job_id] = (status, self.now + skew)


# A write: which job, its new status, true seconds since the previous event (0: a tie), the
# skew of the server that stamps it.
writes = st.tuples(
    st.integers(0, 5),
    st.sampled_from(STATUSES),
    st.sampled_from([0.0, 0.0, 0.001, 0.5, 1.0, 3.0, 7.0, 20.0]),
    st.sampled_from([-SKEW, 0.0, SKEW]) | st.floats(-SKEW, SKEW),
)
# A read scans the rows in key order; after scanning row i, the writes listed at i happen
# (writes racing the scan), then it may take extra time of its own.
reads = st.tuples(
    st.lists(st.lists(writes, max_size=3), min_size=6, max_size=6),
    st.sampled_from([0.0, 0.01, 1.0, 4.0]),
)
histories = st.lists(st.tuples(st.lists(writes, max_size=8), reads), min_size=1, max_size=12)


def _run(ids: list[str]) -> Run:
    batches = tuple(Batch(i, job_id, 1) for i, job_id in enumerate(ids, start=1))
    return Run("r00000001", "scale", "running", 0.0, batches=batches)


# Each example draws a history of up to ~300 writes: 200 examples take seconds, where the
# ci profile's 2,000 would take a minute or more of CI's budget.
@settings(max_examples=200)
@given(histories, st.booleans())
def test_incremental_reads_reach_the_decisions_of_full_reads(
    history: list[tuple[list[tuple[int, str, float, float]], tuple[list[list[Any]], float]]],
    skip_queued: bool,
) -> None:
    """Also for the janitor's view, whose full reads leave the queued rows out."""
    ids = [f"20261206T040000-{i:08x}" for i in range(6)]
    run = _run(ids)
    table = Table()
    for job_id in ids:
        table.write(job_id, "queued", 0.0, 0.0)
    view = JobView.of(run, skew=SKEW, skip_queued=skip_queued)
    for between, (racing, extra) in history:
        for i, status, after, skew in between:
            table.write(ids[i], status, after, skew)
        since, start = view.since(), table.now
        # A later read scans from the first job still open (None: all final, no read).
        scanned = (ids[0], ids[-1]) if since is None else view.bounds()
        seen, full = [], {}
        for job_id, racers in zip(ids, racing, strict=True):
            status, stamp = table.rows[job_id]  # the row as the scan passes it
            full[job_id] = status
            # A full read (the janitor's without the queued rows), or the changed rows.
            full_read = since is None and not (skip_queued and status == "queued")
            in_range = scanned is not None and scanned[0] <= job_id <= scanned[1]
            if in_range and (full_read or (since is not None and stamp >= since)):
                seen.append((JobStatus(job_id, status), stamp))
            for i, new, after, skew in racers:
                table.write(ids[i], new, after, skew)
        table.now += extra
        if scanned is not None:
            view.absorb(seen, table.now - start)
        statuses = view.statuses()
        assert {j: statuses.get(j, "queued") for j in ids} == full  # unread counts as queued
        assert skip_queued or statuses == full
        now = table.now
        assert decide.decide(run, statuses, [], now) == decide.decide(run, full, [], now)


def test_a_margin_below_the_skew_misses_a_change() -> None:
    """The check above can fail: without the skew margin, a row stamped by a slow clock after
    a fast one's newer stamp is never read again."""
    ids = ["20261206T040000-00000000", "20261206T040000-00000001"]
    view = JobView.of(_run(ids), skew=0.0)
    view.absorb([(JobStatus(ids[0], "queued"), 100.0), (JobStatus(ids[1], "running"), 104.0)], 0)
    stamp = 101.0  # written after the read, by a server 4 s behind
    since = view.since()
    assert since is not None and stamp < since  # so the next read leaves it out
    view.absorb([], 0.0)
    assert view.statuses()[ids[0]] == "queued"  # while the row says succeeded


# --- the streamed merge is the merge -------------------------------------------------------

_reports = st.lists(
    st.dictionaries(st.sampled_from(["report", "x", "é"]), st.integers() | st.text(max_size=5)),
    max_size=3,
)
_fmt6 = st.binary(max_size=30)
_fmt7 = st.builds(
    lambda rows, n, cut: (
        b"".join(f"# Query: q{r}\nq{r}\ts\t99\n".encode() for r in rows)
        + f"# BLAST processed {n} {'query' if n == 1 else 'queries'}\n".encode()
    )[: len(rows) * 20 if cut else None],
    st.lists(st.integers(0, 99), max_size=3),
    st.integers(0, 5),
    st.booleans(),
)
_fmt15 = st.one_of(
    _reports.map(lambda r: json.dumps({"BlastOutput2": r}, indent=1).encode()),
    _reports.map(lambda r: json.dumps({"BlastOutput2": r[0] if r else {}}).encode()),
    st.just(b"not json"),
)


@settings(max_examples=500)  # about a second a hundred: the ci profile's 2,000 cost 40 s
@given(st.data())
def test_streamed_merge_is_byte_identical_to_the_merge(data: st.DataObject) -> None:
    fmt = data.draw(st.sampled_from([6, 7, 15]))
    parts = data.draw(st.lists({6: _fmt6, 7: _fmt7, 15: _fmt15}[fmt], max_size=6))
    sink = io.BytesIO()
    streamed = merge.Streamed(fmt, sink)
    for part in parts:
        streamed.add(part)
    streamed.finish()
    whole = blast_merge.merge(fmt, parts)
    assert tuple(streamed.bad) == whole.bad
    if not whole.bad:
        assert sink.getvalue() == whole.data


def test_a_batch_searched_whole_downloads_its_7_for_6_and_7_and_a_batch_of_shards_each() -> None:
    assert merge.fetched((6, 7, 15), sharded=False) == (7, 15)
    assert merge.fetched((7, 6), sharded=False) == (7,)
    assert merge.fetched((6, 15), sharded=False) == (6, 15)
    assert merge.fetched((6,), sharded=False) == (6,)
    assert merge.fetched((6, 7, 15), sharded=True) == (11, 6, 7, 15)


NO_HITS = (
    b"# BLASTN 2.16.0+\n# Query: q3\n# Database: demo\n# 0 hits found\n# BLAST processed 1 query\n"
)


def test_write_run_takes_6_from_7_byte_identical_to_the_merge_of_the_stored_6(
    tmp_path: Any,
) -> None:
    """What a worker stores for each format (6 written on its own), merged: 6 is never
    downloaded, and each file and its digest is the merge of the stored parts."""
    stored = {
        (f"j{i}", fmt): part
        for i in (1, 2, 4)
        for fmt, part in fast_workers.results(f">q{i} x\nACGTACGT\n", "demo").items()
    }
    stored |= {("j3", 6): b"", ("j3", 7): NO_HITS, ("j3", 15): b'{"BlastOutput2": []}'}
    batches = [Batch(i, f"j{i}", 1) for i in (1, 2, 3, 4)]
    asked: list[tuple[str, int]] = []

    def fetch(job: str, fmt: int) -> bytes:
        asked.append((job, fmt))
        return stored[(job, fmt)]

    written = merge.write_run(tmp_path, batches, [6, 7, 15], fetch, threads=2)
    assert sorted(asked) == sorted((b.job_id, fmt) for b in batches for fmt in (7, 15))
    for fmt in (6, 7, 15):
        data = (tmp_path / FORMAT_FILES[fmt]).read_bytes()
        assert data == merge.merge(fmt, [stored[(b.job_id, fmt)] for b in batches])
        assert written.files[FORMAT_FILES[fmt]] == merge.Digest(merge.sha256(data), len(data))
    assert (tmp_path / FORMAT_FILES[6]).read_bytes().count(b"\n") == 3


def test_write_run_names_a_truncated_7_once_when_6_is_taken_from_it(tmp_path: Any) -> None:
    stored = {("j1", 7): b"# Query: q1\nq1\ts\n", ("j1", 6): b"q1\ts\n"}
    with pytest.raises(
        merge.MergeError, match=r"^batch 1: outfmt 7 result has no '# BLAST processed' line$"
    ):
        merge.write_run(tmp_path, [Batch(1, "j1", 1)], [6, 7], lambda job, fmt: stored[(job, fmt)])
    assert not list(tmp_path.glob("results*"))


def test_write_run_writes_nothing_merged_when_a_batch_is_bad(tmp_path: Any) -> None:
    good = b"# Query: q1\n# BLAST processed 1 query\n"
    batches = [Batch(1, "j1", 1), Batch(2, "j2", 1)]
    parts = {("j1", 7): good, ("j2", 7): b"truncated"}  # batches searched whole: no archive
    try:
        merge.write_run(tmp_path, batches, [7], lambda job, fmt: parts[(job, fmt)])
    except merge.MergeError as exc:
        assert "batch 2" in str(exc)
    else:
        raise AssertionError("a truncated part was merged")
    assert not list(tmp_path.glob("results*"))


# --- batch transactions ---------------------------------------------------------------------


@settings(max_examples=300)  # lists of hundreds: the ci profile's 2,000 cost 15 s
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 10**6)), max_size=450))
def test_transactions_hold_one_partition_and_at_most_100(keys: list[tuple[str, int]]) -> None:
    entities = [{"PartitionKey": p, "RowKey": f"{i:07d}-{n}"} for n, (p, i) in enumerate(keys)]
    chunks = transactions(entities)
    assert all(0 < len(c) <= MAX_TRANSACTION for c in chunks)
    assert all(len({e["PartitionKey"] for e in c}) == 1 for c in chunks)
    flat = [e for c in chunks for e in c]
    assert sorted(map(id, flat)) == sorted(map(id, entities))
    for p in "abc":  # order kept within a partition
        assert [e for e in flat if e["PartitionKey"] == p] == [
            e for e in entities if e["PartitionKey"] == p
        ]


# --- a run's batches packed in few entities ------------------------------------------------

job_ids = st.text("0123456789abcdef", min_size=8, max_size=8).map(lambda h: f"20261206T1430-{h}")


@settings(max_examples=30)  # lists of hundreds of lines of up to 1 KB: several entities each
@given(
    st.lists(
        st.tuples(job_ids, st.integers(1, 10**4), st.lists(job_ids, max_size=40)), max_size=400
    )
)
def test_packed_batches_read_back_in_order_and_each_entity_fits(
    specs: list[tuple[str, int, list[str]]],
) -> None:
    batches = tuple(
        Batch(i, job, queries, (job, *shards) if shards else ())
        for i, (job, queries, shards) in enumerate(specs, start=1)
    )
    entities = pack_batches(batches)
    assert unpack_batches(reversed(entities)) == batches  # a query's order is not relied on
    assert all(len(e["batches"]) <= BATCHES_PER_ENTITY_CHARS for e in entities)
    assert [e["RowKey"] for e in entities] == [f"c{i:05d}" for i in range(len(entities))]
    # Packed full: 10,000 one-job batches are a page of entities, not 10 pages.
    assert len(pack_batches(Batch(i, "20261206T143000-0123abcd", 1) for i in range(10_000))) < 40


def test_batches_stored_one_entity_each_are_read_too() -> None:
    old = [
        {"RowKey": "00002", "job_id": "j2", "queries": 3, "shards": "j2,j3"},
        {"RowKey": "00001", "job_id": "j1", "queries": 1},
    ]
    assert unpack_batches(old) == (Batch(1, "j1", 1), Batch(2, "j2", 3, ("j2", "j3")))


@given(st.lists(job_ids, unique=True, max_size=2500), st.integers(1, 1000))
def test_a_full_read_s_ranges_cover_every_id_once(ids: list[str], size: int) -> None:
    ids.sort()
    ranges = id_ranges(ids, size)
    covered = [[i for i in ids if lo <= i <= hi] for lo, hi in ranges]
    assert [i for part in covered for i in part] == ids
    assert all(0 < len(part) <= size for part in covered)
