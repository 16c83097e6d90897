"""Pairwise alignment text: coordinates per line across gaps, strands and translations."""

from __future__ import annotations

from blast_web.alignment import alignment_blocks, alignment_text
from blast_web.report import Hsp


def hsp(qseq: str, hseq: str, qfrom: int, qto: int, hfrom: int, hto: int) -> Hsp:
    mid = "".join("|" if a == b else " " for a, b in zip(qseq, hseq, strict=True))
    return Hsp(50.0, 1e-10, mid.count("|"), len(qseq), qseq.count("-") + hseq.count("-"),
               qfrom, qto, hfrom, hto, "Plus", "Plus", qseq, hseq, mid)  # fmt: skip


def test_lines_carry_their_first_and_last_positions_across_gaps() -> None:
    q = "ACGT-ACGTA" * 7  # 70 columns, 63 query letters
    s = "ACGTTACG-A" * 7
    blocks = alignment_blocks(hsp(q, s, 11, 73, 101, 163), "blastn", width=60)
    assert [(b.query_start, b.query_end) for b in blocks] == [(11, 64), (65, 73)]
    assert [(b.subject_start, b.subject_end) for b in blocks] == [(101, 154), (155, 163)]


def test_minus_strand_subjects_count_down() -> None:
    blocks = alignment_blocks(hsp("A" * 70, "A" * 70, 1, 70, 500, 431), "blastn", width=60)
    assert [(b.subject_start, b.subject_end) for b in blocks] == [(500, 441), (440, 431)]


def test_translated_queries_step_three_letters_per_residue() -> None:
    blocks = alignment_blocks(hsp("M" * 10, "M" * 10, 4, 33, 1, 10), "blastx", width=60)
    assert (blocks[0].query_start, blocks[0].query_end) == (4, 33)
    assert (blocks[0].subject_start, blocks[0].subject_end) == (1, 10)


def test_text_layout() -> None:
    text = alignment_text(hsp("ACGT", "ACCT", 1, 4, 9, 12), "blastn")
    assert text.splitlines()[:3] == ["Query  1  ACGT  4", "          || |", "Sbjct  9  ACCT  12"]
