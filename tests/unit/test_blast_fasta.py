"""FASTA validation, batching and molecule detection."""

from __future__ import annotations

import pytest
from blast_client.fasta import (
    FastaError,
    batch_records,
    detect_molecule,
    iter_records,
    join_records,
    programs_for,
    validate_fasta,
)


def fasta(*lengths: int) -> str:
    return "".join(f">s{i} desc\n{'ACGT' * (n // 4)}\n" for i, n in enumerate(lengths))


def test_records_keep_text_and_strip_blank_lines() -> None:
    text = ">a one\nACGT\nAC GT\n\n>b\r\nTTTT\r\n"
    recs = list(iter_records(text))
    assert [(r.header, r.sequence) for r in recs] == [("a one", "ACGTACGT"), ("b", "TTTT")]
    assert join_records(recs) == ">a one\nACGT\nAC GT\n>b\nTTTT\n"


@pytest.mark.parametrize(
    ("text", "program", "match"),
    [
        ("", "blastn", "empty"),
        ("  \n\n", "blastn", "empty"),
        ("ACGT\n>a\nACGT\n", "blastn", "header"),
        (">a\n", "blastn", "no sequence"),
        (">a\nACGT\n>b\n", "blastn", "record 2"),
        (">a\nMKLV\n", "blastn", "not a nucleotide"),
        (">a\nACGT1\n", "blastp", "not a protein"),
        (">a\nAC\x00GT\n", "blastn", "NUL"),
    ],
)
def test_invalid_fasta(text: str, program: str, match: str) -> None:
    with pytest.raises(FastaError, match=match):
        validate_fasta(text, program)


def test_protein_alphabet_accepts_stop_and_ambiguity() -> None:
    assert len(validate_fasta(">p\nMKTAYXBZ*\n", "tblastn")) == 1


def test_batches_respect_length_and_order() -> None:
    recs = list(iter_records(fasta(40, 40, 40, 100, 8)))
    batches = batch_records(recs, 80)
    assert [[r.header.split()[0] for r in b] for b in batches] == [
        ["s0", "s1"],
        ["s2"],
        ["s3"],
        ["s4"],
    ]
    assert [r for b in batches for r in b] == recs


def test_one_batch_when_everything_fits() -> None:
    recs = list(iter_records(fasta(10, 10, 10)))
    assert batch_records(recs, 1000) == [recs]


def test_batch_len_must_be_positive() -> None:
    with pytest.raises(ValueError):
        batch_records([], 0)


def test_molecule_detection_tolerates_ambiguity_codes() -> None:
    dna = list(iter_records(">a\nACGTNACGTRACGTACGTAC\n>b\nacgtacgtacgt\n"))
    assert detect_molecule(dna) == "nucleotide"
    protein = list(iter_records(">p\nMKVLAAGIVGLLLAQWERTYHHKL\n"))
    assert detect_molecule(protein) == "protein"
    # Mostly A/C/G/T but a quarter other letters: a protein, not DNA with typos.
    assert detect_molecule(list(iter_records(">x\nACGTACGTACGTACGTMKLV\n"))) == "protein"
    # Gaps and stops are not letters: they neither count for DNA nor against it.
    assert detect_molecule(list(iter_records(">g\nACGT-ACGT*ACGT--\n"))) == "nucleotide"
    assert detect_molecule(list(iter_records(">h\nAC----------MKLV\n"))) == "protein"


def test_programs_follow_the_molecules() -> None:
    assert programs_for("nucleotide", "nucleotide") == ("blastn", "tblastx")
    assert programs_for("nucleotide", "protein") == ("blastx",)
    assert programs_for("protein", "protein") == ("blastp",)
    assert programs_for("protein", "nucleotide") == ("tblastn",)
    with pytest.raises(ValueError, match="molecules"):
        programs_for("rna", "protein")
