"""``blast-jobs``: submit BLAST jobs, follow them, fetch results, manage databases.

Storage settings come from the same environment variables as the worker (see
:mod:`blast_worker.config`). Every command accepts ``--output json``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from azure.core.exceptions import AzureError, HttpResponseError

from blast_worker.cli import db, jobs, submit
from blast_worker.cli.context import Context
from blast_worker.cli.render import EXIT_USAGE, CliError, Result, emit, emit_error
from blast_worker.config import ConfigError
from blast_worker.demo import DemoSpec
from blast_worker.messages import PROGRAMS


def _outfmt(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give formats like 6 or 6,15") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exits 2 on usage errors)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--output", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    parser = argparse.ArgumentParser(
        prog="blast-jobs",
        parents=[common],
        description="Submit and follow BLAST jobs run by blast-worker.",
        epilog="Exit codes: 0 success, 1 error (job failed, storage unreachable), 2 usage.",
    )
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

    p = sub.add_parser("db", parents=[common], help="manage databases")
    dbsub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dbsub.add_parser("upload", parents=[common], help="upload makeblastdb output")
    up.add_argument("name")
    up.add_argument("files", nargs="+", metavar="FILE")
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
            ctx, args.files, args.program, args.db, options, args.batch_len, args.name
        )
    if args.command == "status":
        return jobs.status(ctx, args.job)
    if args.command == "wait":
        return jobs.wait(ctx, args.jobs, args.timeout, args.interval)
    if args.command == "results":
        return jobs.results(ctx, args.job, args.format, args.download)
    if args.command == "recent":
        return jobs.recent(ctx, args.since)
    if args.command == "db":
        return db.db_upload(ctx, args.name, args.files)
    raise CliError(f"unknown command {args.command}", code=EXIT_USAGE)


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
    except CliError as exc:
        code = emit_error(command, exc, ctx.output)
    except ConfigError as exc:
        code = emit_error(command, CliError(f"configuration error: {exc}", EXIT_USAGE), ctx.output)
    except HttpResponseError as exc:
        message = (exc.message or str(exc)).splitlines()[0]
        code = emit_error(
            command,
            CliError(
                f"storage refused the request ({exc.status_code}: {message}); check the account, "
                "the credentials and that `blast-jobs init` has run"
            ),
            ctx.output,
        )
    except AzureError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        code = emit_error(
            command,
            CliError(
                f"cannot reach storage ({first}); check AZURE_STORAGE_CONNECTION_STRING or "
                "AZURE_STORAGE_ACCOUNT and the network"
            ),
            ctx.output,
        )
    sys.exit(code)


if __name__ == "__main__":
    main()
