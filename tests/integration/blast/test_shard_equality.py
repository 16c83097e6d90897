"""Sharded searches merged equal one search of the whole database (real blastn and blastp).

A nucleotide database and a protein database of at least 4 volumes each
(:mod:`testbed.shard_data`: hits in every volume, exact ties across volumes, a query without
hits) are cut into 2 and 4 shards (alias files with the whole database's statistics,
:mod:`blast_client.shards`). Each shard is searched as a worker searches (archive, then
``blast_formatter``), and :mod:`blast_client.shardmerge` merges them. Outfmt 6 and 7 must be
byte-identical to one search of the whole database, and outfmt 15 equal as JSON; with
``max_target_seqs`` below the hits available too. From one archive, 6 is 7 without its comment
lines (a run's merge takes one from the other). BLAST runs in the worker image, all of a
case's commands in one ``docker exec``.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from blast_client import shardmerge, shards
from blast_client.merge import tabular_of_commented
from blast_client.messages import Options
from blast_worker.runner import blast_argv, formatter_argv

from testbed import shard_data
from testbed.blast_stack import BlastTools, require_images
from testbed.shard_data import NUCL, PROT, ShardData

FORMATS = (6, 7, 15)
RUN_ALL = (
    "import json, subprocess, sys\n"
    "for argv in json.loads(sys.argv[1]):\n"
    "    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)\n"
)


@dataclass(frozen=True)
class Db:
    """A built database: its path, volumes and totals."""

    data: ShardData
    path: Path
    volumes: tuple[shards.Volume, ...]
    sequences: int
    letters: int


@pytest.fixture(scope="module")
def tools(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BlastTools]:
    require_images(docker_client)
    root = tmp_path_factory.mktemp("shards")
    box = BlastTools(docker_client, root, f"acitest{os.getpid()}shard")
    try:
        yield box
    finally:
        box.close()


@pytest.fixture(scope="module")
def dbs(tools: BlastTools) -> dict[str, Db]:
    """Both databases, built once; the nucleotide one with -parse_seqids, the protein one
    without (its JSON ids are ordinal ids, which the merge makes global)."""
    root = tools.root
    for data, parse in ((NUCL, True), (PROT, False)):
        fasta, _ = shard_data.write(data, root)
        tools.run(shard_data.makeblastdb_argv(data, str(fasta), str(root / data.name), parse))
    listing = tools.run(["blastdbcmd", "-list", str(root), "-list_outfmt", "%f\t%n\t%l"])
    built = {}
    for data in (NUCL, PROT):
        vols, nseq, letters = shard_data.volumes(listing.stdout.decode(), root, data.name)
        assert len(vols) >= 4, f"{data.name} has {len(vols)} volumes"
        built[data.name] = Db(data, root / data.name, tuple(vols), nseq, letters)
    return built


def _search(program: str, db: Path, query: Path, out: Path, options: Options) -> list[list[str]]:
    """The worker's commands: the archive, then each format from it."""
    archive = out.with_suffix(".asn1")
    argv = [blast_argv(program, db, query, archive, options, 1)]
    return argv + [
        _from_file(formatter_argv(f, options), archive, out.with_suffix(f".{f}")) for f in FORMATS
    ]


def _from_file(argv: list[str], archive: Path, out: Path) -> list[str]:
    """The worker's formatter reads the archive on stdin and writes stdout; here, files."""
    i = argv.index("-archive")
    return [*argv[: i + 1], str(archive), *argv[i + 2 :], "-out", str(out)]


def _diff(name: str, want: bytes, got: bytes) -> str:
    lines = difflib.unified_diff(
        want.decode().splitlines(), got.decode().splitlines(), "direct", "sharded", lineterm=""
    )
    return f"{name} differs from the direct search:\n" + "\n".join(list(lines)[:60])


def _subjects(tabular: bytes, query: bytes) -> dict[bytes, bytes]:
    """Each subject of ``query`` in an outfmt 6 -> its (e-value, bit score)."""
    rows = [ln.split(b"\t") for ln in tabular.splitlines()]
    return {r[1]: r[10] + b" " + r[11] for r in reversed(rows) if r[0] == query}


def _tie_across_shards(direct: bytes, shards_found: list[dict[bytes, bytes]]) -> bool:
    """Whether two subjects of different shards tie in e-value and bit score."""
    where = {subject: i for i, found in enumerate(shards_found) for subject in found}
    keys: dict[bytes, set[int]] = {}
    for subject, key in _subjects(direct, b"q1").items():
        keys.setdefault(key, set()).add(where[subject])
    return any(len(s) > 1 for s in keys.values())


CASES = [
    pytest.param(db, program, task, count, limit, id=f"{task}-{count}shards-max{limit}")
    for db, program, task in (
        (NUCL.name, "blastn", "megablast"),
        (NUCL.name, "blastn", "blastn"),
        (PROT.name, "blastp", "blastp"),
    )
    # Each program in 2 shards with BLAST's default limit, and in 4 with a limit below the
    # hits available: every count, limit and program, at half the cost of all their products.
    for count, limit in ((2, None), (4, 5))
]


