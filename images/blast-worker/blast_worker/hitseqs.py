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

from blast_worker.runner import BlastError, Prestarted, run

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


def blastdbcmd_argv(db: Path) -> list[str]:
    """The ``blastdbcmd`` command printing, as FASTA on stdout, the entries whose ids it reads
    from stdin (one a line), so it can start before the ids are known.

    Args:
        db: The ``-db`` path.
    """
    return ["blastdbcmd", "-db", str(db), "-entry_batch", "-", "-outfmt", "%f"]


class ResidueLimit:
    """Counts the residues of FASTA text fed in pieces; False once over ``limit``.

    Args:
        limit: Largest total sequence length accepted.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.residues = 0
        self._in_header = False

    def __call__(self, piece: bytes) -> bool:
        """Count ``piece`` (any split of the text); True while within the limit."""
        pos = 0
        while pos < len(piece):
            if self._in_header:
                end = piece.find(b"\n", pos)
                if end < 0:
                    break
                self._in_header, pos = False, end + 1
                continue
            start = piece.find(b">", pos)
            stop = len(piece) if start < 0 else start
            chunk = piece[pos:stop]
            self.residues += len(chunk) - chunk.count(b"\n") - chunk.count(b"\r")
            if start < 0:
                break
            self._in_header, pos = True, start + 1
        return self.residues <= self.limit


def write_hit_fasta(
    dbcmd: Prestarted,
    db: Path,
    workdir: Path,
    tabular: Path,
    timeout: float,
    should_abort: Callable[[], bool] | None = None,
    max_residues: int = MAX_HIT_RESIDUES,
) -> str | None:
    """Write ``workdir/hits.fasta``: the whole subject of every hit in ``tabular``.

    Args:
        dbcmd: ``blastdbcmd`` started with :func:`blastdbcmd_argv` on ``db`` (used up here).
        db: The database's ``-db`` path.
        workdir: The job's directory.
        tabular: Its ``-outfmt 6`` results.
        timeout: Seconds ``blastdbcmd`` may take.
        should_abort: Polled; True kills ``blastdbcmd`` (worker shutdown).
        max_residues: Largest total subject length written.

    Returns:
        None once written, else why there are no hit sequences (one line).

    Raises:
        BlastError: only when aborted (any other failure is the returned reason).
    """
    ids = subject_ids(tabular)
    out = workdir / HIT_FASTA_FILE
    if not ids:
        dbcmd.kill()
        out.write_bytes(b"")
        return None
    limit = ResidueLimit(max_residues)
    try:
        dbcmd.finish("".join(f"{sid}\n" for sid in ids).encode(), out, timeout, should_abort, limit)
    except BlastError as exc:
        out.unlink(missing_ok=True)
        if should_abort is not None and should_abort():
            raise
        log.warning("blastdbcmd failed on the hit ids: %s", exc)
        if _without_seqids(db, workdir, ids[0], timeout):
            return NO_SEQIDS
        lines = [line for line in str(exc).splitlines() if line.strip()]
        return f"blastdbcmd could not read the hit subjects: {lines[-1][:300]}"
    if dbcmd.cut:
        out.unlink(missing_ok=True)
        return (
            f"the hit subjects hold more than the {max_residues:,} residues that are stored; "
            "use blastdbcmd on the database"
        )
    return None


def _without_seqids(db: Path, workdir: Path, first: str, timeout: float) -> bool:
    """True if the database has no id index (``-entry_batch`` then only says "Skipped")."""
    argv = ["blastdbcmd", "-db", str(db), "-entry", first, "-outfmt", "%a"]
    try:
        run(argv, workdir, timeout)
    except BlastError as exc:
        return "no accession info" in str(exc)
    return False
