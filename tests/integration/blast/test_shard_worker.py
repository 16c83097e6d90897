"""A worker searches one shard of a database: it caches only that shard, and the shards'
results, merged, equal one search of the whole database (real worker, Azurite, blastn).

The database (:data:`testbed.shard_data.NUCL`: 5 volumes, hits in every one, exact ties across
volumes) is uploaded as ``blast-jobs db upload`` does; jobs carrying ``shard`` go on the queue
as ``deployer run`` sends them, and one worker takes them all. Its cache then holds one
directory per shard with only that shard's volumes, the database's own files and the shard's
alias (the whole database's statistics), and :mod:`blast_client.shardmerge` of the stored
results is byte-identical to ``blastn`` over the whole database (outfmt 6 and 7; 15 as JSON).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from blast_client import shardmerge, shards
from blast_client.client import new_job_id
from blast_client.messages import JobSpec, Options, Query, ShardRef

from testbed import shard_data
from testbed.blast_stack import CACHE_IN_CONTAINER, Stack
from testbed.shard_data import NUCL

TASK = "megablast"
CASES = ((2, None), (4, 5))
"""(shards, max_target_seqs): BLAST's default limit in 2 shards, one below the hits in 4."""


def _direct(stack: Stack, db: Path, query: Path, fmt: int, limit: int | None) -> bytes:
    """One search of the whole database. Outfmt 15 goes through the archive as a worker's
    does: ``blastn -outfmt 15`` itself reports each query's own ``eff_space``, while
    ``blast_formatter`` repeats the first query's (so does an unsharded run)."""
    most = ["-max_target_seqs", str(limit)] if limit else []
    argv = ["blastn", "-db", str(db), "-query", str(query), "-num_threads", "1", "-task", TASK]
    if fmt != 15:
        return stack.run_tool([*argv, "-outfmt", str(fmt), *most]).stdout
    archive = query.with_name(f"direct-{limit}.asn1")
    stack.run_tool([*argv, "-outfmt", "11", "-out", str(archive), *most])
    formatter = ["blast_formatter", "-archive", str(archive), "-outfmt", "15", *most]
    return stack.run_tool(formatter).stdout


def _whole_db_line(text: bytes, db: str) -> bytes:
    """Outfmt 7 with its ``# Database:`` lines naming ``db`` (direct and worker paths differ)."""
    return re.sub(rb"^# Database: .*$", b"# Database: " + db.encode(), text, flags=re.M)


def _json_db(text: bytes) -> Any:
    doc = json.loads(text)
    for report in doc["BlastOutput2"]:
        report["report"]["search_target"]["db"] = NUCL.name
    return doc


def _difference(a: Any, b: Any, where: str = "") -> str | None:
    """Where two JSON values first differ, and how; None when equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{where}/{key}: only in {'direct' if key in b else 'merged'}"
            found = _difference(a[key], b[key], f"{where}/{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items merged, {len(b)} direct"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{where}: merged {a!r}, direct {b!r}"


def test_workers_search_shards_and_the_merge_equals_one_search(
    stack: Stack, tmp_path: Path
) -> None:
    build = tmp_path / "db"
    build.mkdir()
    fasta, query = shard_data.write(NUCL, build)
    stack.run_tool(shard_data.makeblastdb_argv(NUCL, str(fasta), str(build / NUCL.name), True))
    listing = stack.run_tool(["blastdbcmd", "-list", str(build), "-list_outfmt", "%f\t%n\t%l"])
    volumes, nseq, letters = shard_data.volumes(listing.stdout.decode(), build, NUCL.name)
    files = sorted(p for p in build.iterdir() if p.name.startswith(f"{NUCL.name}."))
    files = [p for p in files if p.suffix != ".fa"]
    stack.client.upload_database(NUCL.name, files)

    options = Options(task=TASK, outfmt=(6, 7, 15))
    jobs: dict[tuple[int, int], str] = {}
    specs = []
    for count, limit in CASES:
        for index in range(count):
            job = jobs[count, index] = new_job_id()
            specs.append(
                JobSpec(
                    job, "blastn", NUCL.name, Query(fasta=query.read_text()),
                    Options(task=TASK, max_target_seqs=limit, outfmt=options.outfmt),
                    run_id=f"run-{stack.suffix}", shard=ShardRef(index, count),
                )
            )  # fmt: skip
    worker = stack.start_worker()
    stack.client.submit(specs)
    statuses = stack.client.wait(list(jobs.values()), timeout=300, interval=0.5)
    assert [s.status for s in statuses] == ["succeeded"] * len(jobs), [
        (s.job_id, s.status, s.error) for s in statuses
    ]

    # The cache: one directory per shard, its volumes and the database's own files only.
    assert not (worker.cache / NUCL.name).exists(), "the whole database was cached"
    sizes = {p.name: p.stat().st_size for p in files}
    alias = (build / f"{NUCL.name}.nal").read_text()
    for count, _ in CASES:
        parts = shards.split(NUCL.name, volumes, count)
        stored = shards.split(NUCL.name, shards.stored_volumes(NUCL.name, alias, sizes), count)
        assert [s.volumes for s in stored] == [
            tuple(shards.Volume(v.name, 0, 0, v.bytes) for v in s.volumes) for s in parts
        ], "workers cut the stored database as the deployer's volumes do"
        for shard in stored:
            cached = worker.cache / shard.name
            got = {p.name for p in cached.iterdir()} - {".ready.json"}
            want = set(shards.shard_files(shard, list(sizes))) | {f"{shard.name}.nal"}
            assert got == want, f"{shard.name} caches {sorted(got)}"
            assert (cached / f"{shard.name}.nal").read_text() == shards.alias_file(
                shard, NUCL.name, nseq, letters
            )

    # The merge of each case's shards equals one search of the whole database.
    client = stack.client
    for count, limit in CASES:
        parts = shards.split(NUCL.name, volumes, count)
        ids = [jobs[count, i] for i in range(count)]
        archives = [client.result(j, 11) for j in ids]

        def results(fmt: int, ids: list[str] = ids) -> list[bytes]:
            return [client.result(j, fmt) for j in ids]

        direct6 = _direct(stack, build / NUCL.name, query, 6, limit)
        assert len({ln.split(b"\t")[1] for ln in direct6.splitlines()}) > (limit or 20)
        assert shardmerge.merge_tabular(archives, results(6), limit) == direct6, (count, limit)
        whole = f"{CACHE_IN_CONTAINER}/{NUCL.name}/{NUCL.name}"
        merged7 = shardmerge.merge_commented(archives, results(7), limit)
        assert merged7.count(f"# Database: {whole}\n".encode()) == 3, "names the whole database"
        direct7 = _whole_db_line(_direct(stack, build / NUCL.name, query, 7, limit), whole)
        assert merged7 == direct7, (count, limit)
        firsts = [s.first_oid for s in parts]
        merged15 = shardmerge.merge_json(archives, results(15), limit, firsts, (nseq, letters))
        direct15 = _direct(stack, build / NUCL.name, query, 15, limit)
        assert _difference(_json_db(merged15), _json_db(direct15)) is None, (count, limit)
