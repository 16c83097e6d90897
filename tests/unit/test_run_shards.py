"""``deployer run`` of a sharded database, its pure parts: the batches' jobs, when a batch of
shards is done, the janitor's decisions and the manifest (the merge itself is proved with
real BLAST in tests/integration/blast/test_shard_worker.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from blast_client import JobStatus, shardmerge
from blast_client.messages import JobSpec, Options, Query, ShardRef, parse_message

from deployer.imagebuild.manifest import BuiltImage
from deployer.protocol import PROTOCOLS, RUN_PROTOCOL, run_protocol
from deployer.run import merge, shardstats
from deployer.run.api import janitor_protocol_problem, summarize
from deployer.run.autoscaling import backlog
from deployer.run.decide import CancelJobs, Finish, decide, unfinished
from deployer.run.jobview import JobView
from deployer.run.state import (
    Batch,
    Run,
    batch_state,
    shard_jobs,
)
from deployer.run.store import from_entity, to_entity

SPEC = JobSpec("20261206T070000-1a2b3c4d", "blastn", "nt", Query(fasta=">q\nACGT\n"), Options())
SHARDED = Batch(1, "b1-s1", 3, ("b1-s1", "b1-s2", "b1-s3"))
WHOLE = Batch(2, "b2", 1)
RUN = Run("r00000001", "demo", "running", 0.0, batches=(SHARDED, WHOLE), groups=("demo-w1",))


def test_a_batch_is_one_job_per_shard_each_naming_its_shard() -> None:
    assert shard_jobs(SPEC, 1) == (SPEC,)
    jobs = shard_jobs(SPEC, 3)
    assert [j.job_id for j in jobs] == [f"{SPEC.job_id}-s{i}" for i in (1, 2, 3)]
    assert [j.shard for j in jobs] == [ShardRef(0, 3), ShardRef(1, 3), ShardRef(2, 3)]
    assert all(j.query == SPEC.query and j.db == "nt" for j in jobs)
    # What goes on the queue is what the worker reads.
    assert [parse_message(j.to_message()) for j in jobs] == list(jobs)
    assert SHARDED.jobs == SHARDED.shards and WHOLE.jobs == ("b2",)


@pytest.mark.parametrize(
    ("states", "want"),
    [
        ({}, "queued"),
        ({"b1-s1": "running"}, "running"),
        ({"b1-s1": "succeeded"}, "running"),
        ({"b1-s1": "succeeded", "b1-s2": "succeeded"}, "running"),
        ({"b1-s1": "succeeded", "b1-s2": "succeeded", "b1-s3": "succeeded"}, "succeeded"),
        ({"b1-s1": "succeeded", "b1-s2": "failed", "b1-s3": "running"}, "running"),
        ({"b1-s1": "cancelled", "b1-s2": "failed", "b1-s3": "succeeded"}, "failed"),
        ({"b1-s1": "cancelled", "b1-s2": "poisoned", "b1-s3": "failed"}, "poisoned"),
        ({"b1-s1": "cancelled", "b1-s2": "succeeded", "b1-s3": "succeeded"}, "cancelled"),
    ],
)
def test_a_batch_of_shards_is_done_when_all_its_shards_are(
    states: dict[str, str], want: str
) -> None:
    assert batch_state(SHARDED, states) == want


def test_the_janitor_finishes_a_sharded_run_only_when_every_shard_is_done() -> None:
    two_done = {"b1-s1": "succeeded", "b1-s2": "succeeded", "b2": "succeeded"}
    assert unfinished(RUN, two_done) == ["b1-s3"]
    assert backlog(RUN, two_done) == (1, 0)
    assert not any(isinstance(s, Finish) for s in decide(RUN, two_done, [], 1.0))
    steps = decide(RUN, {**two_done, "b1-s3": "succeeded"}, [], 1.0)
    assert Finish("succeeded", "all 2 batches succeeded") in steps
    failed = decide(RUN, {**two_done, "b1-s3": "failed"}, [], 1.0)
    assert Finish("failed", "1 of 2 batches did not succeed") in failed
    # The ttl cancels each unfinished shard, and counts batches.
    expired = decide(replace(RUN, deadline=5.0), {"b2": "succeeded"}, [], 10.0)
    cancel = next(s for s in expired if isinstance(s, CancelJobs))
    assert cancel.job_ids == SHARDED.shards
    finish = next(s for s in expired if isinstance(s, Finish))
    assert "1 of 2 batches were unfinished" in finish.reason


def test_the_manifest_names_each_shard_and_its_archive() -> None:
    states = {"b1-s1": "succeeded", "b1-s2": "succeeded", "b1-s3": "failed", "b2": "succeeded"}
    doc = merge.manifest(RUN, {}, states)
    sharded, whole = doc["batches"]
    assert sharded["state"] == "failed" and "shards" not in whole
    assert sharded["shards"] == [
        {"shard": i, "job_id": f"b1-s{i}", "state": states[f"b1-s{i}"],
         "archive": f"batches/00001-b1-s{i}.asn1"}
        for i in (1, 2, 3)
    ]  # fmt: skip


def test_a_batch_part_is_its_jobs_or_its_shards_merged() -> None:
    assert merge.batch_part(15, [b"archive"], [b"{}"]) == b"{}"
    # Never a 15 of shards without the database's numbers, nor with another shard count's.
    with pytest.raises(merge.MergeError, match=r"^outfmt 15 of a batch of shards needs"):
        merge.batch_part(15, [b"a", b"b"], [b"{}", b"{}"])
    three = merge.ShardStats((0, 10, 20), (30, 90000))
    with pytest.raises(merge.MergeError, match=r"^2 shards but the database's first ids are of 3"):
        merge.batch_part(15, [b"a", b"b"], [b"{}", b"{}"], three)
    with pytest.raises(merge.MergeError, match="archive"):
        merge.batch_part(6, [b"not an archive", b"x"], [b"", b""])


def test_the_job_view_reads_every_shards_row() -> None:
    # Shard ids sort after their batch's first id: the range must end at the last shard's.
    run = replace(RUN, batches=(WHOLE, replace(SHARDED, index=2)))
    view = JobView.of(run)
    assert (view.first, view.last) == ("b1-s1", "b2")
    last = replace(RUN, batches=(Batch(1, "a", 1), Batch(2, "b-s1", 2, ("b-s1", "b-s2"))))
    assert JobView.of(last).last == "b-s2"


def test_the_streamed_merge_keeps_every_shards_archive_and_names_a_batch_that_does_not_merge(
    tmp_path: Path,
) -> None:
    parts = {(job, fmt): f"{job}.{fmt}".encode() for job in SHARDED.jobs for fmt in (6, 11)}
    with pytest.raises(merge.MergeError, match=r"^batch 1: "):
        merge.write_run(tmp_path, [SHARDED], [6], lambda job, fmt: parts[(job, fmt)])
    kept = sorted(p.name for p in (tmp_path / "batches").iterdir())
    assert kept == [f"00001-b1-s{i}.asn1" for i in (1, 2, 3)]
    assert not list(tmp_path.glob("results*"))


def test_the_summary_counts_batches_not_shards() -> None:
    jobs = {
        "b1-s1": JobStatus("b1-s1", "succeeded", attempts=2, hits=4),
        "b1-s2": JobStatus("b1-s2", "succeeded", attempts=3, hits=1),
        "b1-s3": JobStatus("b1-s3", "failed", attempts=1),
        "b2": JobStatus("b2", "succeeded", attempts=1, hits=2),
    }
    summary = summarize(replace(RUN, status="failed", finished=1.0), jobs)
    assert (summary.batches, summary.failed_batches, summary.retried_batches) == (2, 1, 1)


# The first bytes of real index files: makeblastdb 2.x of 30 sequences of 3,000 letters with
# -max_file_sz 8000, volume 1 of a nucleotide database (format 5, title "a title", 10
# sequences) and of a protein one (-blastdb_version 4, title "t4", 2 sequences).
NIN_V5 = bytes.fromhex(
    "0000000500000000000000010000000761207469746c65000000077664622e6e64620000001a44656320"
    "362c2032303236202031303a353220414d00000000000000000a307500000000000000000bb8"
)
PIN_V4 = bytes.fromhex(
    "00000004000000010000000274340000001644656320362c2032303236202031303a353220414d000000"
    "0002701700000000000000000bb800000000"
)


def test_a_volumes_sequences_are_read_from_its_index_files_header() -> None:
    assert shardstats.index_sequences(NIN_V5) == 10
    assert shardstats.index_sequences(PIN_V4) == 2
    # A header cut anywhere before the count's last byte asks for more, never gives a number.
    assert all(shardstats.index_sequences(NIN_V5[:n]) is None for n in range(0x44))
    assert shardstats.index_sequences(NIN_V5[:0x44]) == 10
    assert all(shardstats.index_sequences(PIN_V4[:n]) is None for n in range(0x2C))
    assert shardstats.index_sequences(PIN_V4[:0x2C]) == 2
    with pytest.raises(ValueError, match="version 1162760014"):
        shardstats.index_sequences(b"ENONE ...")


ALIAS = "TITLE nt\nDBLIST nt.00 nt.01 nt.02 nt.03\n"
SIZES = {
    **{f"nt.0{i}.nsq": size for i, size in enumerate((500, 100, 100, 400))},
    **{f"nt.0{i}.nin": 10 for i in range(4)},
    "nt.nal": 40,
    "nt.ndb": 20,
}


def test_each_shards_first_id_counts_the_sequences_of_the_volumes_cut_before_it() -> None:
    counts = {"nt.00": 7, "nt.01": 3, "nt.02": 5, "nt.03": 11}
    # Cut by bytes as the workers cut (510 | 110+110 | 410, and 510+110 | 110+410),
    # counted by sequences.
    assert shardstats.first_oids("nt", ALIAS, SIZES, counts, 3) == (0, 7, 15)
    assert shardstats.first_oids("nt", ALIAS, SIZES, counts, 2) == (0, 10)
    with pytest.raises(ValueError, match=r"no sequence count for volume nt\.02"):
        shardstats.first_oids("nt", ALIAS, SIZES, {"nt.00": 7, "nt.01": 3}, 2)
    with pytest.raises(ValueError, match="takes 1 to 4 shards, not 5"):
        shardstats.first_oids("nt", ALIAS, SIZES, counts, 5)


def test_the_totals_are_the_manifests_or_nothing() -> None:
    assert shardstats.totals("nt", {"sequences": 26, "residues": 78000}) == (26, 78000)
    for manifest in ({}, {"sequences": 26}, {"sequences": "26", "residues": 78000}):
        with pytest.raises(ValueError, match=r"^database nt: its manifest has no sequences"):
            shardstats.totals("nt", manifest)


def _archive(queries: int, hsps: list[tuple[int, int, int]]) -> bytes:
    """A BLAST archive (11) of ``queries`` queries and ``hsps`` (query, subject oid, raw score),
    in BLAST's order; each e-value is 10^-score/10 so that a higher score ranks first."""
    seqs = "".join(
        f'          seq {{\n            id {{\n              local str "Query_{q}"\n'
        "            },\n          }\n"
        for q in range(1, queries + 1)
    )
    alignments = ",\n".join(
        "      {\n        score {\n"
        f'          {{ id str "score", value int {score} }},\n'
        f'          {{ id str "e_value", value real {{ 1, 10, -{score // 10} }} }}\n'
        "        },\n"
        f'        segs denseg {{ ids {{ local str "Query_{q}", '
        f'general {{ db "BL_ORD_ID", tag id {oid} }} }} }}\n      }}'
        for q, oid, score in hsps
    )
    return (
        "Blast4-archive ::= {\n  request {\n    body queue-search {\n      queries bioseq-set {\n"
        f"        seq-set {{\n{seqs}        }}\n      }}\n    }}\n  }},\n"
        f"  results {{\n    alignments {{\n{alignments}\n    }}\n  }}\n}}\n"
    ).encode()


