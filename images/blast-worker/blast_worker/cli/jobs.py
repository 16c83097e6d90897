"""``status``, ``wait``, ``results`` and ``recent``: reading the job log and results."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from blast_worker.cli.context import Context
from blast_worker.cli.progress import Progress
from blast_worker.cli.render import EXIT_ERROR, CliError, Result
from blast_worker.joblog import FINAL, to_jsonable
from blast_worker.names import NameError_, check_job_id
from blast_worker.runner import FORMAT_FILES

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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


def _job_id(text: str) -> str:
    try:
        return check_job_id(text)
    except NameError_ as exc:
        raise CliError(str(exc), code=2) from None


def _row(ctx: Context, job_id: str) -> dict[str, Any]:
    row = ctx.joblog.get(_job_id(job_id))
    if row is None:
        raise CliError(
            f"job {job_id} not found in table {ctx.cfg.table}; check the id "
            "(`blast-jobs recent --since 1h` lists recent jobs)"
        )
    return to_jsonable(row)


def _describe(doc: dict[str, Any]) -> str:
    lines = [f"{doc['job_id']}: {doc.get('status')}"]
    for key in (
        "name",
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
    """The job row for ``job``.

    Args:
        ctx: CLI context.
        job: Job id.
    """
    doc = _row(ctx, job)
    code = EXIT_ERROR if doc.get("status") in ("failed", "poisoned") else 0
    return Result(
        doc,
        _describe,
        code=code,
        error=f"job {job} {doc['status']}: {doc.get('error')}" if code else None,
    )


def wait(ctx: Context, jobs: list[str], timeout: float | None, interval: float) -> Result:
    """Wait until every job is final, showing progress on stderr.

    Args:
        ctx: CLI context.
        jobs: Job ids.
        timeout: Give up after this many seconds (None: wait forever).
        interval: Seconds between polls.

    Returns:
        Exit 0 if all succeeded, 1 if any failed, was poisoned or is unfinished at timeout.
    """
    ids = [_job_id(j) for j in jobs]
    start = time.monotonic()
    bar = Progress(len(ids), enabled=ctx.output != "json")
    rows: dict[str, dict[str, Any]] = {}
    try:
        while True:
            for job_id in ids:
                if rows.get(job_id, {}).get("status") in FINAL:
                    continue
                row = ctx.joblog.get(job_id)
                rows[job_id] = to_jsonable(row) if row else {"job_id": job_id, "status": "unknown"}
            counts: dict[str, int] = {}
            for doc in rows.values():
                counts[str(doc["status"])] = counts.get(str(doc["status"]), 0) + 1
            done = sum(counts.get(s, 0) for s in FINAL)
            bar.update(done, ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
            if done == len(ids):
                break
            if timeout is not None and time.monotonic() - start > timeout:
                break
            time.sleep(interval)
    finally:
        bar.close()
    summary = [
        {"job_id": j, "status": rows[j]["status"], "error": rows[j].get("error") or None}
        for j in ids
    ]
    bad = [s for s in summary if s["status"] != "succeeded"]
    error = None
    if bad:
        error = f"{len(bad)} of {len(ids)} jobs did not succeed" + (
            " (timed out waiting)" if any(s["status"] not in FINAL for s in bad) else ""
        )

    def text(data: list[dict[str, Any]]) -> str:
        return "\n".join(
            f"{d['job_id']}\t{d['status']}" + (f"\t{d['error']}" if d["error"] else "")
            for d in data
        )

    return Result(summary, text, code=EXIT_ERROR if bad else 0, error=error)


def results(ctx: Context, job: str, fmt: int, download: Path | None) -> Result:
    """Print or download one result file of a succeeded job.

    Args:
        ctx: CLI context.
        job: Job id.
        fmt: Output format (6, 7, 11 or 15).
        download: Directory or file to save to; None prints to stdout.
    """
    doc = _row(ctx, job)
    if doc.get("status") != "succeeded":
        raise CliError(
            f"job {job} is {doc.get('status')}, so it has no results yet"
            + (f": {doc.get('error')}" if doc.get("error") else "; `blast-jobs wait` waits for it")
        )
    name = f"{doc['job_id']}/{FORMAT_FILES[fmt]}"
    container = ctx.storage.container(ctx.cfg.results_container)
    try:
        data = container.download_blob(name).readall()
    except ResourceNotFoundError:
        raise CliError(
            f"job {job} has no format {fmt} output; submit it with --outfmt {fmt}"
        ) from None
    if download is not None:
        target = download / FORMAT_FILES[fmt] if download.is_dir() else download
        target.write_bytes(data)
        info = {"job_id": doc["job_id"], "format": fmt, "path": str(target), "bytes": len(data)}
        return Result(info, lambda d: f"saved {d['path']} ({d['bytes']} bytes)")
    info = {"job_id": doc["job_id"], "format": fmt, "text": data.decode("utf-8", "replace")}
    return Result(info, raw=data)


def recent(ctx: Context, since: str) -> Result:
    """Jobs submitted within the last ``since``.

    Args:
        ctx: CLI context.
        since: Duration such as ``15m``.
    """
    try:
        seconds = parse_duration(since)
    except ValueError as exc:
        raise CliError(str(exc), code=2) from None
    now = time.time()
    docs = [to_jsonable(r) for r in ctx.joblog.recent(now - seconds, now)]

    def text(data: list[dict[str, Any]]) -> str:
        if not data:
            return f"no jobs submitted in the last {since}"
        return "\n".join(
            f"{d['job_id']}\t{d.get('status')}\t{d.get('db', '')}\t"
            f"{d.get('hits', '') if d.get('hits') is not None else ''}\t{d.get('error') or ''}"
            for d in data
        )

    return Result(docs, text)
