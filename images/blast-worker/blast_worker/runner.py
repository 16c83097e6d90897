"""Running BLAST and blast_formatter as subprocesses with argument lists (never a shell).

A job that needs the BLAST archive (``blast_client.messages.keeps_archive``: a shard, or
outfmt 15) has its search write the archive (``-outfmt 11``), and every format is derived from
it with ``blast_formatter``. Any other job asks only for tabular output: its search writes
``-outfmt 7`` directly and 6 is that without its comment lines (:func:`tabular_from_commented`),
the same bytes ``blastn -outfmt 6`` writes, with no second pass.

A BLAST+ program spends tens of milliseconds of CPU loading its libraries before it reads a
byte; :class:`Prestarted` starts ``blast_formatter`` and ``blastdbcmd`` ahead of their input
(on stdin, ``-`` in their arguments) so that cost stays off a job's critical path. A process
end is noticed through a pidfd at once, not at the next poll.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from blast_client.merge import tabular_lines
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
    program: str,
    db: Path,
    query: Path,
    out: Path,
    options: Options,
    threads: int,
    outfmt: int = 11,
) -> list[str]:
    """The search command: ``<program> -db ... -query ... -out <out> -outfmt <outfmt>``.

    Args:
        program: Validated BLAST program name.
        db: Database path (``-db``).
        query: Query FASTA file.
        out: Output file.
        options: Validated options.
        threads: ``-num_threads``.
        outfmt: 11 (the archive) or 7 (commented tabular, for jobs without an archive).
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
        str(outfmt),
        "-num_threads",
        str(threads),
        *option_args(options),
    ]


def formatter_argv(fmt: int, options: Options) -> list[str]:
    """The ``blast_formatter`` command deriving format ``fmt`` from the archive on its stdin,
    writing to its stdout (so it can start before the archive exists).

    Args:
        fmt: 6, 7 or 15.
        options: Validated options (max_target_seqs also limits the formatted output).
    """
    argv = ["blast_formatter", "-archive", "-", "-outfmt", str(fmt)]
    if options.max_target_seqs is not None:
        argv += ["-max_target_seqs", str(options.max_target_seqs)]
    return argv


@dataclass(frozen=True)
class RunResult:
    """Outcome of one subprocess.

    Attributes:
        seconds: Wall time.
        stderr: Its stderr (kept for error reports).
        cpu_s: Its CPU time (user + system, all its threads), or None when unknown. Beside
            ``seconds`` it tells a slower search (more work) from a starved one (same work,
            less CPU to do it).
    """

    seconds: float
    stderr: str
    cpu_s: float | None = None


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
        reason, cpu_s = _wait(proc, start, timeout, tick, tick_every, should_abort)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    err_path.unlink(missing_ok=True)
    seconds = time.monotonic() - start
    if reason is not None:
        raise BlastError(f"{Path(argv[0]).name} {reason}")
    if proc.returncode != 0:
        tail = stderr.strip()[-1000:] or "(no stderr)"
        raise BlastError(f"{Path(argv[0]).name} exited with {proc.returncode}: {tail}")
    return RunResult(seconds, stderr, cpu_s)


def exited_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, every thread) of process ``pid`` once it has exited and
    before it is reaped (a zombie keeps them in ``/proc/<pid>/stat``); None if unknown.

    Reading them leaves the reaping to ``Popen``, which alone may set its return code.
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
    if len(fields) < 13 or fields[0] != "Z":
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _exit_watch(
    proc: subprocess.Popen[bytes], cpu: list[float | None]
) -> Iterator[Callable[[float], bool]]:
    """A function waiting up to its argument (seconds) for ``proc`` to exit; True once it has
    (and reaped it: its CPU seconds, when known, are appended to ``cpu``).

    A pidfd wakes the wait the moment the process ends, where ``Popen.wait`` would notice
    only at its next poll; without one (an old kernel, or the process already reaped) it polls.
    """
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):

        def polled(seconds: float) -> bool:
            try:
                proc.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                return False
            return True

        yield polled
        return
    poller = select.poll()
    poller.register(fd, select.POLLIN)

    def pidfd(seconds: float) -> bool:
        if not poller.poll(seconds * 1000):
            return False
        cpu.append(exited_cpu_s(proc.pid))
        proc.wait()
        return True

    try:
        yield pidfd
    finally:
        os.close(fd)


