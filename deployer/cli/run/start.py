"""``deployer run WORKLOAD QUERIES --db NAME``: start a run, follow it, merge its results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from blast_client.messages import OUTPUT_FORMATS

from deployer.cli import options as o
from deployer.cli.output import emit, err, guarded, out
from deployer.cli.run.show import Follower, Submitting, summary
from deployer.errors import DeployerError
from deployer.run import api


@guarded("run")
def command(
    workload: o.FileArg,
    queries: Annotated[Path, typer.Argument(help="Query FASTA file.")],
    db: Annotated[str, typer.Option("--db", help="Database name (`blast-jobs db list`).")],
    program: Annotated[
        str, typer.Option("--program", help="blastn, blastp, blastx, tblastn or tblastx.")
    ] = "blastn",
    task: Annotated[str | None, typer.Option("--task", help="BLAST -task.")] = None,
    evalue: Annotated[float | None, typer.Option("--evalue", help="BLAST -evalue.")] = None,
    max_target_seqs: Annotated[
        int | None,
        typer.Option("--max-target-seqs", help="BLAST -max_target_seqs (default BLAST's 500)."),
    ] = None,
    outfmt: Annotated[
        str,
        typer.Option(
            "--outfmt",
            help=f"Merged formats: {', '.join(map(str, sorted(OUTPUT_FORMATS)))} (e.g. 6,15).",
        ),
    ] = "6",
    batch_len: Annotated[
        int | None,
        typer.Option(
            "--batch-len",
            help="Residues per batch (default: tuned from ElasticBLAST's length, the "
            "threads and the workers; see `deployer plan --queries`).",
        ),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Results directory (default ./blast-run-<id>/).")
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Return once submitted; the janitor finishes.")
    ] = False,
    output: o.OutputOpt = None,
    subscription: o.Subscription = None,
    resource_group: o.ResourceGroup = None,
) -> None:
    """Search QUERIES against a database on run-to-completion workers; merge the results;
    leave nothing running."""
    overrides = o.overrides(subscription, resource_group)
    request = api.RunRequest(
        workload,
        queries,
        db,
        program,
        task,
        evalue,
        api.parse_outfmt(outfmt),
        batch_len,
        detach,
        max_target_seqs,
    )
    with Submitting(output != o.Output.json and err.is_terminal) as submitting:
        started = api.start(request, overrides, on_submitted=submitting)
    run = started.run
    err.print(
        f"run {run.run_id}: {len(run.batches)} batches of {run.queries} queries; "
        f"groups {', '.join(started.groups)}",
        markup=False,
    )
    if started.tuning is not None:
        err.print(started.tuning.describe(), markup=False)
    if started.pinning is not None:
        err.print(started.pinning, markup=False)
    if detach:
        emit(
            "run",
            {
                "run_id": run.run_id,
                "batches": len(run.batches),
                "groups": list(started.groups),
                "tuning": started.tuning.describe() if started.tuning else None,
                "shards": started.pinning,
            },
            output,
            lambda r: out.print(
                f"{r['run_id']} (follow it with `deployer run status {r['run_id']}`)", markup=False
            ),
        )
        return
    live = output != o.Output.json and err.is_terminal
    with Follower(live) as follow:
        api.watch(run.run_id, on_progress=follow, scaler=started.scaler, scope=started.scope)
    result = api.results(run.run_id, out_dir, scope=started.scope)
    if result.status != "succeeded":
        if output != o.Output.json:
            summary(result)
        raise DeployerError(
            f"run {run.run_id} {result.status}: {result.reason}",
            hint=f"the manifest in {result.out_dir}/ lists every batch and its state"
            if result.out_dir
            else None,
            code="RunFailed",
            data=result,  # the envelope's data: the summary of what did finish
        )
    emit("run", result, output, summary)
