"""Databases of several volumes and queries with many hits across them, for the shard tests
and benches (pure data; BLAST itself runs in the worker image).

Every query's hits spread over every volume: each subject that carries the query's core
carries it with a few (or no) mutations, so scores vary, and whole sequences are repeated
under other names in other volumes, so scores and e-values tie exactly across shards (the
ties BLAST breaks by ordinal id).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from blast_client.shards import Volume

NUCLEOTIDES = "ACGT"
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"


@dataclass(frozen=True)
class ShardData:
    """One database's FASTA and its queries.

    Attributes:
        name: Database name.
        dbtype: ``nucl`` or ``prot``.
        subjects: Number of subjects.
        max_file_sz: ``makeblastdb -max_file_sz`` that cuts it into at least 4 volumes.
        seed: Random seed (the data is the same on every run).
    """

    name: str
    dbtype: str
    subjects: int
    max_file_sz: str
    seed: int

    @property
    def alphabet(self) -> str:
        return NUCLEOTIDES if self.dbtype == "nucl" else AMINO_ACIDS


NUCL = ShardData("shardnt", "nucl", 400, "40000", 7)
PROT = ShardData("shardaa", "prot", 600, "60000", 11)


def _fasta(name: str, title: str, seq: str) -> str:
    lines = [seq[i : i + 70] for i in range(0, len(seq), 70)]
    return f">{name} {title}\n" + "\n".join(lines) + "\n"


def write(data: ShardData, directory: Path) -> tuple[Path, Path]:
    """Write ``<name>.fa`` (subjects) and ``<name>.query.fa`` (3 queries); return both paths.

    The third query matches nothing, so a query without hits is merged too.
    """
    rnd = random.Random(data.seed)
    alphabet = data.alphabet
    protein = data.dbtype == "prot"

    def seq(n: int) -> str:
        return "".join(rnd.choice(alphabet) for _ in range(n))

    def mutate(s: str, k: int) -> str:
        chars = list(s)
        for _ in range(k):
            chars[rnd.randrange(len(chars))] = rnd.choice(alphabet)
        return "".join(chars)

    core = seq(120 if protein else 300)
    flank = (20, 300) if protein else (200, 1500)
    plain = (100, 600) if protein else (500, 3000)
    records: list[str] = []
    made: list[str] = []
    for i in range(data.subjects):
        if i % 10 == 9 and made:
            # An earlier sequence again, under another name: an exact tie, often in another
            # volume.
            body = made[rnd.randrange(len(made))]
        elif i % 4 == 0:
            inserted = core if i % 12 == 0 else mutate(core, rnd.randrange(1, len(core) // 5))
            body = seq(rnd.randrange(*flank)) + inserted + seq(rnd.randrange(*flank))
            made.append(body)
        else:
            body = seq(rnd.randrange(*plain))
        records.append(_fasta(f"{data.name}{i:04d}", f"subject {i}", body))
    subjects = directory / f"{data.name}.fa"
    subjects.write_text("".join(records))
    queries = directory / f"{data.name}.query.fa"
    half = len(core) // 2
    queries.write_text(
        _fasta("q1", "the core", core)
        + _fasta("q2", "half the core, mutated", mutate(core, len(core) // 12)[:half])
        + _fasta("q3", "random", seq(len(core)))
    )
    return subjects, queries


def makeblastdb_argv(data: ShardData, fasta: str, out: str, parse_seqids: bool) -> list[str]:
    """The ``makeblastdb`` of ``data`` into at least 4 volumes."""
    argv = ["makeblastdb", "-in", fasta, "-dbtype", data.dbtype, "-out", out, "-title", data.name]
    argv += ["-max_file_sz", data.max_file_sz]
    return argv + (["-parse_seqids"] if parse_seqids else [])


def volumes(listing: str, directory: Path, name: str) -> tuple[list[Volume], int, int]:
    """The volumes of database ``name`` and its totals (sequences, letters).

    Args:
        listing: ``blastdbcmd -list DIR -list_outfmt '%f<TAB>%n<TAB>%l'``.
        directory: Where the volume files are (for their bytes).
        name: The database.
    """
    rows = {}
    for line in listing.splitlines():
        path, nseq, letters = line.split("\t")
        rows[Path(path).name] = (int(nseq), int(letters))
    found = []
    for vol in sorted(n for n in rows if n.startswith(f"{name}.") and n[len(name) + 1 :].isdigit()):
        size = sum(f.stat().st_size for f in directory.glob(f"{vol}.*"))
        found.append(Volume(vol, *rows[vol], size))
    return found, *rows[name]
