"""The programs a job runs after its search, started before they are needed.

``blast_formatter`` (one per output format) and ``blastdbcmd`` (the hit sequences) each spend
tens of milliseconds loading BLAST+'s libraries and opening the database before they read
their input. A :class:`ReadyTools` starts them while the search runs, or between jobs for the
next job with the same database and formats, so that time is off the job's critical path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from blast_client.messages import Options

from blast_worker.hitseqs import blastdbcmd_argv
from blast_worker.runner import Prestarted, formatter_argv


@dataclass(frozen=True)
class ToolKey:
    """What the started programs depend on: a job with the same key can use them.

    Attributes:
        db: The database's ``-db`` path (``blastdbcmd``).
        formats: Output formats derived with ``blast_formatter``.
        max_target_seqs: The job's limit (it also limits the formatted output).
        dbcmd: Whether ``blastdbcmd`` is wanted (the job asked for its hit sequences); a
            program started for nothing takes CPU from the search beside it.
    """

    db: Path
    formats: tuple[int, ...]
    max_target_seqs: int | None
    dbcmd: bool


class ReadyTools:
    """One ``blast_formatter`` per format of ``key`` and, if it wants one, a ``blastdbcmd``,
    started now.

    Each is handed out once; a program that is missing or no longer alive is started afresh,
    so a retried step still finds its tools.

    Args:
        key: What they are started for.
        cwd: Their working directory (they write nothing there).

    Raises:
        BlastError: a program is not installed.
    """

    def __init__(self, key: ToolKey, cwd: Path) -> None:
        self.key = key
        self.cwd = cwd
        self._options = Options(max_target_seqs=key.max_target_seqs)
        self._formatters: dict[int, Prestarted] = {}
        self._dbcmd: Prestarted | None = None
        try:
            for fmt in key.formats:
                self._formatters[fmt] = Prestarted(formatter_argv(fmt, self._options), cwd)
            if key.dbcmd:
                self._dbcmd = Prestarted(blastdbcmd_argv(key.db), cwd)
        except BaseException:
            self.close()
            raise

    def formatter(self, fmt: int) -> Prestarted:
        """The ``blast_formatter`` for ``fmt`` (the caller finishes or kills it)."""
        proc = self._formatters.pop(fmt, None)
        if proc is not None and proc.alive():
            return proc
        if proc is not None:
            proc.kill()
        return Prestarted(formatter_argv(fmt, self._options), self.cwd)

    def dbcmd(self) -> Prestarted:
        """The ``blastdbcmd`` on the key's database (the caller finishes or kills it)."""
        proc, self._dbcmd = self._dbcmd, None
        if proc is not None and proc.alive():
            return proc
        if proc is not None:
            proc.kill()
        return Prestarted(blastdbcmd_argv(self.key.db), self.cwd)

    def close(self) -> None:
        """Kill every program not handed out."""
        procs = list(self._formatters.values())
        if self._dbcmd is not None:
            procs.append(self._dbcmd)
        self._formatters, self._dbcmd = {}, None
        for proc in procs:
            proc.kill()
