"""``blast-jobs``: submit BLAST jobs, follow them, fetch results, manage databases.

A thin command line over :class:`blast_client.BlastClient`. Storage settings come from the
same environment variables as the worker (see :mod:`blast_client.config`). ``--output
text|json`` is accepted before and after the command; JSON output is one envelope
(:mod:`blast_client.cli.render`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from blast_client.cli import db, jobs, submit
from blast_client.cli.context import Context
from blast_client.cli.render import Result, emit, emit_error
from blast_client.demo import DemoSpec
from blast_client.errors import BlastClientError, InvalidRequest
from blast_client.messages import PROGRAMS


def _outfmt(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give formats like 6 or 6,15") from None


def _output_flag(parser: argparse.ArgumentParser, default: str | None) -> None:
    # Subcommands default to SUPPRESS so that a flag given before the command survives.
    parser.add_argument(
        "--output",
        choices=("text", "json"),
        default=argparse.SUPPRESS if default is None else default,
        help="output format (default: text)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exits 2 on usage errors)."""
    common = argparse.ArgumentParser(add_help=False)
    _output_flag(common, None)
    parser = argparse.ArgumentParser(
        prog="blast-jobs",
        description="Submit and follow BLAST jobs run by blast-worker.",
        epilog="Exit codes: 0 success, 1 failure (job failed, storage unreachable), "
        "2 bad usage or input.",
    )
    _output_flag(parser, "text")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", parents=[common], help="create queues, table, containers")
    p.add_argument("--demo-db", metavar="NAME", help="also build and upload the demo database")
    p.add_argument("--demo-seqs", type=int, default=DemoSpec.seqs, help="demo subjects")
    p.add_argument("--demo-seq-len", type=int, default=DemoSpec.seq_len, help="subject length")
    p.add_argument("--seed", type=int, default=DemoSpec.seed, help="demo PRNG seed")
    p.add_argument("--force", action="store_true", help="rebuild the demo database if present")

    p = sub.add_parser("submit", parents=[common], help="queue FASTA queries (prints job ids)")
    p.add_argument("files", nargs="*", metavar="FASTA", help="query files; none or - for stdin")
    p.add_argument("--db", required=True, help="database name")
    p.add_argument("--program", choices=PROGRAMS, default="blastn")
    p.add_argument("--evalue", type=float)
    p.add_argument("--max-target-seqs", type=int)
    p.add_argument("--word-size", type=int)
    p.add_argument("--task")
    p.add_argument("--outfmt", type=_outfmt, help="derived formats: 6, 7, 15 (e.g. 6,15)")
    p.add_argument(
        "--batch-len",
        type=int,
        help="residues per job (default after ElasticBLAST: 5000000 for blastn)",
    )
    p.add_argument("--name", help="label recorded with the jobs")
    p.add_argument("--run-id", help="run the jobs belong to (`blast-jobs run-jobs` lists them)")

    p = sub.add_parser("status", parents=[common], help="show one job")
    p.add_argument("job")

    p = sub.add_parser("wait", parents=[common], help="wait for jobs to finish")
    p.add_argument("jobs", nargs="+", metavar="JOB")
    p.add_argument("--timeout", type=float, help="give up after this many seconds")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between polls")

    p = sub.add_parser("results", parents=[common], help="print or download results")
    p.add_argument("job")
    p.add_argument("--format", type=int, choices=(6, 7, 11, 15), default=6)
    p.add_argument("--download", type=Path, metavar="PATH", help="save to a file or directory")

    p = sub.add_parser("recent", parents=[common], help="jobs submitted recently")
    p.add_argument("--since", default="1h", help="window such as 15m, 2h, 1d (default 1h)")
    p.add_argument("--limit", type=int, help="at most this many (the newest)")

    p = sub.add_parser("run-jobs", parents=[common], help="the jobs of one run")
    p.add_argument("run_id", metavar="RUN_ID")

    p = sub.add_parser("db", parents=[common], help="manage databases")
    dbsub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dbsub.add_parser("upload", parents=[common], help="upload makeblastdb output")
    up.add_argument("name")
    up.add_argument("files", nargs="+", metavar="FILE")
    fetch = dbsub.add_parser(
        "fetch",
        parents=[common],
        help="stream an NCBI database into storage (verified, resumable)",
        description="Stream NCBI's preformatted database NAME from the source into the "
        "database container, volume by volume through gunzip and tar, without local disk. "
        "Each tarball's MD5 is checked; the database appears only when all have passed. "
        "An interrupted fetch resumes; a current database is left alone.",
    )
    fetch.add_argument("name", metavar="NAME", help="NCBI's name, e.g. swissprot")
    fetch.add_argument(
        "--source",
        metavar="URL",
        help="ncbi (default), gcp, aws, or the URL of a mirror with NCBI's layout",
    )
    fetch.add_argument(
        "--date", metavar="YYYY-MM-DD", help="the snapshot of that day (gcp and aws keep them)"
    )
    fetch.add_argument("--as", dest="as_name", metavar="NAME", help="store it under this name")
    dbsub.add_parser("list", parents=[common], help="databases with title, molecule, size")
    return parser


def dispatch(ctx: Context, args: argparse.Namespace) -> Result:
    """Run the chosen command.

    Args:
        ctx: CLI context.
        args: Parsed arguments.
    """
    if args.command == "init":
        spec = DemoSpec(seqs=args.demo_seqs, seq_len=args.demo_seq_len, seed=args.seed)
        return db.init(ctx, args.demo_db, spec, args.force)
    if args.command == "submit":
        options: dict[str, object] = {
            k: v
            for k, v in {
                "evalue": args.evalue,
                "max_target_seqs": args.max_target_seqs,
                "word_size": args.word_size,
                "task": args.task,
                "outfmt": args.outfmt,
            }.items()
            if v is not None
        }
        return submit.submit(
            ctx, args.files, args.program, args.db, options, args.batch_len, args.name, args.run_id
        )
    if args.command == "status":
        return jobs.status(ctx, args.job)
    if args.command == "wait":
        return jobs.wait(ctx, args.jobs, args.timeout, args.interval)
    if args.command == "results":
        return jobs.results(ctx, args.job, args.format, args.download)
    if args.command == "recent":
        return jobs.recent(ctx, args.since, args.limit)
    if args.command == "run-jobs":
        return jobs.run(ctx, args.run_id)
    if args.command == "db" and args.db_command == "list":
        return db.db_list(ctx)
    if args.command == "db" and args.db_command == "fetch":
        return db.db_fetch(ctx, args.name, args.source, args.date, args.as_name)
    if args.command == "db":
        return db.db_upload(ctx, args.name, args.files)
    raise InvalidRequest(f"unknown command {args.command}")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``blast-jobs``.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).
    """
    args = build_parser().parse_args(argv)
    ctx = Context(output=args.output)
    command = args.command if args.command != "db" else f"db {args.db_command}"
    try:
        code = emit(command, dispatch(ctx, args), ctx.output)
    except BlastClientError as exc:
        code = emit_error(command, exc, ctx.output)
    sys.exit(code)


if __name__ == "__main__":
    main()