def _wait(
    proc: subprocess.Popen[bytes],
    start: float,
    timeout: float,
    tick: Callable[[], None] | None = None,
    tick_every: float = 5.0,
    should_abort: Callable[[], bool] | None = None,
) -> tuple[str | None, float | None]:
    """Wait for ``proc`` (started at ``start``), ticking; kill it on timeout or abort.

    Returns:
        None when it exited by itself, else why it was killed; and its CPU seconds (None
        when unknown).
    """
    next_tick = start + tick_every
    cpu: list[float | None] = []
    with _exit_watch(proc, cpu) as exited:
        while not exited(0.05):
            now = time.monotonic()
            reason: str | None = None
            if now - start > timeout:
                reason = f"timed out after {timeout:g} s (BLAST_JOB_TIMEOUT)"
            elif should_abort is not None and should_abort():
                reason = "aborted because the worker is stopping"
            if reason is not None:
                _kill_group(proc)
                return reason, None
            if tick is not None and now >= next_tick:
                next_tick = now + tick_every
                tick()
    return None, cpu[0] if cpu else None


class Prestarted:
    """A program started before its input exists: stdin is a pipe, stdout is kept.

    Args:
        argv: Command and arguments (its input file given as ``-``); no shell.
        cwd: Working directory.

    Raises:
        BlastError: the executable is missing.
    """

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.argv = argv
        self.name = Path(argv[0]).name
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - closed by finish/kill
        try:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._err,
                start_new_session=True,
            )
        except FileNotFoundError:
            self._err.close()
            raise BlastError(f"{argv[0]} not found: install ncbi-blast+") from None
        self.cut = False
        """True when ``finish``'s ``keep`` stopped the program before its end."""

    def alive(self) -> bool:
        """True while the program still waits for (or reads) its input."""
        return self.proc.poll() is None

    def kill(self) -> None:
        """Kill the program (if still running) and free its pipes."""
        if self.proc.poll() is None:
            _kill_group(self.proc)
        self._close()

    def _close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self._err.close()

    def finish(
        self,
        data: bytes | Path,
        out: Path,
        timeout: float,
        should_abort: Callable[[], bool] | None = None,
        keep: Callable[[bytes], bool] | None = None,
    ) -> RunResult:
        """Give the program its input, copy its stdout to ``out`` and wait for its end.

        Args:
            data: Its whole stdin, or a file holding it.
            out: File that receives its stdout.
            timeout: Seconds from now before it is killed.
            should_abort: Polled; True kills it (worker shutdown).
            keep: Called with each piece of output; False kills the program and sets
                :attr:`cut` (a size limit).

        Returns:
            Wall time (from this call) and stderr.

        Raises:
            BlastError: non-zero exit (unless cut), timeout or abort.
        """
        start = time.monotonic()
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None

        def feed() -> None:
            with contextlib.suppress(OSError):  # it may exit before reading everything
                if isinstance(data, Path):
                    with data.open("rb") as fh:
                        shutil.copyfileobj(fh, stdin, 1 << 20)
                else:
                    stdin.write(data)
                stdin.close()

        def copy() -> None:
            with out.open("wb") as fh:
                while piece := os.read(stdout.fileno(), 1 << 16):
                    fh.write(piece)
                    if keep is not None and not self.cut and not keep(piece):
                        self.cut = True
                        _kill_group(self.proc)

        threads = [
            threading.Thread(target=feed, name=f"{self.name}-in", daemon=True),
            threading.Thread(target=copy, name=f"{self.name}-out", daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            reason, cpu_s = _wait(self.proc, start, timeout, should_abort=should_abort)
            for thread in threads:
                thread.join()
            self._err.seek(0)
            stderr = self._err.read().decode("utf-8", "replace")
        finally:
            self._close()
        seconds = time.monotonic() - start
        if reason is not None:
            raise BlastError(f"{self.name} {reason}")
        if self.proc.returncode != 0 and not self.cut:
            tail = stderr.strip()[-1000:] or "(no stderr)"
            raise BlastError(f"{self.name} exited with {self.proc.returncode}: {tail}")
        return RunResult(seconds, stderr, cpu_s)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def tabular_from_commented(commented: Path, tabular: Path) -> int:
    """Write ``-outfmt 6`` from BLAST's ``-outfmt 7``: the same lines without the comment
    lines (``#``, :func:`blast_client.merge.tabular_lines`); return the number of hits (its
    lines).

    Args:
        commented: The search's ``-outfmt 7`` file.
        tabular: The ``-outfmt 6`` file written.
    """
    hits = 0
    with commented.open("rb") as src, tabular.open("wb") as dst:
        for line in tabular_lines(src):
            dst.write(line)
            hits += bool(line.strip())
    return hits


def count_hits(tabular: Path) -> int:
    """Number of alignment lines in an ``-outfmt 6`` file.

    Args:
        tabular: The file.
    """
    with tabular.open("rb") as fh:
        return sum(1 for line in fh if line.strip() and not line.startswith(b"#"))
