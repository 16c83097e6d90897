"""A sharded ``deployer run`` whose Spot worker is evicted while it searches a shard: the run
succeeds, every batch x shard job succeeded exactly once, and the merged outfmt 6 is
byte-identical to one direct search of the whole database (no hit lost or duplicated).

Real parts only: the ACI emulator evicts the group as Azure does (its containers killed), the
janitor replaces the group for its shard (a sharded run on Spot workers is autoscaled), the
new worker redoes the job once its lease runs out, and the merge goes through
``deployer run``'s own ``results``.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from blast_client import BlastClient, shards
from blast_client.fasta import iter_records

from testbed import shard_data
from testbed.blast_stack import BlastTools
from testbed.engine import wait_for
from testbed.run_stack import BackgroundRun, RunStack, write
from testbed.shard_data import PROT

pytestmark = pytest.mark.docker

SEARCH_SECONDS = 6.0
"""Each shard job of the first batch searches at least this long at the fastest rate measured
here: far longer than the test takes from seeing such a search to evicting its group, on any
machine (a loaded one searches slower still)."""
SHARDS = 2
BIG_WORKER = 20_000_000_000
"""bytes_to_cache of the whole database: each shard's worker needs its own group, so an
eviction kills one worker and the other goes on."""


def _sized_queries(tools: BlastTools, db: Path, three: Path) -> tuple[str, int]:
    """Queries for 2 batches, the first of which searches at least SEARCH_SECONDS in each
    shard, and the batch length that cuts them so.

    The search of the smaller shard (by letters) is timed as a worker runs it (its alias
    beside the volumes, with the whole database's statistics), and the first batch gets as
    many queries as it takes at that rate; the second is one round of the records, so the
    evicted shard's new worker soon redoes the evicted job. The queries are the shard data's
    three, repeated under names of their own: one in three is one of the two with hits across
    every volume, the others the one without, which searches as long and formats in no time.
    """
    root = db.parent
    listing = tools.run(["blastdbcmd", "-list", str(root), "-list_outfmt", "%f\t%n\t%l"])
    volumes, nseq, letters = shard_data.volumes(listing.stdout.decode(), root, PROT.name)
    parts = shards.split(PROT.name, volumes, SHARDS)
    smaller = min(parts, key=lambda s: sum(v.letters for v in s.volumes))
    alias = root / f"{smaller.name}.pal"
    alias.write_text(shards.alias_file(smaller, PROT.name, nseq, letters))
    q1, q2, q3 = [f">{r}" for r in three.read_text().split(">")[1:]]
    records = [q1, q3, q3, q2, q3, q3]
    argv = ["blastp", "-db", str(root / smaller.name), "-outfmt", "6", "-num_threads", "1"]
    cost = tools.cost(argv, records)
    alias.unlink()
    n = len(records)
    per_batch = -(-cost.records_for(SEARCH_SECONDS) // n) * n  # whole rounds of the records
    text = "".join(f">{i}_{records[i % n][1:]}" for i in range(per_batch + n))
    batch_len = sum(len(r.sequence) for r in list(iter_records(text))[:per_batch])
    return text, batch_len


def _searching(stack: RunStack, jobs: BlastClient, rid: str) -> tuple[str, Any] | None:
    """A Spot worker group of run ``rid`` whose blastp is searching a shard job of the run's
    first (long) batch delivered once, and that job's row; None while there is none.

    The worker searches in ``<work dir>/<job id>/``, so blastp's command line names the job.
    Batch job ids ascend in batch order, and a shard's job id is its batch's plus ``-sN``.
    """
    rows = {j.job_id: j for j in jobs.run_jobs(rid)}
    if not rows:
        return None
    first = min(job_id.rsplit("-s", 1)[0] for job_id in rows)
    for group in stack.spot_groups(rid):
        for name, docker_id in stack.group_containers(str(group.name)).items():
            if not name.startswith("blast-worker"):
                continue
            try:
                procs = stack.client.containers.get(docker_id).top()["Processes"] or []
            except Exception:  # noqa: BLE001 - not started yet, or already gone
                continue
            for proc in procs:
                argv = str(proc[-1]).split()
                if argv[:1] != ["blastp"] or "-query" not in argv:
                    continue
                job_id = Path(argv[argv.index("-query") + 1]).parent.name
                row = rows.get(job_id)
                if job_id.rsplit("-s", 1)[0] != first or row is None:
                    continue
                if row.status == "running" and row.attempts == 1:
                    return str(group.name), row
    return None


def test_a_shards_worker_evicted_mid_search_loses_and_duplicates_no_hit(
    run_stack: RunStack, docker_client: Any, tmp_path: Path
) -> None:
    """2 batches x 2 shards on Spot workers (a group each, one per shard); the group of a
    worker seen searching a shard of the first batch is evicted; the run succeeds, each of the
    4 jobs succeeded once (the evicted one on a later delivery, by its shard's new worker), and
    the merged outfmt 6 equals one direct blastp of the whole database byte for byte."""
    stack = run_stack
    tools = BlastTools(docker_client, tmp_path, f"acitest{os.getpid()}evict")
    pool = ThreadPoolExecutor(1)
    run: BackgroundRun | None = None
    try:
        fasta, three = shard_data.write(PROT, tmp_path)
        db = tmp_path / PROT.name
        tools.run(shard_data.makeblastdb_argv(PROT, str(fasta), str(db), False))
        files = [p for p in tmp_path.glob(f"{PROT.name}.*") if p.suffix != ".fa"]
        jobs = BlastClient(connection_string=stack.connection_string)
        jobs.upload_database(PROT.name, files)
        text, batch_len = _sized_queries(tools, db, three)
        queries = write(tmp_path / "queries.fa", text)

        workload = stack.workload(
            "evict", workers=2, db=PROT.name, bytes_to_cache=BIG_WORKER, shards=SHARDS
        )
        spec = workload.read_text()
        workload.write_text(spec.replace("    databases:", "    priority: spot\n    databases:"))
        out = tmp_path / "out"
        run = stack.start(
            "--output", "json", "run", str(workload), str(queries), "--db", PROT.name,
            "--program", "blastp", "--outfmt", "6", "--batch-len", str(batch_len),
            "--out", str(out),
        )  # fmt: skip
        rid = run.submitted().split()[1].rstrip(":")
        group, row = wait_for(
            lambda: _searching(stack, jobs, rid), 240, "a worker searching a job", interval=0.3
        )
        # Never restored (ACI may keep an evicted group stopped): only another worker (the
        # janitor's replacement for that shard) can redo the job it was searching, which is
        # left running, once delivered.
        assert stack.evict(group, restore_after=None), f"{group} could not be evicted"
        cut = next(j for j in jobs.run_jobs(rid) if j.job_id == row.job_id)
        assert (cut.status, cut.attempts, cut.worker) == ("running", 1, row.worker), cut
        # The direct search runs while the run goes on (the evicted worker's core is free).
        direct = pool.submit(
            tools.run,
            ["blastp", "-db", str(db), "-query", str(queries), "-outfmt", "6", "-num_threads", "1"],
        )
        code, stdout, stderr = run.finish(timeout=600)
        assert code == 0, stderr[-4000:]
        direct6 = direct.result().stdout
    finally:
        if run is not None:
            run.close()
        pool.shutdown()
        tools.close()

    summary = json.loads(stdout)["data"]
    assert summary["status"] == "succeeded" and summary["failed_batches"] == 0, summary
    manifest = json.loads((out / "manifest.json").read_text())
    batches = manifest["batches"]
    assert len(batches) == 2 and manifest["parameters"]["shards"] == SHARDS
    # Every batch x shard job succeeded exactly once in the final record: one row each, no
    # other row, all succeeded; the evicted one on a later delivery by another worker.
    final = jobs.run_jobs(rid)
    wanted = [s["job_id"] for b in batches for s in b["shards"]]
    assert sorted(j.job_id for j in final) == sorted(wanted) and len(set(wanted)) == 4
    assert all(j.status == "succeeded" for j in final), [j.to_json() for j in final]
    redone = next(j for j in final if j.job_id == row.job_id)
    assert redone.attempts >= 2 and redone.worker != row.worker, redone.to_json()
    for b in batches:
        assert b["state"] == "succeeded"
        assert [(s["shard"], s["state"]) for s in b["shards"]] == [
            (1, "succeeded"),
            (2, "succeeded"),
        ]
    # No hit lost or duplicated: byte for byte one direct search of the whole database.
    merged6 = (out / "results.6.tsv").read_bytes()
    lines = merged6.decode().splitlines()
    assert lines and len(lines) == len(set(lines)), "a hit is duplicated in the merged output"
    assert merged6 == direct6, "merged outfmt 6 differs from one direct blastp of the database"
    assert summary["hits"] == len(lines)
    assert stack.groups("evict") == [], "groups left after the run"
