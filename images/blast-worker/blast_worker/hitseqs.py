"""The hit sequences of a job: every subject it hit, whole, as FASTA, from ``blastdbcmd``.

The worker holds the verified database and ``blastdbcmd``, so it writes ``hits.fasta`` beside
the other results; the web page and ``blast-jobs`` then only read a blob. A database built
without ``-parse_seqids`` cannot be searched by id: the job still succeeds, and its row says
why there are no hit sequences.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from blast_client.messages import HIT_FASTA_FILE

from blast_worker.runner import BlastError, run

log = logging.getLogger("blast_worker.hitseqs")

MAX_HIT_RESIDUES = 100_000_000
"""Largest total length of the hit subjects written (whole chromosomes add up quickly)."""

NO_SEQIDS = (
    "the database was built without makeblastdb -parse_seqids, so its sequences cannot be "
    "looked up by id"
)


def subject_ids(tabular: Path) -> list[str]:
    """The subject ids of an ``-outfmt 6`` file, each once, in order of first appearance.

    Args:
        tabular: The file (column 2 is ``sseqid``).
    """
    seen: dict[str, None] = {}
    with tabular.open(encoding="utf-8") as fh:
        for line in fh:
            fields = line.split("\t")
            if len(fields) > 1 and not line.startswith("#"):
                seen.setdefault(fields[1], None)
    return list(seen)


def blastdbcmd_argv(db: Path, batch: Path, out: Path, fmt: str = "%f") -> list[str]:
    """The ``blastdbcmd`` command printing the entries listed in ``batch``.

    Args:
        db: The ``-db`` path.
        batch: A file with one id per line (``-entry_batch``).
        out: Output file.
        fmt: ``-outfmt`` (``%f`` FASTA, ``%l`` lengths).
    """
    return [
        "blastdbcmd",
        "-db",
        str(db),
        "-entry_batch",
        str(batch),
        "-outfmt",
        fmt,
        "-out",
        str(out),
    ]


def write_hit_fasta(
    db: Path,
    workdir: Path,
    tabular: Path,
    timeout: float,
    should_abort: Callable[[], bool] | None = None,
    max_residues: int = MAX_HIT_RESIDUES,
) -> str | None:
    """Write ``workdir/hits.fasta``: the whole subject of every hit in ``tabular``.

    Args:
        db: The database's ``-db`` path.
        workdir: The job's directory.
        tabular: Its ``-outfmt 6`` results.
        timeout: Seconds each ``blastdbcmd`` may take.
        should_abort: Polled; True kills ``blastdbcmd`` (worker shutdown).
        max_residues: Largest total subject length written.

    Returns:
        None once written, else why there are no hit sequences (one line).

    Raises:
        BlastError: only when aborted (any other failure is the returned reason).
    """
    batch = workdir / "hit-ids.txt"
    batch.write_text("".join(f"{sid}\n" for sid in subject_ids(tabular)), encoding="utf-8")
    out = workdir / HIT_FASTA_FILE
    if batch.stat().st_size == 0:
        out.write_bytes(b"")
        return None
    lengths = workdir / "hit-lengths.txt"
    try:
        run(blastdbcmd_argv(db, batch, lengths, "%l"), workdir, timeout, None, 5.0, should_abort)
        total = sum(int(n) for n in lengths.read_text().split())
        if total > max_residues:
            return (
                f"the hit subjects hold {total:,} residues, over the {max_residues:,} that are "
                "stored; use blastdbcmd on the database"
            )
        run(blastdbcmd_argv(db, batch, out), workdir, timeout, None, 5.0, should_abort)
    except BlastError as exc:
        if should_abort is not None and should_abort():
            raise
        log.warning("blastdbcmd failed on the hit ids: %s", exc)
        if _without_seqids(db, workdir, batch, timeout):
            return NO_SEQIDS
        lines = [line for line in str(exc).splitlines() if line.strip()]
        return f"blastdbcmd could not read the hit subjects: {lines[-1][:300]}"
    return None


def _without_seqids(db: Path, workdir: Path, batch: Path, timeout: float) -> bool:
    """True if the database has no id index (``-entry_batch`` then only says "Skipped")."""
    first = batch.read_text(encoding="utf-8").split("\n", 1)[0]
    argv = ["blastdbcmd", "-db", str(db), "-entry", first, "-outfmt", "%a"]
    try:
        run(argv, workdir, timeout)
    except BlastError as exc:
        return "no accession info" in str(exc)
    return False