def test_the_summary_counts_the_merged_hits_not_the_sum_of_the_shards(tmp_path: Path) -> None:
    # Query 1 has 300 subjects in each of 2 shards: the merge keeps BLAST's 500, the best
    # (shard 2's first subject, of 2 HSPs) among them; query 2's 3 + 2 subjects are all kept.
    shard1 = [(1, oid, 2000 - 3 * oid) for oid in range(300)] + [
        (2, 0, 900),
        (2, 1, 800),
        (2, 2, 700),
    ]
    shard2 = [(1, 300, 5000), (1, 300, 4000)]
    shard2 += [(1, 300 + oid, 1999 - 3 * oid) for oid in range(1, 300)] + [
        (2, 300, 850),
        (2, 301, 750),
    ]
    archives = [_archive(2, shard1), _archive(2, shard2)]
    tabular = [
        "".join(f"Query_{q}\t{oid}\t{score}\n" for q, oid, score in hsps).encode()
        for hsps in (shard1, shard2)
    ]
    assert shardmerge.merged_hsps(archives, None) == 501 + 5
    assert shardmerge.merged_hsps(archives, 2) == 3 + 2
    run = replace(
        RUN,
        status="failed",
        finished=1.0,
        batches=(Batch(1, "b0-s1", 2, ("b0-s1", "b0-s2")), *RUN.batches),
    )
    parts = {
        ("b0-s1", 11): archives[0], ("b0-s2", 11): archives[1],
        ("b0-s1", 6): tabular[0], ("b0-s2", 6): tabular[1],
        ("b2", 6): b"Query_1\t5\nQuery_1\t6\n",
    }  # fmt: skip
    ok = [run.batches[0], WHOLE]
    fetched: list[tuple[str, int]] = []

    def fetch(job: str, fmt: int) -> bytes:
        fetched.append((job, fmt))
        return parts[(job, fmt)]

    written = merge.write_run(tmp_path, ok, [6], fetch)
    merged = (tmp_path / "results.6.tsv").read_bytes().splitlines()
    assert written.hits == {"b0-s1": 506}
    # Only the shards' archives are read and kept: a batch searched whole (a job of tabular
    # output only) has none, and the manifest names none for it.
    assert sorted(fetched) == sorted(parts)
    kept = [f for f in written.files if f.startswith("batches/")]
    assert kept == ["batches/00001-b0-s1.asn1", "batches/00001-b0-s2.asn1"]
    doc = merge.manifest(run, written.files, {j: "succeeded" for j, _ in parts})
    sharded, _, whole = doc["batches"]
    assert "archive" not in whole and "shards" not in whole
    assert [s["archive"] for s in sharded["shards"]] == kept
    for path, archive in zip(kept, archives, strict=True):
        assert doc["files"][path]["sha256"] == merge.sha256(archive)
    assert len(merged) == 506 + 2
    jobs = {
        "b0-s1": JobStatus("b0-s1", "succeeded", hits=len(shard1)),
        "b0-s2": JobStatus("b0-s2", "succeeded", hits=len(shard2)),
        "b2": JobStatus("b2", "succeeded", hits=2),
        # SHARDED did not succeed: its shards' own hits are in no result.
        "b1-s1": JobStatus("b1-s1", "succeeded", hits=7),
        "b1-s2": JobStatus("b1-s2", "succeeded", hits=7),
        "b1-s3": JobStatus("b1-s3", "failed"),
    }
    summary = summarize(run, jobs, merged_hits=written.hits)
    assert summary.hits == 506 + 2 == len(merged)
    assert summarize(run, jobs).hits == 2  # shards that were not merged count for nothing
    # A run's max_target_seqs: each batch of shards is cut to it (the whole batch's own job
    # was cut by BLAST), and its hits are counted after the cut.
    cut = merge.write_run(tmp_path, ok, [6], lambda job, fmt: parts[(job, fmt)], max_target_seqs=2)
    assert cut.hits == {"b0-s1": 3 + 2}
    assert len((tmp_path / "results.6.tsv").read_bytes().splitlines()) == 3 + 2 + 2


