"""Running BLAST and blast_formatter as subprocesses with argument lists (never a shell).

The search writes the BLAST archive (``-outfmt 11``); tabular (6, 7) and JSON (15) outputs are
derived from it with ``blast_formatter``, so one search serves every format.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from blast_client.messages import Options


class BlastError(Exception):
    """BLAST failed or timed out; the message includes the tail of its stderr."""


def option_args(options: Options) -> list[str]:
    """Command-line arguments for whitelisted options (excluding output formats).

    Args:
        options: Validated options.
    """
    args: list[str] = []
    if options.task is not None:
        args += ["-task", options.task]
    if options.evalue is not None:
        args += ["-evalue", repr(float(options.evalue))]
    if options.word_size is not None:
        args += ["-word_size", str(options.word_size)]
    if options.max_target_seqs is not None:
        args += ["-max_target_seqs", str(options.max_target_seqs)]
    return args


def blast_argv(
    program: str, db: Path, query: Path, out: Path, options: Options, threads: int
) -> list[str]:
    """The search command: ``<program> -db ... -query ... -out <archive> -outfmt 11``.

    Args:
        program: Validated BLAST program name.
        db: Database path (``-db``).
        query: Query FASTA file.
        out: Archive output file.
        options: Validated options.
        threads: ``-num_threads``.
    """
    return [
        program,
        "-db",
        str(db),
        "-query",
        str(query),
        "-out",
        str(out),
        "-outfmt",
        "11",
        "-num_threads",
        str(threads),
        *option_args(options),
    ]


def formatter_argv(archive: Path, fmt: int, out: Path, options: Options) -> list[str]:
    """The ``blast_formatter`` command deriving format ``fmt`` from the archive.

    Args:
        archive: The ``-outfmt 11`` archive.
        fmt: 6, 7 or 15.
        out: Output file.
        options: Validated options (max_target_seqs also limits the formatted output).
    """
    argv = ["blast_formatter", "-archive", str(archive), "-outfmt", str(fmt), "-out", str(out)]
    if options.max_target_seqs is not None:
        argv += ["-max_target_seqs", str(options.max_target_seqs)]
    return argv


@dataclass(frozen=True)
class RunResult:
    """Outcome of one subprocess.

    Attributes:
        seconds: Wall time.
        stderr: Its stderr (kept for error reports).
    """

    seconds: float
    stderr: str


def run(
    argv: list[str],
    cwd: Path,
    timeout: float,
    tick: Callable[[], None] | None = None,
    tick_every: float = 5.0,
    should_abort: Callable[[], bool] | None = None,
) -> RunResult:
    """Run ``argv`` in ``cwd``, calling ``tick`` periodically (to extend the message lease).

    Args:
        argv: Command and arguments; no shell is involved.
        cwd: Working directory (the job's own directory).
        timeout: Seconds before the process group is killed.
        tick: Called every ``tick_every`` seconds while it runs.
        tick_every: Seconds between ticks.
        should_abort: Polled; when it returns True the run is killed (worker shutdown).

    Returns:
        Wall time and stderr.

    Raises:
        BlastError: non-zero exit, timeout, abort, or a missing executable.
    """
    start = time.monotonic()
    err_path = cwd / f".{Path(argv[0]).name}.stderr"
    with err_path.open("w+b") as err:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise BlastError(f"{argv[0]} not found: install ncbi-blast+") from None
        next_tick = start + tick_every
        reason: str | None = None
        while True:
            try:
                proc.wait(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if now - start > timeout:
                reason = f"timed out after {timeout:g} s (BLAST_JOB_TIMEOUT)"
            elif should_abort is not None and should_abort():
                reason = "aborted because the worker is stopping"
            if reason is not None:
                _kill_group(proc)
                break
            if tick is not None and now >= next_tick:
                next_tick = now + tick_every
                tick()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    err_path.unlink(missing_ok=True)
    seconds = time.monotonic() - start
    if reason is not None:
        raise BlastError(f"{Path(argv[0]).name} {reason}")
    if proc.returncode != 0:
        tail = stderr.strip()[-1000:] or "(no stderr)"
        raise BlastError(f"{Path(argv[0]).name} exited with {proc.returncode}: {tail}")
    return RunResult(seconds, stderr)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def count_hits(tabular: Path) -> int:
    """Number of alignment lines in an ``-outfmt 6`` file.

    Args:
        tabular: The file.
    """
    with tabular.open("rb") as fh:
        return sum(1 for line in fh if line.strip() and not line.startswith(b"#"))
