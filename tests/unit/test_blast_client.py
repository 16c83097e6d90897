"""The client API without storage: planning, job rows, table keys, database manifests."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from blast_client import BlastClient, InvalidRequest, JobStatus, Options, plan_jobs
from blast_client.client import new_job_ids
from blast_client.config import ConfigError
from blast_client.databases import build_manifest, database_info, parse_metadata
from blast_client.errors import NoResult
from blast_client.joblog import (
    FINAL,
    STATUSES,
    index_partition,
    index_partitions_since,
    index_row,
    run_partition,
)
from blast_client.messages import hit_fasta_blob, parse_message, query_blob


def fasta(*lengths: int) -> str:
    return "".join(f">s{i} desc\n{'ACGT' * (n // 4)}\n" for i, n in enumerate(lengths))


def test_plan_splits_into_unique_jobs_that_round_trip() -> None:
    specs = plan_jobs(fasta(400, 400, 400), "demo", "blastn", Options(), 800, "lbl", "run-7")
    assert len(specs) == 2
    assert len({s.job_id for s in specs}) == 2
    assert specs[0].query.fasta is not None and specs[0].query.fasta.count(">") == 2
    assert all(s.name == "lbl" and s.db == "demo" and s.run_id == "run-7" for s in specs)
    # What the worker parses is what was planned.
    assert [parse_message(s.to_message()) for s in specs] == specs


def test_plan_takes_raw_options_and_checks_them_for_the_program() -> None:
    (spec,) = plan_jobs(fasta(100), "demo", "blastn", {"evalue": 1e-3, "outfmt": [6, 15]})
    assert spec.options == Options(evalue=1e-3, outfmt=(6, 15))
    with pytest.raises(InvalidRequest, match="task 'blastp' is not valid for blastn"):
        plan_jobs(fasta(100), "demo", "blastn", Options(task="blastp"))


def test_a_plans_job_ids_ascend_in_batch_order() -> None:
    # submit gives a search's batches one submission time, so their ids alone keep the order
    # (the web page and `blast-jobs run-jobs` list them by submission time, then id).
    specs = plan_jobs(fasta(*[100] * 300), "demo", "blastn", batch_len=100)
    queries = [s.query.fasta.split()[0] for s in specs if s.query.fasta is not None]
    assert queries == [f">s{i}" for i in range(300)]
    ids = [s.job_id for s in specs]
    assert ids == sorted(ids) and len(set(ids)) == 300
    assert len({i.split("-")[0] for i in ids}) == 1  # one time stamp
    assert new_job_ids(3, now=0.0)[0].startswith("19700101T000000-")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fasta": "not fasta"}, "the query is not valid"),
        ({"db": "../etc"}, "database name"),
        ({"program": "blastz"}, "unknown program"),
        ({"run_id": "a/b"}, "run id"),
        ({"options": {"num_threads": 8}}, "not allowed"),
        ({"batch_len": 0}, "batch_len"),
    ],
)
def test_plan_rejects_bad_input_with_exit_code_2(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"fasta": fasta(100), "db": "demo", **kwargs}
    with pytest.raises(InvalidRequest, match=match) as info:
        plan_jobs(**args)  # type: ignore[arg-type]
    assert info.value.exit_code == 2 and info.value.to_json()["code"] == "invalid_input"


def test_client_needs_storage_settings_and_takes_a_queue() -> None:
    with pytest.raises(ConfigError, match="AZURE_STORAGE_ACCOUNT"):
        BlastClient.from_env(env={})
    client = BlastClient(account_name="aciresearchdata", queue="run-1")
    assert client.config.queue == "run-1" and client.config.poison_queue == "run-1-poison"
    assert client.storage.queue.url.endswith("/run-1")


def test_plan_asks_for_hit_sequences_only_when_told() -> None:
    assert not any(s.hit_fasta for s in plan_jobs(fasta(100, 100), "demo", batch_len=100))
    specs = plan_jobs(fasta(100, 100), "demo", batch_len=100, hit_fasta=True)
    assert len(specs) == 2 and all(s.hit_fasta for s in specs)
    assert [parse_message(s.to_message()) for s in specs] == specs


def test_job_status_from_a_row() -> None:
    when = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    row = {
        "PartitionKey": "job-1",
        "RowKey": "job",
        "status": "succeeded",
        "program": "blastn",
        "db": "demo",
        "name": "",
        "run_id": "run-7",
        "submitted": when,
        "attempts": 2,
        "hits": 4,
        "results": json.dumps({"6": "https://x/6", "15": "https://x/15"}),
        "blast_s": 1.5,
    }
    st = JobStatus.from_row(row)
    assert (st.job_id, st.status, st.run_id, st.name, st.attempts, st.hits) == (
        "job-1",
        "succeeded",
        "run-7",
        None,
        2,
        4,
    )
    assert st.final and st.submitted == when.timestamp() and st.results[15] == "https://x/15"
    assert st.result_blob(6) == "job-1/results.6.tsv"
    # The layout the worker writes and every reader reads (blast_client.messages).
    assert (hit_fasta_blob("job-1"), query_blob("job-1")) == ("job-1/hits.fasta", "job-1/query.fa")
    doc = st.to_json()
    assert doc["status"] == "succeeded" and doc["blast_s"] == 1.5 and doc["results"]["6"]
    assert not JobStatus("job-2", "unknown").final


def test_the_archive_of_a_job_that_stored_none_is_refused_in_one_line_saying_why() -> None:
    # A job of tabular output only: its row lists the files stored, without 11. Nothing is
    # downloaded (the client has no reachable storage here).
    client = BlastClient(account_name="aciresearchdata")
    job = JobStatus("job-1", "succeeded", results={6: "https://x/6", 7: "https://x/7"})
    with pytest.raises(NoResult) as info:
        client.result("job-1", 11, job=job)
    assert str(info.value).startswith("job job-1 has no archive (11): it asked only for tabular")
    assert "\n" not in str(info.value) and info.value.exit_code == 1
    assert info.value.hint == "submit it with --outfmt 6,15 to keep the archive"


def test_cancelled_is_final_everywhere() -> None:
    # deployer run cancel (and a run's TTL) write it: a wait ends, a redelivery is dropped,
    # a run counts the batch done with.
    assert set(FINAL) <= set(STATUSES) and "cancelled" in FINAL
    assert JobStatus("job-3", "cancelled").final
    assert not JobStatus("job-4", "running").final


def test_table_keys_sort_cover_the_window_and_keep_runs_apart() -> None:
    t = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    assert index_partition(t) == "t2023111422"
    assert index_row(t, "j") < index_row(t + 0.001, "j") < index_row(t + 10, "a")
    assert index_partitions_since(t - 3600, t) == ["t2023111421", "t2023111422"]
    assert index_partitions_since(t - 60, t) == ["t2023111422"]
    # Job ids have no dots, so a run partition is never a job row's partition.
    assert run_partition("r1") == "run.r1"


NJS = {
    "version": "1.2",
    "dbname": "demo",
    "dbtype": "Nucleotide",
    "db-version": 5,
    "description": "demo subjects",
    "number-of-letters": 40000,
    "number-of-sequences": 20,
}


def test_manifest_carries_md5s_and_the_metadata(tmp_path: Path) -> None:
    (tmp_path / "db.nsq").write_bytes(b"hello")
    (tmp_path / "db.njs").write_text(json.dumps(NJS))
    m = build_manifest("db", [tmp_path / "db.nsq", tmp_path / "db.njs"])
    assert m["files"]["db.nsq"] == {"size": 5, "md5": hashlib.md5(b"hello").hexdigest()}
    assert (m["title"], m["molecule"], m["sequences"], m["residues"]) == (
        "demo subjects",
        "nucleotide",
        20,
        40000,
    )
    info = database_info("db", m)
    assert (info.title, info.molecule, info.sequences, info.files) == (
        "demo subjects",
        "nucleotide",
        20,
        2,
    )
    assert info.size == 5 + len(json.dumps(NJS))


def test_database_info_falls_back_for_old_manifests() -> None:
    old = {"version": 1, "name": "p", "files": {"p.psq": {"size": 7}, "p.pin": {"size": 3}}}
    info = database_info("p", old)
    assert (info.title, info.molecule, info.sequences, info.size) == (None, "protein", None, 10)
    meta = parse_metadata(json.dumps({**NJS, "dbtype": "Protein"}), ".pjs")
    assert database_info("p", old, meta).sequences == 20
    assert parse_metadata(b"not json", ".njs") == {}
