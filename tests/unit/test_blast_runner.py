"""Argument building for BLAST and blast_formatter, and subprocess handling."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from blast_client.messages import JobSpec, Options, Query, ShardRef, parse_options
from blast_client.shards import DEFAULT_MAX_TARGET_SEQS
from blast_worker.runner import (
    BlastError,
    Prestarted,
    blast_argv,
    count_hits,
    formatter_argv,
    run,
    tabular_from_commented,
)
from blast_worker.worker import search_options


def test_blast_argv_is_a_fixed_list() -> None:
    opts = parse_options(
        {"evalue": 1e-5, "max_target_seqs": 10, "word_size": 11, "task": "megablast"}, "blastn"
    )
    argv = blast_argv("blastn", Path("/c/demo/demo"), Path("/w/q.fa"), Path("/w/r.asn1"), opts, 2)
    assert argv == [
        "blastn",
        "-db",
        "/c/demo/demo",
        "-query",
        "/w/q.fa",
        "-out",
        "/w/r.asn1",
        "-outfmt",
        "11",
        "-num_threads",
        "2",
        "-task",
        "megablast",
        "-evalue",
        "1e-05",
        "-word_size",
        "11",
        "-max_target_seqs",
        "10",
    ]


def test_a_job_without_an_archive_searches_straight_to_commented_tabular() -> None:
    argv = blast_argv("blastp", Path("d"), Path("q"), Path("o.txt"), Options(), 1, outfmt=7)
    assert argv[:9] == ["blastp", "-db", "d", "-query", "q", "-out", "o.txt", "-outfmt", "7"]


def test_tabular_is_commented_tabular_without_its_comment_lines(tmp_path: Path) -> None:
    commented = tmp_path / "r.7.txt"
    commented.write_bytes(
        b"# BLASTN 2.12.0+\n# Query: q1\n# 2 hits found\nq1\ts1\t100.000\nq1\ts2\t99.5\n"
        b"# BLASTN 2.12.0+\n# Query: q2\n# 0 hits found\n# BLAST processed 2 queries\n"
    )
    tabular = tmp_path / "r.6.tsv"
    assert tabular_from_commented(commented, tabular) == 2
    assert tabular.read_bytes() == b"q1\ts1\t100.000\nq1\ts2\t99.5\n"
    commented.write_bytes(b"# BLAST processed 1 query\n")
    assert tabular_from_commented(commented, tabular) == 0 and tabular.read_bytes() == b""


def test_default_options_add_nothing() -> None:
    argv = blast_argv("tblastx", Path("d"), Path("q"), Path("o"), Options(), 1)
    assert argv[-2:] == ["-num_threads", "1"]


def test_formatter_argv_reads_the_archive_on_stdin() -> None:
    assert formatter_argv(15, Options(max_target_seqs=3)) == [
        "blast_formatter",
        "-archive",
        "-",
        "-outfmt",
        "15",
        "-max_target_seqs",
        "3",
    ]


def test_run_keeps_stderr_on_failure(tmp_path: Path) -> None:
    script = (
        "import sys; sys.stderr.write('BLAST Database error: No alias or index file'); sys.exit(2)"
    )
    with pytest.raises(BlastError, match="exited with 2: BLAST Database error"):
        run([sys.executable, "-c", script], tmp_path, timeout=30)
    assert list(tmp_path.iterdir()) == []


def test_run_times_out_and_kills(tmp_path: Path) -> None:
    with pytest.raises(BlastError, match="timed out"):
        run([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path, timeout=0.5)


def test_run_ticks_and_aborts(tmp_path: Path) -> None:
    ticks: list[int] = []
    with pytest.raises(BlastError, match="aborted"):
        run(
            [sys.executable, "-c", "import time; time.sleep(30)"],
            tmp_path,
            timeout=60,
            tick=lambda: ticks.append(1),
            tick_every=0.1,
            should_abort=lambda: len(ticks) >= 3,
        )
    assert len(ticks) >= 3


def test_run_reports_the_cpu_time_of_the_program_apart_from_its_wall_time(
    tmp_path: Path,
) -> None:
    # Burns 0.2 s of CPU, then sleeps 0.3 s: whatever the machine, its CPU time is at least
    # the burn and its wall time at least burn + sleep.
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.2: pass"
    result = run([sys.executable, "-c", f"{burn}\ntime.sleep(0.3)"], tmp_path, timeout=60)
    # /proc counts CPU in clock ticks, sampled: allow a few ticks either way.
    assert result.cpu_s is not None and 0.15 <= result.cpu_s < result.seconds
    assert result.seconds >= 0.5


def test_missing_program(tmp_path: Path) -> None:
    with pytest.raises(BlastError, match="not found"):
        run(["no-such-blastn-binary"], tmp_path, timeout=5)


def test_count_hits(tmp_path: Path) -> None:
    f = tmp_path / "r.tsv"
    f.write_text("# comment\nq1\ts1\nq1\ts2\n\n")
    assert count_hits(f) == 2


# A stand-in for blast_formatter/blastdbcmd: copies stdin to stdout in small pieces.
CAT = "import sys, shutil; shutil.copyfileobj(sys.stdin.buffer, sys.stdout.buffer, 7)"


def test_prestarted_copies_its_input_through_byte_for_byte(tmp_path: Path) -> None:
    data = bytes(range(256)) * 300
    proc = Prestarted([sys.executable, "-c", CAT], tmp_path)
    assert proc.alive()
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    proc.finish(src, tmp_path / "out.bin", timeout=60)
    assert (tmp_path / "out.bin").read_bytes() == data
    proc = Prestarted([sys.executable, "-c", CAT], tmp_path)
    proc.finish(b"abc", tmp_path / "out2.bin", timeout=60)
    assert (tmp_path / "out2.bin").read_bytes() == b"abc" and not proc.cut


def test_prestarted_stops_when_the_output_is_refused(tmp_path: Path) -> None:
    seen: list[int] = []

    def keep(piece: bytes) -> bool:
        seen.append(len(piece))
        return False

    endless = "import sys\nwhile True: sys.stdout.write('x' * 4096)"
    proc = Prestarted([sys.executable, "-c", endless], tmp_path)
    proc.finish(b"", tmp_path / "out", timeout=60, keep=keep)
    assert proc.cut and len(seen) >= 1 and proc.proc.returncode == -9


def test_prestarted_fails_times_out_and_is_killed(tmp_path: Path) -> None:
    script = "import sys; sys.stdin.read(); sys.stderr.write('Skipped x'); sys.exit(1)"
    with pytest.raises(BlastError, match="exited with 1: Skipped x"):
        Prestarted([sys.executable, "-c", script], tmp_path).finish(b"x\n", tmp_path / "o", 60)
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(BlastError, match="timed out"):
        Prestarted(sleeper, tmp_path).finish(b"", tmp_path / "o", timeout=0.5)
    idle = Prestarted(sleeper, tmp_path)
    idle.kill()
    assert not idle.alive() and idle.proc.returncode == -9
    with pytest.raises(BlastError, match="not found"):
        Prestarted(["no-such-blast-formatter"], tmp_path)


def test_a_shard_searches_with_the_merges_limit_and_a_whole_search_as_asked() -> None:
    opts = Options(evalue=1e-5, max_target_seqs=7, task="megablast")
    whole = JobSpec("j", "blastn", "nt", Query(fasta=">q\nACGT\n"), opts)
    assert search_options(whole) is opts
    shard = JobSpec("j", "blastn", "nt", Query(fasta=">q\nACGT\n"), opts, shard=ShardRef(0, 2))
    assert search_options(shard) == opts  # the margin is 0: the user's limit
    default = JobSpec("j", "blastn", "nt", Query(fasta=">q\nACGT\n"), shard=ShardRef(1, 2))
    assert search_options(default).max_target_seqs == DEFAULT_MAX_TARGET_SEQS