@pytest.mark.parametrize(("db_name", "program", "task", "count", "limit"), CASES)
def test_sharded_merge_equals_one_search_of_the_whole_database(
    tools: BlastTools,
    dbs: dict[str, Db],
    db_name: str,
    program: str,
    task: str,
    count: int,
    limit: int | None,
) -> None:
    db = dbs[db_name]
    root = tools.root
    case = root / f"{task}-{count}-{limit}"
    case.mkdir()
    query = root / f"{db_name}.query.fa"
    if limit is not None:
        # Many queries: BLAST then writes its archive as several documents, one per chunk
        # of queries, which the merge must read in turn.
        records = query.read_text().split(">")[1:]
        query = case / "many.fa"
        query.write_text(
            "".join(f">{'' if i < 3 else f'c{i}_'}{records[i % 3]}" for i in range(24))
        )
    options = Options(task=task, max_target_seqs=limit)
    parts = shards.split(db_name, db.volumes, count)
    for shard in parts:
        ext = "nal" if db.data.dbtype == "nucl" else "pal"
        text = shards.alias_file(shard, db_name, db.sequences, db.letters)
        (root / f"{shard.name}.{ext}").write_text(text)
    shard_options = Options(task=task, max_target_seqs=shards.shard_max_target_seqs(limit))
    direct_tsv = case / "direct.tsv"
    argv = [
        [program, "-db", str(db.path), "-query", str(query), "-outfmt", "6", "-out",
         str(direct_tsv), "-num_threads", "1", *(["-task", task]),
         *(["-max_target_seqs", str(limit)] if limit else [])],
        *_search(program, db.path, query, case / "direct.out", options),
    ]  # fmt: skip
    for shard in parts:
        argv += _search(
            program, root / shard.name, query, case / f"s{shard.index}.out", shard_options
        )
    tools.run(["python3", "-c", RUN_ALL, json.dumps(argv)])

    archives = [(case / f"s{i}.asn1").read_bytes() for i in range(count)]
    if limit is not None and db.data.dbtype == "nucl":
        assert (case / "direct.asn1").read_bytes().count(b"Blast4-archive ::=") > 1

    def shard_parts(fmt: int) -> list[bytes]:
        return [(case / f"s{i}.{fmt}").read_bytes() for i in range(count)]

    direct6 = direct_tsv.read_bytes()
    assert direct6 == (case / "direct.6").read_bytes(), "the archive route must be the direct one"
    # The merge of a run that asks for 6 and 7 takes each batch's 6 from its 7
    # (deployer.run.merge.DERIVED): from one archive, 6 is 7 without its comment lines.
    direct7 = (case / "direct.7").read_bytes()
    assert tabular_of_commented(direct7) == direct6, _diff("7 less comments", direct6, direct7)
    for i in range(count):
        six, seven = ((case / f"s{i}.{fmt}").read_bytes() for fmt in (6, 7))
        assert tabular_of_commented(seven) == six, _diff(f"shard {i}: 7 less comments", six, seven)
    # The preconditions: q1 has hits in every shard, more than the limit in all, and exact
    # ties (same e-value and score) between subjects of different shards.
    found = [_subjects(part, b"q1") for part in shard_parts(6)]
    assert all(found), f"q1 must have hits in every shard: {[len(f) for f in found]}"
    assert sum(len(f) for f in found) > (limit or 20)
    if limit is not None:
        assert len(_subjects(direct6, b"q1")) == limit
    else:
        assert _tie_across_shards(direct6, found)

    merged6 = shardmerge.merge_tabular(archives, shard_parts(6), limit)
    assert merged6 == direct6, _diff("outfmt 6", direct6, merged6)
    merged7 = shardmerge.merge_commented(archives, shard_parts(7), limit)
    assert merged7 == direct7, _diff("outfmt 7", direct7, merged7)
    firsts = [s.first_oid for s in parts]
    merged15 = shardmerge.merge_json(
        archives, shard_parts(15), limit, firsts, (db.sequences, db.letters)
    )
    assert json.loads(merged15) == json.loads((case / "direct.15").read_bytes())


def test_dbsize_alone_does_not_give_the_whole_database_evalues(
    tools: BlastTools, dbs: dict[str, Db]
) -> None:
    """Why the shards carry STATS_NSEQ: -dbsize fixes the letters, not the sequence count the
    length adjustment uses, so a shard searched with -dbsize alone reports other e-values."""
    db = dbs[NUCL.name]
    root = tools.root
    shard = shards.split(NUCL.name, db.volumes, 4)[1]
    plain = root / "plain-dbsize.nal"
    plain.write_text(f"TITLE x\nDBLIST {' '.join(v.name for v in shard.volumes)}\n")
    query = root / f"{NUCL.name}.query.fa"
    common = ["-query", str(query), "-task", "blastn", "-outfmt", "6 sseqid evalue"]
    dbsize = tools.run(
        ["blastn", "-db", str(root / "plain-dbsize"), "-dbsize", str(db.letters), *common]
    ).stdout
    whole = tools.run(["blastn", "-db", str(db.path), *common]).stdout
    wanted = {ln for ln in whole.splitlines()}
    assert dbsize.splitlines() and not set(dbsize.splitlines()) <= wanted
