"""``submit``: read FASTA, split it into batches, queue one job per batch."""

from __future__ import annotations

import sys
from pathlib import Path

from blast_client.cli.context import Context
from blast_client.cli.render import Result
from blast_client.errors import InvalidRequest
from blast_client.fasta import MAX_INLINE_BYTES


def read_queries(files: list[str]) -> str:
    """The FASTA of ``files`` (``-`` or none: stdin), each ending with a newline.

    Args:
        files: FASTA paths; ``-`` reads stdin.

    Raises:
        InvalidRequest: if a file cannot be read.
    """
    texts: list[str] = []
    for path in files or ["-"]:
        if path == "-":
            texts.append(sys.stdin.read())
            continue
        try:
            texts.append(Path(path).read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"cannot read {path}: {exc}") from None
    return "".join(t if t.endswith("\n") else t + "\n" for t in texts)


def submit(
    ctx: Context,
    files: list[str],
    program: str,
    db: str,
    raw_options: dict[str, object],
    batch_len: int | None,
    name: str | None,
    run_id: str | None = None,
    hit_fasta: bool = False,
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
        run_id: Run the jobs belong to.
        hit_fasta: Have the workers store each job's hit sequences.
    """
    client = ctx.client  # first: without storage settings, fail before reading stdin
    text = read_queries(files)
    specs = client.plan(text, db, program, raw_options, batch_len, name, run_id, hit_fasta)
    ids = client.submit(specs)
    submitted = [
        {
            "job_id": job_id,
            "sequences": (spec.query.fasta or "").count(">"),
            "query": "inline"
            if len((spec.query.fasta or "").encode()) <= MAX_INLINE_BYTES
            else "blob",
        }
        for job_id, spec in zip(ids, specs, strict=True)
    ]
    return Result({"jobs": submitted}, lambda d: "\n".join(j["job_id"] for j in d["jobs"]))
