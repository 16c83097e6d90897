"""Deterministic synthetic nucleotide database with planted homologous queries.

The same seed gives byte-identical FASTA on every platform and Python version: the generator
uses its own SplitMix64 stream instead of :mod:`random`, whose algorithms may change.

Subjects are uniform random ACGT. Each planted query copies a window of one subject and
substitutes about ``mutation_rate`` of its bases, so BLAST must find that subject; decoy
queries are fresh random sequence and should find nothing significant.

To use a real NCBI database instead (when online)::

    blast-jobs db fetch 16S_ribosomal_RNA

An unknown name lists what NCBI has; pick databases that fit the container's memory and the
cache volume (``blast-jobs db list`` shows their ``bytes_to_cache``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

_MASK = (1 << 64) - 1


class SplitMix64:
    """A tiny, fully specified PRNG (Steele, Lea & Flood 2014), stable across platforms.

    Args:
        seed: Any integer.
    """

    def __init__(self, seed: int) -> None:
        self.state = seed & _MASK

    def next(self) -> int:
        """The next 64-bit value."""
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """A value in ``[0, n)`` (the modulo bias is irrelevant for n << 2**64).

        Args:
            n: Exclusive upper bound, at least 1.
        """
        return self.next() % n

    def unit(self) -> float:
        """A float in ``[0, 1)``."""
        return (self.next() >> 11) / float(1 << 53)


@functools.cache
def _word8() -> list[str]:
    """Every 16-bit value spelled as 8 bases, lowest two bits first (built on first use: it
    took 67 ms of every CLI start that imports this module)."""
    return ["".join("ACGT"[(v >> (2 * k)) & 3] for k in range(8)) for v in range(1 << 16)]


def _dna(rng: SplitMix64, length: int) -> str:
    # 32 bases per 64-bit draw, lowest two bits first, via 16-bit lookups for speed.
    words = (length + 31) // 32
    parts: list[str] = []
    table = _word8()
    for _ in range(words):
        w = rng.next()
        parts.append(
            table[w & 0xFFFF]
            + table[(w >> 16) & 0xFFFF]
            + table[(w >> 32) & 0xFFFF]
            + table[w >> 48]
        )
    return "".join(parts)[:length]


def _wrap(seq: str, width: int = 80) -> str:
    return "\n".join(seq[i : i + width] for i in range(0, len(seq), width)) + "\n"


@dataclass(frozen=True)
class DemoSpec:
    """Size of the synthetic data set.

    Attributes:
        name: Database name; subject ids are ``<name>_<n>``.
        seqs: Number of subject sequences.
        seq_len: Length of each subject.
        queries: Number of planted (homologous) queries.
        decoys: Number of random queries without a planted homolog.
        query_len: Length of each query.
        mutation_rate: Fraction of substituted bases in planted queries.
        seed: PRNG seed.
    """

    name: str = "demo"
    seqs: int = 500
    seq_len: int = 2000
    queries: int = 20
    decoys: int = 5
    query_len: int = 400
    mutation_rate: float = 0.03
    seed: int = 20240601


@dataclass(frozen=True)
class DemoData:
    """Generated FASTA.

    Attributes:
        subjects: Database FASTA text.
        queries: Query FASTA text (planted first, then decoys).
        planted: For each planted query id, the subject id it was taken from.
    """

    subjects: str
    queries: str
    planted: dict[str, str]


def generate(spec: DemoSpec) -> DemoData:
    """Generate the data set for ``spec``; identical output for identical specs.

    Args:
        spec: Sizes and seed.
    """
    rng = SplitMix64(spec.seed)
    subjects: list[tuple[str, str]] = []
    for i in range(spec.seqs):
        sid = f"{spec.name}_{i + 1:06d}"
        subjects.append((sid, _dna(rng, spec.seq_len)))
    queries: list[str] = []
    planted: dict[str, str] = {}
    qlen = min(spec.query_len, spec.seq_len)
    for q in range(spec.queries):
        sid, seq = subjects[rng.below(len(subjects))]
        start = rng.below(spec.seq_len - qlen + 1)
        window = list(seq[start : start + qlen])
        for pos in range(qlen):
            if rng.unit() < spec.mutation_rate:
                window[pos] = "ACGT"[(("ACGT".index(window[pos])) + 1 + rng.below(3)) % 4]
        qid = f"query_{q + 1:03d}"
        planted[qid] = sid
        queries.append(
            f">{qid} planted from {sid}:{start + 1}-{start + qlen}\n" + _wrap("".join(window))
        )
    for d in range(spec.decoys):
        queries.append(f">decoy_{d + 1:03d} random\n" + _wrap(_dna(rng, qlen)))
    subject_text = "".join(
        f">{sid} synthetic subject {sid}\n" + _wrap(seq) for sid, seq in subjects
    )
    return DemoData(subject_text, "".join(queries), planted)


def write_demo(spec: DemoSpec, directory: Path) -> tuple[Path, Path]:
    """Write ``<name>.subjects.fa`` and ``<name>.queries.fa`` into ``directory``.

    Args:
        spec: Sizes and seed.
        directory: Output directory (created if needed).

    Returns:
        Paths of the subjects and queries files.
    """
    directory.mkdir(parents=True, exist_ok=True)
    data = generate(spec)
    subjects = directory / f"{spec.name}.subjects.fa"
    queries = directory / f"{spec.name}.queries.fa"
    subjects.write_text(data.subjects)
    queries.write_text(data.queries)
    return subjects, queries


def makeblastdb_argv(fasta: Path, out: Path, name: str) -> list[str]:
    """The makeblastdb command for a nucleotide database.

    Args:
        fasta: Subjects FASTA.
        out: Output base path (``<dir>/<name>``).
        name: Database title.
    """
    return [
        "makeblastdb",
        "-in",
        str(fasta),
        "-dbtype",
        "nucl",
        "-parse_seqids",
        "-out",
        str(out),
        "-title",
        name,
    ]