def test_a_janitor_ends_a_run_of_a_newer_protocol_loudly_and_handles_older_ones() -> None:
    newer = replace(RUN, protocol=RUN_PROTOCOL + 1)
    steps = decide(newer, {"b2": "succeeded"}, [], 1.0)
    finish = next(s for s in steps if isinstance(s, Finish))
    assert finish.status == "failed"
    assert finish.reason.startswith(
        f"the janitor's deployer image speaks run protocol {RUN_PROTOCOL} "
        f"({PROTOCOLS[RUN_PROTOCOL]}), but the run needs protocol {RUN_PROTOCOL + 1}, which"
    )
    assert "run `deployer build`" in finish.reason and "\n" not in finish.reason
    cancel = next(s for s in steps if isinstance(s, CancelJobs))
    assert cancel.job_ids == SHARDED.shards
    # Its own protocol and older ones (a record that names none is 1) run as ever.
    for protocol in range(1, RUN_PROTOCOL + 1):
        assert decide(replace(RUN, protocol=protocol), {"b2": "succeeded"}, [], 1.0) == []
    # The record keeps it; a record from before protocols reads as 1.
    entity = to_entity(replace(RUN, protocol=RUN_PROTOCOL))
    assert from_entity(entity).protocol == RUN_PROTOCOL
    del entity["protocol"]
    assert from_entity(entity).protocol == 1


