"""The hit sequences of a job: every subject it hit, whole, as FASTA, from ``blastdbcmd``.

The worker holds the verified database and ``blastdbcmd``, so it writes ``hits.fasta`` beside
the other results; the web page and ``blast-jobs`` then only read a blob. A database built
without ``-parse_seqids`` cannot be searched by id: the job still succeeds, and its row says
why there are no hit sequences.
"""

from __future__ import annotations

import logging
import re
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
    ids: list[str],
    timeout: float,
    should_abort: Callable[[], bool] | None = None,
    max_residues: int = MAX_HIT_RESIDUES,
    out: Path | None = None,
) -> str | None:
    """Write the whole subject of every id in ``ids`` (``workdir/hits.fasta`` by default).

    Args:
        dbcmd: ``blastdbcmd`` started with :func:`blastdbcmd_argv` on ``db`` (used up here).
        db: The database's ``-db`` path.
        workdir: The job's directory.
        ids: Subject ids (:func:`subject_ids` of the job's ``-outfmt 6`` results).
        timeout: Seconds ``blastdbcmd`` may take.
        should_abort: Polled; True kills ``blastdbcmd`` (worker shutdown).
        max_residues: Largest total subject length written.
        out: The file written (absent when there are no hit sequences).

    Returns:
        None once written, else why there are no hit sequences (one line).

    Raises:
        BlastError: only when aborted (any other failure is the returned reason).
    """
    out = out or workdir / HIT_FASTA_FILE
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


_ALIGNED_IDS = re.compile(rb"\bids \{")
_LOCAL_SUBJECT = re.compile(rb'\bids \{\s*local str "[^"]*",\s*local str "([^"]*)"\s*\}')
MAX_GUESSED_ARCHIVE = 64 << 20
"""Largest archive whose subject ids are guessed (it is read whole)."""


def archive_subject_ids(archive: Path) -> list[str] | None:
    """Guess the subject ids of the tabular output from the BLAST archive (``-outfmt 11``
    text), in order of first appearance, so that ``blastdbcmd`` can run beside
    ``blast_formatter``. Only plain local ids are read (a database made with
    ``makeblastdb -parse_seqids`` from ids without ``|``); other archives give None.

    The guess is used only when it equals :func:`subject_ids` of the formatter's output, so
    the hit sequences are always those of the tabular results.

    Args:
        archive: The search's archive.
    """
    if archive.stat().st_size > MAX_GUESSED_ARCHIVE:
        return None
    text = archive.read_bytes()
    found = _LOCAL_SUBJECT.findall(text)
    if len(found) != len(_ALIGNED_IDS.findall(text)):
        return None  # some alignment names its subject otherwise
    try:
        return list(dict.fromkeys(sid.decode("utf-8") for sid in found))
    except UnicodeDecodeError:
        return None


def _without_seqids(db: Path, workdir: Path, first: str, timeout: float) -> bool:
    """True if the database has no id index (``-entry_batch`` then only says "Skipped")."""
    argv = ["blastdbcmd", "-db", str(db), "-entry", first, "-outfmt", "%a"]
    try:
        run(argv, workdir, timeout)
    except BlastError as exc:
        return "no accession info" in str(exc)
    return False
