"""Sharded versus unsharded versus direct BLAST searches alone on the same cores (the run's
target: sharded wall time within 1.3x of unsharded, ``bench_run_direct.py --shards``).

On ``--cores`` cores, the same queries against the same database (``--subjects`` sequences,
cut into volumes by ``makeblastdb -max_file_sz``):

* **direct**: one blastn with ``-num_threads`` = cores;
* **unsharded**: cores single-thread searches of the whole database, each with its share of
  the queries (a run's batches on one-thread workers);
* **sharded**: cores single-thread searches of one shard each (alias files with the whole
  database's statistics, :mod:`blast_client.shards`) with all the queries, then the merge
  (:mod:`blast_client.shardmerge`, timed on the host).

Each search writes the archive and its outfmt 6 as a worker does. Billed vCPU-s is cores x
wall time (what one-vCPU groups alive for the whole run would cost). Each shard aligns and
returns up to ``max_target_seqs`` subjects per query, so queries with more hits than the
limit (these queries hit a quarter of the database) cost more sharded: compare
``--max-target-seqs 20``. BLAST runs in the worker image, timed inside its container; this
measures the searches and the merge, not ACI's queueing or group start-up:
``bench_run_direct.py --shards N`` times whole runs, sharded and not, with their bills. The
merged outfmt 6 is checked byte-identical to the direct search's. Run from the repository root:

    .venv/bin/python bench/bench_shard_search.py [--cores 2] [--subjects 4000] [--queries 40]
        [--smoke]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import docker
import typer
from blast_client import shardmerge, shards

from testbed import shard_data
from testbed.bench import run
from testbed.blast_stack import BlastTools, require_images
from testbed.engine import StackError

# Runs argv lists in parallel groups inside the container; prints each group's wall time.
TIMED = """
import json, subprocess, sys, time
out = []
for group in json.loads(sys.argv[1]):
    t = time.perf_counter()
    procs = [subprocess.Popen(a, stdout=subprocess.DEVNULL) for a in group]
    if any(p.wait() for p in procs):
        sys.exit("a search failed")
    out.append(time.perf_counter() - t)
print(json.dumps(out))
"""


def _search(db: Path, query: Path, out: Path, threads: int, task: str, most: int) -> list[str]:
    return [
        "blastn", "-db", str(db), "-query", str(query), "-task", task, "-outfmt", "11",
        "-out", str(out), "-num_threads", str(threads), "-max_target_seqs", str(most),
    ]  # fmt: skip


def _format(archive: Path, out: Path) -> list[str]:
    return ["blast_formatter", "-archive", str(archive), "-outfmt", "6", "-out", str(out)]


def main(
    cores: Annotated[int, typer.Option(help="cores, shards and workers")] = 2,
    subjects: Annotated[int, typer.Option(help="database sequences")] = 4000,
    queries: Annotated[int, typer.Option(help="queries (copies of 3)")] = 40,
    task: str = "blastn",
    max_target_seqs: Annotated[
        int,
        typer.Option(
            help="BLAST's limit (default 500); each shard aligns and returns up to this many "
            "subjects per query, so queries with more hits than the limit cost more sharded"
        ),
    ] = shards.DEFAULT_MAX_TARGET_SEQS,
    repeat: Annotated[int, typer.Option(help="runs per setting; best is kept")] = 2,
) -> None:
    """Build the database, run the three configurations, print their figures."""
    client = docker.from_env()
    require_images(client)
    # Volumes of about 1.6 M bases, so even the smoke database has several.
    max_file_sz = "400000" if subjects >= 1000 else "40000"
    data = shard_data.ShardData("benchnt", "nucl", subjects, max_file_sz, 5)
    with tempfile.TemporaryDirectory(prefix="bench-shard-") as tmp:
        root = Path(tmp)
        tools = BlastTools(client, root, f"bench{os.getpid()}shard")
        try:
            fasta, three = shard_data.write(data, root)
            records = three.read_text().split(">")[1:]
            query_text = "".join(f">{i}_{records[i % 3]}" for i in range(queries))
            query = root / "queries.fa"
            query.write_text(query_text)
            db = root / data.name
            tools.run(shard_data.makeblastdb_argv(data, str(fasta), str(db), True))
            listing = tools.run(["blastdbcmd", "-list", str(root), "-list_outfmt", "%f\t%n\t%l"])
            volumes, nseq, letters = shard_data.volumes(listing.stdout.decode(), root, data.name)
            count = min(cores, len(volumes))
            parts = shards.split(data.name, volumes, count)
            for shard in parts:
                alias = shards.alias_file(shard, data.name, nseq, letters)
                (root / f"{shard.name}.nal").write_text(alias)
            # The unsharded run's batches: the queries split into one file per worker.
            lines = [f">{r}" for r in query_text.split(">")[1:]]
            batches = [root / f"batch{i}.fa" for i in range(cores)]
            for i, path in enumerate(batches):
                path.write_text("".join(lines[i::cores]))
            most = max_target_seqs
            out = [root / f"s{s.index}" for s in parts]
            groups = [
                [_search(db, query, root / "direct.asn1", cores, task, most)],
                [_search(db, b, root / f"b{i}.asn1", 1, task, most)
                 for i, b in enumerate(batches)],
                [_search(root / s.name, query, o.with_suffix(".asn1"), 1, task, most)
                 for s, o in zip(parts, out, strict=True)],
                [_format(root / "direct.asn1", root / "direct.6")]
                + [_format(o.with_suffix(".asn1"), o.with_suffix(".6")) for o in out],
            ]  # fmt: skip
            best = [float("inf")] * 3
            for _ in range(repeat):
                timed = json.loads(tools.run(["python3", "-c", TIMED, json.dumps(groups)]).stdout)
                best = [min(b, t) for b, t in zip(best, timed[:3], strict=True)]
            archives = [o.with_suffix(".asn1").read_bytes() for o in out]
            tabular = [o.with_suffix(".6").read_bytes() for o in out]
            t = time.perf_counter()
            merged = shardmerge.merge_tabular(archives, tabular, most)
            merge_s = time.perf_counter() - t
        finally:
            tools.close()
        identical = merged == (root / "direct.6").read_bytes()
    direct, unsharded, sharded = best
    sharded += merge_s
    print(
        f"{queries} queries x {data.subjects} subjects ({len(volumes)} volumes, "
        f"{letters} letters), task {task}, max_target_seqs {max_target_seqs}, "
        f"{cores} cores, {count} shards"
    )
    print(f"direct   : {direct:7.2f} s  {cores * direct:8.1f} vCPU-s (one blastn, {cores} threads)")
    print(f"unsharded: {unsharded:7.2f} s  {cores * unsharded:8.1f} vCPU-s ({cores} batches)")
    print(
        f"sharded  : {sharded:7.2f} s  {cores * sharded:8.1f} vCPU-s ({count} shards; merge "
        f"{merge_s:.2f} s)"
    )
    print(f"sharded / unsharded: {sharded / unsharded:.2f}x (target <= 1.3x)")
    print(f"merged outfmt 6 byte-identical to the direct search: {identical}")
    if not identical:
        sys.exit("the merged results differ from the direct search")


if __name__ == "__main__":
    try:
        run(main, smoke={"subjects": 400, "queries": 3, "repeat": 1})
    except StackError as exc:
        sys.exit(f"{Path(__file__).name}: cannot start the test stack: {exc}")
