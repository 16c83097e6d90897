"""``blast-jobs``: submit BLAST jobs, follow them, fetch results, manage databases.

A thin command line (Typer, as ``deployer``) over :class:`blast_client.BlastClient`: this
module declares the commands and their options; :mod:`.jobs`, :mod:`.submit` and :mod:`.db`
do the work and return a :class:`~blast_client.cli.render.Result`. Storage settings come from
the same environment variables as the worker (see :mod:`blast_client.config`). ``--output
text|json`` is accepted before and after the command (:mod:`blast_client.cli.output`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from blast_client.cli import db, jobs, submit
from blast_client.cli.output import OutputOpt, remember_output
from blast_client.cli.render import run
from blast_client.demo import DemoSpec
from blast_client.messages import FORMAT_FILES, OUTPUT_FORMATS, PROGRAMS

app = typer.Typer(
    name="blast-jobs",
    help="Submit and follow BLAST jobs run by blast-worker.",
    epilog="Exit codes: 0 success, 1 failure (job failed, storage unreachable), "
    "2 bad usage or input.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Manage databases.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.callback()
def _app(output: OutputOpt = None) -> None:
    """Submit and follow BLAST jobs run by blast-worker."""
    remember_output(output)  # for each command whose own --output is not given


@db_app.callback()
def _db(output: OutputOpt = None) -> None:
    """Manage databases."""
    remember_output(output, nested=True)


def _formats(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give formats like 6 or 6,15") from None


def _program(value: str) -> str:
    if value not in PROGRAMS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(PROGRAMS)}")
    return value


def _result_format(value: int) -> int:
    if value not in FORMAT_FILES:
        raise typer.BadParameter(f"{value} is not one of {', '.join(map(str, FORMAT_FILES))}")
    return value


@app.command("init")
def init(
    demo_db: Annotated[
        str | None,
        typer.Option("--demo-db", metavar="NAME", help="Also build and upload the demo database."),
    ] = None,
    demo_seqs: Annotated[int, typer.Option(help="Demo subjects.")] = DemoSpec.seqs,
    demo_seq_len: Annotated[int, typer.Option(help="Subject length.")] = DemoSpec.seq_len,
    seed: Annotated[int, typer.Option(help="Demo PRNG seed.")] = DemoSpec.seed,
    force: Annotated[bool, typer.Option(help="Rebuild the demo database if present.")] = False,
    output: OutputOpt = None,
) -> None:
    """Create queues, table, containers (and the demo database)."""
    spec = DemoSpec(seqs=demo_seqs, seq_len=demo_seq_len, seed=seed)
    run("init", output, lambda ctx: db.init(ctx, demo_db, spec, force))


@app.command("submit")
def submit_jobs(
    db_name: Annotated[str, typer.Option("--db", help="Database name.")],
    files: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="FASTA", help="Query files; none or - for stdin.", show_default=False
        ),
    ] = None,
    program: Annotated[
        str, typer.Option(callback=_program, help=f"One of {', '.join(PROGRAMS)}.")
    ] = "blastn",
    evalue: Annotated[float | None, typer.Option(help="BLAST -evalue.")] = None,
    max_target_seqs: Annotated[int | None, typer.Option(help="BLAST -max_target_seqs.")] = None,
    word_size: Annotated[int | None, typer.Option(help="BLAST -word_size.")] = None,
    task: Annotated[str | None, typer.Option(help="BLAST -task.")] = None,
    outfmt: Annotated[
        str | None,
        typer.Option(
            help="Derived formats: "
            + ", ".join(map(str, sorted(OUTPUT_FORMATS)))
            + " (e.g. 6,15; the archive, 11, is stored with 15)."
        ),
    ] = None,
    batch_len: Annotated[
        int | None,
        typer.Option(help="Residues per job (default after ElasticBLAST: 5000000 for blastn)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Label recorded with the jobs.")] = None,
    run_id: Annotated[
        str | None,
        typer.Option(help="Run the jobs belong to (`blast-jobs run-jobs` lists them)."),
    ] = None,
    hit_fasta: Annotated[
        bool,
        typer.Option(
            "--hit-fasta",
            help="Also store each hit's whole subject sequence as FASTA (blastdbcmd; "
            "costs a lookup and an upload per job).",
        ),
    ] = False,
    output: OutputOpt = None,
) -> None:
    """Queue FASTA queries (prints job ids)."""
    options: dict[str, object] = {
        k: v
        for k, v in {
            "evalue": evalue,
            "max_target_seqs": max_target_seqs,
            "word_size": word_size,
            "task": task,
            "outfmt": _formats(outfmt),
        }.items()
        if v is not None
    }
    run(
        "submit",
        output,
        lambda ctx: submit.submit(
            ctx, files or [], program, db_name, options, batch_len, name, run_id, hit_fasta
        ),
    )


@app.command("status")
def status(
    job: Annotated[str, typer.Argument(metavar="JOB", help="Job id.")],
    output: OutputOpt = None,
) -> None:
    """Show one job (exit 1 if it did not succeed)."""
    run("status", output, lambda ctx: jobs.status(ctx, job))


@app.command("wait")
def wait(
    job_ids: Annotated[list[str], typer.Argument(metavar="JOB", help="Job ids.")],
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 2.0,
    output: OutputOpt = None,
) -> None:
    """Wait for jobs to finish."""
    run("wait", output, lambda ctx: jobs.wait(ctx, job_ids, timeout, interval))


@app.command("results")
def results(
    job: Annotated[str, typer.Argument(metavar="JOB", help="Job id.")],
    fmt: Annotated[
        int,
        typer.Option(
            "--format",
            callback=_result_format,
            help=f"One of {', '.join(map(str, sorted(FORMAT_FILES)))}.",
        ),
    ] = 6,
    download: Annotated[
        Path | None,
        typer.Option(metavar="PATH", help="Save to a file or directory."),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Print or download results."""
    run("results", output, lambda ctx: jobs.results(ctx, job, fmt, download))


