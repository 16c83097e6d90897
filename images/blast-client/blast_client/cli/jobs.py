"""``status``, ``wait``, ``results``, ``recent`` and ``run``: reading the job log and results."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from blast_client.cli.context import Context
from blast_client.cli.progress import Progress
from blast_client.cli.render import Result
from blast_client.client import JobStatus
from blast_client.errors import BlastClientError, InvalidRequest
from blast_client.messages import FORMAT_FILES

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class JobFailed(BlastClientError):
    """A job (or some of the jobs waited for) did not succeed."""

    code = "job_failed"


class WaitTimeout(BlastClientError):
    """The wait ended before every job was final."""

    code = "timeout"


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``90s``, ``15m``, ``2h``, ``1d`` or ``1h30m``.

    Args:
        text: The duration.

    Raises:
        ValueError: if it is not such a duration.
    """
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != text.strip().lower():
        raise ValueError(f"{text!r} is not a duration; use e.g. 90s, 15m, 2h, 1d or 1h30m")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _describe(doc: dict[str, Any]) -> str:
    lines = [f"{doc['job_id']}: {doc.get('status')}"]
    for key in (
        "name",
        "run_id",
        "program",
        "db",
        "worker",
        "attempts",
        "hits",
        "download_s",
        "blast_s",
        "upload_s",
        "error",
    ):
        if doc.get(key) not in (None, ""):
            lines.append(f"  {key}: {doc[key]}")
    for key in ("submitted", "started", "finished"):
        if isinstance(doc.get(key), float):
            lines.append(f"  {key}: {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(doc[key]))}Z")
    for fmt, url in (doc.get("results") or {}).items():
        lines.append(f"  result {fmt}: {url}")
    return "\n".join(lines)


def status(ctx: Context, job: str) -> Result:
    """The job row for ``job``; exit 1 if the job ended without success.

    Args:
        ctx: CLI context.
        job: Job id.
    """
    st = ctx.client.status(job)
    error = None
    if st.final and st.status != "succeeded":
        error = JobFailed(f"job {job} {st.status}: {st.error}")
    return Result(st.to_json(), _describe, error=error)


def _summary_line(statuses: list[JobStatus]) -> tuple[int, str]:
    counts: dict[str, int] = {}
    for st in statuses:
        counts[st.status] = counts.get(st.status, 0) + 1
    done = sum(1 for st in statuses if st.final)
    return done, ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def wait(ctx: Context, jobs: list[str], timeout: float | None, interval: float) -> Result:
    """Wait until every job is final, showing progress on stderr.

    Args:
        ctx: CLI context.
        jobs: Job ids.
        timeout: Give up after this many seconds (None: wait forever).
        interval: Seconds between polls.

    Returns:
        Exit 0 if all succeeded, 1 if any ended otherwise or is unfinished at timeout.
    """
    bar = Progress(len(jobs), enabled=ctx.output != "json")
    try:
        statuses = ctx.client.wait(
            jobs, timeout, interval, on_progress=lambda s: bar.update(*_summary_line(s))
        )
    finally:
        bar.close()
    summary = [{"job_id": s.job_id, "status": s.status, "error": s.error} for s in statuses]
    bad = [s for s in statuses if s.status != "succeeded"]
    error: BlastClientError | None = None
    if any(not s.final for s in bad):
        error = WaitTimeout(
            f"{len(bad)} of {len(jobs)} jobs did not succeed (timed out waiting)",
            hint="wait again, or check that a worker is running (`blast-jobs recent`)",
        )
    elif bad:
        error = JobFailed(f"{len(bad)} of {len(jobs)} jobs did not succeed")

    def text(data: list[dict[str, Any]]) -> str:
        return "\n".join(
            f"{d['job_id']}\t{d['status']}" + (f"\t{d['error']}" if d["error"] else "")
            for d in data
        )

    return Result(summary, text, error=error)


def results(ctx: Context, job: str, fmt: int, download: Path | None) -> Result:
    """Print or download one result file of a succeeded job.

    Args:
        ctx: CLI context.
        job: Job id.
        fmt: Output format (6, 7, 11 or 15).
        download: Directory or file to save to; None prints to stdout.
    """
    data = ctx.client.result(job, fmt)
    if download is not None:
        target = download / FORMAT_FILES[fmt] if download.is_dir() else download
        try:
            target.write_bytes(data)
        except OSError as exc:
            raise InvalidRequest(f"cannot write {target}: {exc.strerror}") from None
        info = {"job_id": job, "format": fmt, "path": str(target), "bytes": len(data)}
        return Result(info, lambda d: f"saved {d['path']} ({d['bytes']} bytes)")
    info = {"job_id": job, "format": fmt, "text": data.decode("utf-8", "replace")}
    return Result(info, raw=data)


def _table(data: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{d['job_id']}\t{d.get('status')}\t{d.get('db', '')}\t"
        f"{d.get('hits', '') if d.get('hits') is not None else ''}\t{d.get('error') or ''}"
        for d in data
    )


def recent(ctx: Context, since: str, limit: int | None = None) -> Result:
    """Jobs submitted within the last ``since``, oldest first.

    Args:
        ctx: CLI context.
        since: Duration such as ``15m``.
        limit: Show at most the newest ``limit`` jobs.
    """
    try:
        seconds = parse_duration(since)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    docs = [s.to_json() for s in reversed(ctx.client.recent(limit, seconds))]
    return Result(docs, lambda d: _table(d) if d else f"no jobs submitted in the last {since}")


def run(ctx: Context, run_id: str) -> Result:
    """Every job of one run.

    Args:
        ctx: CLI context.
        run_id: The run id.
    """
    docs = [s.to_json() for s in ctx.client.run_jobs(run_id)]
    return Result(docs, lambda d: _table(d) if d else f"run {run_id} has no jobs")
