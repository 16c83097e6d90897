"""The run's tuner (pure): threads per worker and batch length from the database size, the
queries and the cores; what the workload file or ``--batch-len`` gives wins."""

from __future__ import annotations

from pathlib import Path

from blast_client.fasta import DEFAULT_BATCH_LEN, Record, batch_records
from hypothesis import given, settings
from hypothesis import strategies as st

from deployer import defaults, sizing
from deployer.plan.tuning import (
    LENGTH_WHATEVER_THE_THREADS,
    Queries,
    choose_threads,
    max_threads,
    query_stats,
    tune,
    tune_run,
)
from deployer.workload import load

MB = 1_000_000
ORCHID = Queries(count=1920, letters=1920 * 700, longest=900)
"""About the issue's search: 1,920 queries of ~700 bases."""


def _records(lengths: list[int]) -> list[Record]:
    return [Record(f"q{i}", "A" * n, f">q{i}\n{'A' * n}\n") for i, n in enumerate(lengths)]


def _stats(lengths: list[int]) -> Queries:
    return Queries(len(lengths), sum(lengths), max(lengths, default=0))


def test_a_large_database_gets_fewer_workers_with_more_threads() -> None:
    t = tune("blastn", 8 * MB, ORCHID, cores=2, max_threads=4)
    assert (t.workers, t.threads) == (1, 2)
    assert t.batches == 1, "one worker: one round of one batch, one scan of the database"
    assert t.batch_len >= ORCHID.letters
    assert "2 threads share each scan of the 8.0 MB database" in t.why
    t4 = tune("blastn", 8 * MB, ORCHID, cores=8, max_threads=4)
    assert (t4.workers, t4.threads, t4.batches) == (2, 4, 2)


def test_a_small_database_keeps_single_thread_workers() -> None:
    t = tune("blastn", MB // 4, ORCHID, cores=2, max_threads=4)
    assert (t.workers, t.threads, t.batches) == (2, 1, 2)
    assert "too small to share out among threads (under 1.0 MB each)" in t.why
    unknown = tune("blastn", 0, ORCHID, cores=2, max_threads=4)
    assert unknown.threads == 1 and "the database's size is unknown" in unknown.why


def test_threads_leave_each_thread_enough_database_and_use_every_core() -> None:
    assert choose_threads(4, 4, 2 * MB) == 2  # 1 MB per thread at most 2 threads
    assert choose_threads(6, 4, 100 * MB) == 3  # 4 does not divide 6: 2 workers of 3
    assert choose_threads(5, 4, 100 * MB) == 1  # 5 single-thread workers use all 5 cores
    assert choose_threads(2, 4, 0) == 1  # unknown size: nothing to share


def test_long_query_sets_are_cut_into_whole_rounds_of_elasticblast_length() -> None:
    # 25 Mbp of queries, 2 workers of 2 threads: ElasticBLAST's 5 Mbp per blastn batch means
    # 5 batches, rounded up to 3 rounds of 2 workers.
    queries = Queries(25_000, 25_000_000, 1000)
    t = tune("blastn", 100 * MB, queries, cores=4, max_threads=2)
    assert (t.workers, t.threads, t.batches) == (2, 2, 6)
    assert t.batch_len == 4_166_667 + 999
    assert "3 rounds of 2 workers" in t.why


def test_threads_do_not_lengthen_a_blastn_batch_but_do_the_others() -> None:
    # The bench's search: 9.8 Mbp on 2 cores is two blastn batches for one worker of 2
    # threads (one batch of 9.8 Mbp searched 25% slower than the two).
    bench = Queries(14_000, 9_800_000, 700)
    t = tune("blastn", 8 * MB, bench, cores=2, max_threads=4)
    assert (t.workers, t.threads, t.batches) == (1, 2, 2)
    assert "whatever the threads" in t.why
    for program in sorted(set(DEFAULT_BATCH_LEN) - LENGTH_WHATEVER_THE_THREADS):
        letters = DEFAULT_BATCH_LEN[program] * 2
        other = tune(program, 8 * MB, Queries(100, letters, 1), cores=2, max_threads=4)
        assert (other.threads, other.batches) == (2, 1), program


def test_protein_programs_use_their_own_length() -> None:
    queries = Queries(1000, 300_000, 400)
    t = tune("blastp", 300 * MB, queries, cores=4, max_threads=4)
    assert (t.workers, t.threads) == (1, 4)
    assert t.batches == -(-300_000 // (DEFAULT_BATCH_LEN["blastp"] * 4))  # 8 batches


def test_explicit_values_win() -> None:
    t = tune("blastn", 100 * MB, ORCHID, cores=4, max_threads=4, threads=1, batch_len=300)
    assert (t.workers, t.threads, t.batch_len) == (4, 1, 300)
    assert "threads_per_worker 1 in the workload file" in t.why
    assert "--batch-len 300 given" in t.why


def test_a_sharded_database_shares_threads_per_shard_and_counts_jobs() -> None:
    # 4 shards of 1.5 MB: one thread each; 2 single-thread workers, 1 batch = 4 jobs, 2 rounds.
    t = tune("blastn", 6 * MB, ORCHID, cores=2, max_threads=4, shards=4)
    assert (t.workers, t.threads, t.batches) == (2, 1, 1)
    assert "in 4 shards" in t.why


def test_each_shard_gets_a_worker_of_its_own_before_workers_get_more_threads() -> None:
    # Unsharded, 2 cores share one 30 MB scan; in 2 shards a worker serves one shard, so
    # 2 threads each would need 4 cores: 2 single-thread workers, one per shard.
    whole = tune("blastn", 30 * MB, ORCHID, cores=2, max_threads=4)
    assert (whole.workers, whole.threads) == (1, 2)
    t = tune("blastn", 30 * MB, ORCHID, cores=2, max_threads=4, shards=2)
    assert (t.workers, t.threads) == (2, 1)
    assert "2 cores give each of the 2 shards a worker of its own" in t.why
    # With cores to spare, shards do not cut the threads.
    wide = tune("blastn", 300 * MB, ORCHID, cores=8, max_threads=4, shards=2)
    assert (wide.workers, wide.threads) == (2, 4) and "a worker of its own" not in wide.why


def test_the_line_says_what_and_why() -> None:
    line = tune("blastn", 8 * MB, ORCHID, cores=2, max_threads=4).describe()
    assert line.startswith("Run tuning (blastn, 2 cores): 1 worker x 2 threads, 1 batch of at")
    assert "\n" not in line


def test_max_threads_follows_the_group() -> None:
    assert max_threads(sizing.ACI) == defaults.MAX_BLAST_THREADS == 4
    assert max_threads(sizing.Limits(max_cpu=20)) == 2
    assert max_threads(sizing.large_limits(31, 240)) == 4  # the schema's bound


def test_query_stats() -> None:
    assert query_stats(">a\nACGT\nAC\n>b\nA\n") == Queries(2, 7, 6)
    assert query_stats("") == Queries(0, 0, 0)


@settings(max_examples=300, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 5000), min_size=1, max_size=300),
    cores=st.integers(1, 16),
    cap=st.integers(1, 4),
    db=st.integers(0, 50 * MB),
    program=st.sampled_from(sorted(DEFAULT_BATCH_LEN)),
)
def test_property_cores_rounds_and_no_spill_batch(
    lengths: list[int], cores: int, cap: int, db: int, program: str
) -> None:
    """Every core is used, no worker exceeds its group, and cutting the queries at the tuned
    length never makes more batches than the tuner aimed at (no small, extra batch)."""
    t = tune(program, db, _stats(lengths), cores, cap)
    assert t.workers * t.threads == cores
    assert 1 <= t.threads <= cap
    assert 1 <= t.batches <= len(lengths)
    cut = batch_records(_records(lengths), t.batch_len)
    assert len(cut) <= t.batches
    # Whole rounds: with queries enough, each worker gets as many batches as the others.
    if len(cut) == t.batches and t.batches >= t.workers:
        assert t.batches % t.workers == 0


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 400),
    size=st.integers(1, 3000),
    cores=st.integers(1, 8),
    db=st.integers(0, 20 * MB),
)
def test_property_even_queries_fill_every_worker(n: int, size: int, cores: int, db: int) -> None:
    """Queries of one length are cut into exactly the batches aimed at whenever there are
    many more queries than batches."""
    t = tune("blastn", db, _stats([size] * n), cores, 4)
    cut = batch_records(_records([size] * n), t.batch_len)
    if n >= t.batches * t.batches:
        assert len(cut) == t.batches


