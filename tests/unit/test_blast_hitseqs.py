"""Which subjects a job's hit sequences hold, the blastdbcmd command that fetches them (it
runs for real in tests/integration/web), and the residue limit on what is stored."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from blast_worker.hitseqs import (
    ResidueLimit,
    archive_subject_ids,
    blastdbcmd_argv,
    subject_ids,
    write_hit_fasta,
)
from blast_worker.ready import ReadyTools, ToolKey
from blast_worker.runner import BlastError, Prestarted


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


def test_blastdbcmd_reads_the_ids_on_stdin_never_a_shell(tmp_path: Path) -> None:
    argv = blastdbcmd_argv(Path("/c/demo/demo"))
    assert argv == [
        "blastdbcmd", "-db", "/c/demo/demo", "-entry_batch", "-", "-outfmt", "%f",
    ]  # fmt: skip


def test_no_hits_is_an_empty_fasta_and_blastdbcmd_is_stopped(tmp_path: Path) -> None:
    waiting = Prestarted([sys.executable, "-c", "import sys; sys.stdin.read()"], tmp_path)
    assert write_hit_fasta(waiting, tmp_path / "no-such-db", tmp_path, [], 10.0) is None
    assert (tmp_path / "hits.fasta").read_bytes() == b"" and not waiting.alive()


# A stand-in for blastdbcmd: each id read becomes a 250-residue entry.
FAKE_DBCMD = (
    "import sys\n"
    "for sid in sys.stdin.read().split():\n"
    "    sys.stdout.write(f'>{sid} a title\\n' + ('ACGT' * 20 + '\\n') * 3 + 'ACGTACGTAC\\n')\n"
)


def test_hit_fasta_holds_what_blastdbcmd_prints_within_the_residue_limit(tmp_path: Path) -> None:
    ids = ["demo_2", "demo_1"]
    fake = Prestarted([sys.executable, "-c", FAKE_DBCMD], tmp_path)
    assert write_hit_fasta(fake, tmp_path / "db", tmp_path, ids, 60.0, max_residues=500) is None
    text = (tmp_path / "hits.fasta").read_text()
    assert [line for line in text.splitlines() if line.startswith(">")] == [
        ">demo_2 a title",
        ">demo_1 a title",
    ]
    fake = Prestarted([sys.executable, "-c", FAKE_DBCMD], tmp_path)
    reason = write_hit_fasta(fake, tmp_path / "db", tmp_path, ids, 60.0, max_residues=499)
    assert reason is not None and "more than the 499 residues" in reason
    assert not (tmp_path / "hits.fasta").exists()


def test_residues_are_counted_across_any_split_of_the_text() -> None:
    text = b">s1 title with ACGT in it\nACGTAC\nGT\n>s2\r\nAC\r\n>s3 x\n"
    for step in (1, 2, 3, 5, 8, len(text)):
        limit = ResidueLimit(10)
        results = [limit(text[i : i + step]) for i in range(0, len(text), step)]
        assert limit.residues == 10 and all(results)
    over = ResidueLimit(9)
    assert over(text) is False


def archive(*subjects: str) -> str:
    """Seq-aligns of a BLAST archive (-outfmt 11 text) naming ``subjects``, as blastn writes."""
    aligns = "".join(
        f"""      {{
        segs denseg {{
          dim 2,
          numseg 1,
          ids {{
            local str "Query_{i}",
            {subject}
          }},
          starts {{ 0, 10 }},
          lens {{ 20 }}
        }}
      }},
"""
        for i, subject in enumerate(subjects)
    )
    query = '  request { queries { id { local str "Query_1" } } },\n'
    return f"Blast4-archive ::= {{\n{query}{aligns}}}\n"


def test_subject_ids_are_guessed_from_local_ids_in_the_archive(tmp_path: Path) -> None:
    path = tmp_path / "results.asn1"
    path.write_text(
        archive('local str "demo_000002"', 'local str "demo_000001"', 'local str "demo_000002"')
    )
    assert archive_subject_ids(path) == ["demo_000002", "demo_000001"]
    path.write_text(archive())
    assert archive_subject_ids(path) == []


def test_no_guess_when_any_subject_is_named_otherwise(tmp_path: Path) -> None:
    path = tmp_path / "results.asn1"
    path.write_text(archive('local str "demo_000002"', "gi 12345"))
    assert archive_subject_ids(path) is None
    path.write_text(archive('general { db "BL_ORD_ID", tag id 7 }'))
    assert archive_subject_ids(path) is None


def test_a_job_without_hit_sequences_starts_no_blastdbcmd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No BLAST+ on PATH: starting blastdbcmd would fail, so only a key that wants it fails.
    monkeypatch.setenv("PATH", str(tmp_path))
    ReadyTools(ToolKey(tmp_path / "db", (), None, dbcmd=False), tmp_path).close()
    with pytest.raises(BlastError, match="blastdbcmd not found"):
        ReadyTools(ToolKey(tmp_path / "db", (), None, dbcmd=True), tmp_path)
