"""Pairwise alignment text of one HSP, in BLAST's own layout (pure functions, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

from blast_web.report import Hsp

# Letters of sequence per aligned residue: translated searches step three bases per residue.
_STEPS: dict[str, tuple[int, int]] = {
    "blastn": (1, 1),
    "blastp": (1, 1),
    "blastx": (3, 1),
    "tblastn": (1, 3),
    "tblastx": (3, 3),
}


@dataclass(frozen=True)
class Block:
    """One line-triple of an alignment.

    Attributes:
        query_start: Query position of the first letter on the line.
        query: Query letters.
        query_end: Query position of the last letter on the line.
        midline: The match line.
        subject_start: Subject position of the first letter.
        subject: Subject letters.
        subject_end: Subject position of the last letter.
    """

    query_start: int
    query: str
    query_end: int
    midline: str
    subject_start: int
    subject: str
    subject_end: int


def _walk(start: int, end: int, letters: str, step: int) -> tuple[int, int]:
    """Positions of the first and last letter of ``letters`` from ``start`` towards ``end``."""
    direction = -1 if end < start else 1
    residues = sum(c != "-" for c in letters)
    last = start + direction * (residues * step - 1) if residues else start
    return start, last


def alignment_blocks(hsp: Hsp, program: str, width: int = 60) -> list[Block]:
    """Cut an HSP into lines of ``width`` columns with their sequence coordinates.

    Args:
        hsp: The HSP (its aligned strings and first/last positions).
        program: The BLAST program (translated searches step 3 letters per residue).
        width: Columns per line.
    """
    q_step, s_step = _STEPS.get(program, (1, 1))
    q_dir = -1 if hsp.query_to < hsp.query_from else 1
    s_dir = -1 if hsp.hit_to < hsp.hit_from else 1
    # BLAST reports a minus-strand query hit with query_from < query_to and the subject reversed.
    q_pos, s_pos = hsp.query_from, hsp.hit_from
    blocks: list[Block] = []
    for i in range(0, len(hsp.qseq), width):
        q_part, s_part = hsp.qseq[i : i + width], hsp.hseq[i : i + width]
        q_first, q_last = _walk(q_pos, q_pos + q_dir, q_part, q_step)
        s_first, s_last = _walk(s_pos, s_pos + s_dir, s_part, s_step)
        blocks.append(
            Block(q_first, q_part, q_last, hsp.midline[i : i + width], s_first, s_part, s_last)
        )
        q_pos += q_dir * q_step * sum(c != "-" for c in q_part)
        s_pos += s_dir * s_step * sum(c != "-" for c in s_part)
    return blocks


def alignment_text(hsp: Hsp, program: str, width: int = 60) -> str:
    """The HSP as BLAST prints it (``Query  1  ACGT  4`` / midline / ``Sbjct ...``).

    Args:
        hsp: The HSP.
        program: The BLAST program.
        width: Columns per line.
    """
    blocks = alignment_blocks(hsp, program, width)
    digits = max((len(str(n)) for b in blocks for n in (b.query_start, b.subject_start)), default=1)
    lines: list[str] = []
    for b in blocks:
        lines.append(f"Query  {b.query_start:<{digits}}  {b.query}  {b.query_end}")
        lines.append(f"       {'':<{digits}}  {b.midline}")
        lines.append(f"Sbjct  {b.subject_start:<{digits}}  {b.subject}  {b.subject_end}")
        lines.append("")
    return "\n".join(lines)
