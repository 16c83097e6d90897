"""Which subjects a job's hit sequences hold, and the blastdbcmd commands that fetch them
(the commands run for real in tests/integration/web)."""

from __future__ import annotations

from pathlib import Path

from blast_worker.hitseqs import blastdbcmd_argv, subject_ids, write_hit_fasta


def test_subject_ids_are_unique_in_order_of_first_hit(tmp_path: Path) -> None:
    tsv = tmp_path / "results.6.tsv"
    tsv.write_text(
        "# a comment\n"
        "q1\tdemo_000002\t99.0\t100\t1\t0\t1\t100\t1\t100\t1e-50\t180\n"
        "q1\tdemo_000001\t90.0\t100\t1\t0\t1\t100\t1\t100\t1e-20\t80\n"
        "q2\tdemo_000002\t99.0\t100\t1\t0\t1\t100\t1\t100\t1e-50\t180\n"
        "\n"
    )
    assert subject_ids(tsv) == ["demo_000002", "demo_000001"]


def test_blastdbcmd_reads_the_ids_from_a_file_never_a_shell(tmp_path: Path) -> None:
    argv = blastdbcmd_argv(Path("/c/demo/demo"), Path("/w/ids"), Path("/w/hits.fasta"))
    assert argv == [
        "blastdbcmd", "-db", "/c/demo/demo", "-entry_batch", "/w/ids",
        "-outfmt", "%f", "-out", "/w/hits.fasta",
    ]  # fmt: skip


def test_no_hits_is_an_empty_fasta_without_running_blastdbcmd(tmp_path: Path) -> None:
    tsv = tmp_path / "results.6.tsv"
    tsv.write_text("")
    assert write_hit_fasta(tmp_path / "no-such-db", tmp_path, tsv, 10.0) is None
    assert (tmp_path / "hits.fasta").read_bytes() == b""