@app.command("recent")
def recent(
    since: Annotated[str, typer.Option(help="Window such as 15m, 2h, 1d.")] = "1h",
    limit: Annotated[int | None, typer.Option(help="At most this many (the newest).")] = None,
    output: OutputOpt = None,
) -> None:
    """Jobs submitted recently."""
    run("recent", output, lambda ctx: jobs.recent(ctx, since, limit))


@app.command("run-jobs")
def run_jobs(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="Run id.")],
    output: OutputOpt = None,
) -> None:
    """The jobs of one run."""
    run("run-jobs", output, lambda ctx: jobs.run(ctx, run_id))


@db_app.command("upload")
def db_upload(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Database name.")],
    files: Annotated[list[str], typer.Argument(metavar="FILE", help="makeblastdb output files.")],
    output: OutputOpt = None,
) -> None:
    """Upload makeblastdb output."""
    run("db upload", output, lambda ctx: db.db_upload(ctx, name, files))


@db_app.command("fetch")
def db_fetch(
    name: Annotated[str, typer.Argument(metavar="NAME", help="NCBI's name, e.g. swissprot.")],
    source: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="ncbi (default), gcp, aws, or the URL of a mirror with NCBI's layout.",
        ),
    ] = None,
    date: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM-DD", help="The snapshot of that day (gcp and aws keep them)."
        ),
    ] = None,
    as_name: Annotated[
        str | None, typer.Option("--as", metavar="NAME", help="Store it under this name.")
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Stream an NCBI database into storage (verified, resumable).

    Streams NCBI's preformatted database NAME from the source into the database container,
    volume by volume through gunzip and tar, without local disk. Each tarball's MD5 is
    checked; the database appears only when all have passed. An interrupted fetch resumes;
    a current database is left alone.
    """
    run("db fetch", output, lambda ctx: db.db_fetch(ctx, name, source, date, as_name))


@db_app.command("list")
def db_list(output: OutputOpt = None) -> None:
    """Databases with title, molecule, size."""
    run("db list", output, db.db_list)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``blast-jobs``; exits with the command's code (2 on bad usage).

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).
    """
    app(args=None if argv is None else list(argv), prog_name="blast-jobs")


if __name__ == "__main__":
    main()
