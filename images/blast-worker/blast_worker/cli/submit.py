"""``submit``: read FASTA, split it into batches, queue one job per batch."""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path

from blast_worker.cli.context import Context
from blast_worker.cli.render import CliError, Result
from blast_worker.fasta import (
    DEFAULT_BATCH_LEN,
    MAX_INLINE_BYTES,
    FastaError,
    batch_records,
    join_records,
    validate_fasta,
)
from blast_worker.messages import JobSpec, MessageError, Options, Query, parse_options
from blast_worker.names import NameError_, check_db_name


def new_job_id(now: float | None = None) -> str:
    """A fresh, time-sortable job id: ``YYYYMMDDTHHMMSS-<8 hex>``.

    Args:
        now: Epoch seconds; defaults to the clock.
    """
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(4)}"


def plan_jobs(
    text: str, program: str, db: str, options: Options, batch_len: int, name: str | None
) -> list[JobSpec]:
    """Split a FASTA text into job specs (pure; blob upload happens in :func:`submit`).

    Args:
        text: All query FASTA.
        program: BLAST program.
        db: Database name.
        options: Validated options.
        batch_len: Residues per batch.
        name: Label for the jobs.

    Raises:
        CliError: if the FASTA is not valid for ``program``.
    """
    try:
        records = validate_fasta(text, program)
    except FastaError as exc:
        raise CliError(f"the query is not valid: {exc}", code=2) from None
    specs: list[JobSpec] = []
    for batch in batch_records(records, batch_len):
        fasta = join_records(batch)
        specs.append(JobSpec(new_job_id(), program, db, Query(fasta=fasta), options, name))
    return specs


def submit(
    ctx: Context,
    files: list[str],
    program: str,
    db: str,
    raw_options: dict[str, object],
    batch_len: int | None,
    name: str | None,
) -> Result:
    """Queue jobs for the FASTA in ``files`` (``-`` or none: stdin).

    Args:
        ctx: CLI context.
        files: FASTA paths; ``-`` reads stdin.
        program: BLAST program.
        db: Database name.
        raw_options: Options from the command line, checked against the whitelist.
        batch_len: Residues per batch; default after ElasticBLAST for the program.
        name: Label recorded with the jobs.
    """
    try:
        check_db_name(db)
        options = parse_options(raw_options, program)
    except (NameError_, MessageError) as exc:
        raise CliError(str(exc), code=2) from None
    texts: list[str] = []
    for path in files or ["-"]:
        if path == "-":
            texts.append(sys.stdin.read())
            continue
        try:
            texts.append(Path(path).read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read {path}: {exc}", code=2) from None
    specs = plan_jobs(
        "".join(t if t.endswith("\n") else t + "\n" for t in texts),
        program,
        db,
        options,
        batch_len or DEFAULT_BATCH_LEN[program],
        name,
    )
    storage = ctx.storage
    joblog = ctx.joblog
    inputs = storage.container(ctx.cfg.inputs_container)
    submitted: list[dict[str, object]] = []
    for spec in specs:
        fasta = spec.query.fasta or ""
        if len(fasta.encode()) > MAX_INLINE_BYTES:
            blob = f"{spec.job_id}/query.fa"
            inputs.upload_blob(blob, fasta.encode(), overwrite=True)
            spec = JobSpec(spec.job_id, program, db, Query(blob=blob), options, name)
        joblog.record_queued(spec.job_id, program, db, name)
        storage.queue.send_message(spec.to_message())
        submitted.append(
            {
                "job_id": spec.job_id,
                "sequences": fasta.count(">"),
                "query": "blob" if spec.query.blob else "inline",
            }
        )
    return Result({"jobs": submitted}, lambda d: "\n".join(j["job_id"] for j in d["jobs"]))