def test_deployer_run_refuses_a_janitor_image_older_than_the_protocol_its_run_needs() -> None:
    def image(protocol: int | None) -> BuiltImage:
        return BuiltImage("r.io/deployer:0.1-abc", "sha256:" + "a" * 64, "h", "skipped", protocol)

    # A whole database's run needs 1, so an image from before protocols still serves it; a
    # sharded run needs 3: its shards' queues, and worker groups pinned to one shard each.
    assert (run_protocol(1), run_protocol(2), run_protocol(4)) == (1, 3, 3)
    assert janitor_protocol_problem(image(2), "0.1-abc", 3) == (
        "the janitor's image r.io/deployer:0.1-abc (build 0.1-abc) speaks run protocol 2 "
        f"({PROTOCOLS[2]}), but this deployer's run needs 3 ({PROTOCOLS[3]}), which it would "
        "mis-handle; nothing was created"
    )
    assert janitor_protocol_problem(image(None), "0.1-abc", 1) is None
    assert janitor_protocol_problem(None, "0.1-abc", 2) is None  # no build record: it checks
    assert janitor_protocol_problem(image(RUN_PROTOCOL), "0.1-abc", 2) is None
    assert janitor_protocol_problem(image(RUN_PROTOCOL + 1), "0.1-abc", 2) is None
    assert janitor_protocol_problem(image(None), "0.1-abc", 2) == (
        "the janitor's image r.io/deployer:0.1-abc (build 0.1-abc) speaks run protocol 1 (one "
        f"job per batch), but this deployer's run needs 2 ({PROTOCOLS[2]}), which it would "
        "mis-handle; nothing was created"
    )