WORKLOAD = """\
deployment: {{name: tune, location: westeurope}}
workloads:
  blast:
    workers: {workers}
{threads}    databases:
      - {{name: big, bytes_to_cache: {size}}}
"""


def _workload(tmp_path: Path, workers: int, size: int, threads: str = "") -> Path:
    path = tmp_path / "w.yaml"
    path.write_text(WORKLOAD.format(workers=workers, threads=threads, size=size))
    return path


def test_tune_run_shares_the_workloads_cores(tmp_path: Path) -> None:
    # workers: 2 at the default 2 threads: 4 cores, one worker of 4 threads.
    workload = load(_workload(tmp_path, 2, 30 * MB))
    fasta = "".join(f">q{i}\n{'ACGT' * 100}\n" for i in range(50))
    tuned, t = tune_run(workload, fasta, "blastn", "big")
    blast = tuned.workloads.blast
    assert blast is not None
    assert (blast.workers, blast.threads_per_worker) == (1, 4) == (t.workers, t.threads)
    assert t.cores == 4 and t.batches == 1


def test_tune_run_keeps_threads_written_in_the_file(tmp_path: Path) -> None:
    workload = load(_workload(tmp_path, 2, 30 * MB, "    threads_per_worker: 1\n"))
    fasta = "".join(f">q{i}\n{'ACGT' * 100}\n" for i in range(50))
    tuned, t = tune_run(workload, fasta, "blastn", "big", batch_len=400)
    blast = tuned.workloads.blast
    assert blast is not None
    assert (blast.workers, blast.threads_per_worker) == (2, 1)
    assert t.batches == 50 and t.batch_len == 400


def test_tune_run_leaves_an_autoscaled_run_alone(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(
        "deployment: {name: tune, location: westeurope}\n"
        "workloads:\n  blast:\n    autoscale: {max_workers: 3}\n"
        "    databases: [{name: big, bytes_to_cache: 30000000}]\n"
    )
    fasta = "".join(f">q{i}\n{'ACGT' * 100}\n" for i in range(50))
    tuned, t = tune_run(load(path), fasta, "blastn", "big")
    assert tuned.workloads.blast == load(path).workloads.blast
    assert (t.workers, t.threads, t.batch_len) == (3, 2, DEFAULT_BATCH_LEN["blastn"])
    assert "autoscaled" in t.why
