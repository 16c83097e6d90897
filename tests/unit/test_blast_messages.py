"""Message validation: version 1, the legacy shape, the option whitelist and hostile input."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from blast_client.fasta import MAX_INLINE_BYTES
from blast_client.messages import (
    JobSpec,
    MessageError,
    Options,
    Query,
    ShardRef,
    keeps_archive,
    parse_message,
    parse_options,
    parse_parameter_string,
)

FASTA = ">q1 test\nACGTACGTACGTACGTAAACCCGGGTTT\n"


def v1(**overrides: Any) -> str:
    doc: dict[str, Any] = {
        "version": 1,
        "job_id": "job-1",
        "program": "blastn",
        "db": "demo",
        "query": {"fasta": FASTA},
        "options": {"evalue": 1e-5, "outfmt": [6, 15]},
    }
    doc.update(overrides)
    return json.dumps({k: v for k, v in doc.items() if v is not ...})


def test_valid_v1_round_trips() -> None:
    spec = parse_message(v1())
    assert spec == JobSpec(
        "job-1", "blastn", "demo", Query(fasta=FASTA), Options(evalue=1e-5, outfmt=(6, 15))
    )
    assert parse_message(spec.to_message()) == spec


def test_base64_body_is_accepted() -> None:
    body = base64.b64encode(v1().encode()).decode()
    assert parse_message(body).job_id == "job-1"


def test_blob_query() -> None:
    spec = parse_message(v1(query={"blob": "uploads/2024/q.fa"}))
    assert spec.query == Query(blob="uploads/2024/q.fa")


def test_legacy_shape() -> None:
    body = json.dumps(
        {
            "Id": "7f1c2d3e-aaaa-bbbb-cccc-0123456789ab",
            "Name": "run 1",
            "InputFile": "queries/run1.fa",
            "Extra": "ignored",
            "Parameters": "-evalue 1e-3 -task blastn -max_target_seqs 5",
        }
    )
    spec = parse_message(body, default_db="demo")
    assert spec.legacy and spec.db == "demo" and spec.program == "blastn"
    assert spec.query == Query(blob="queries/run1.fa")
    assert spec.options == Options(evalue=1e-3, task="blastn", max_target_seqs=5)
    assert spec.name == "run 1"


def test_legacy_numeric_id_and_database_name() -> None:
    body = json.dumps({"Id": 42, "Name": "x", "InputFile": "q.fa", "DatabaseName": "nt_small"})
    spec = parse_message(body)
    assert (spec.job_id, spec.db) == ("42", "nt_small")


def test_legacy_without_any_database_is_rejected() -> None:
    with pytest.raises(MessageError, match="DatabaseName") as info:
        parse_message(json.dumps({"Id": "a1", "Name": "x", "InputFile": "q.fa"}))
    assert info.value.job_id == "a1"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ("", "not JSON"),
        (v1(version=2), "unsupported message version"),
        (v1(job_id=...), "no 'job_id'"),
        (v1(db=...), "no 'db'"),
        (v1(query=...), "no 'query'"),
        (v1(program="blastz"), "unknown program"),
        (v1(program="blastn; rm -rf /"), "unknown program"),
        (v1(extra=1), "unknown message fields"),
        (v1(db="../etc"), "database name"),
        (v1(db="demo/../../x"), "database name"),
        (v1(db="/etc/passwd"), "database name"),
        (v1(job_id="../../tmp/x"), "job id"),
        (v1(job_id="a" * 65), "job id"),
        (v1(query={"blob": "../secret.fa"}), "query blob"),
        (v1(query={"blob": "/etc/passwd"}), "query blob"),
        (v1(query={"blob": "a/./b"}), "query blob"),
        (v1(query={"blob": "a\\..\\b"}), "query blob"),
        (v1(query={"blob": "ok.fa", "fasta": FASTA}), "'query' must be"),
        (v1(query={"fasta": ""}), "empty"),
        (v1(query={"fasta": "hello world, not fasta"}), "header"),
        (v1(query={"fasta": ">only header\n"}), "no sequence"),
        (v1(query={"fasta": ">q\nACGT$(reboot)\n"}), "not a nucleotide"),
        (v1(query={"fasta": ">q\x07\nACGT\n"}), "control characters"),
        (v1(query={"fasta": ">q\n" + "A" * (MAX_INLINE_BYTES + 1)}), "inline query is"),
        (v1(options={"-out": "/etc/passwd"}), "not allowed"),
        (v1(options={"out": "/etc/passwd"}), "not allowed"),
        (v1(options={"task": "megablast -out /etc/passwd"}), "not valid for blastn"),
        (v1(options={"evalue": "1e-5; rm -rf /"}), "must be a number"),
        (v1(options={"evalue": 0}), "must be in"),
        (v1(options={"evalue": float("inf")}), "must be in"),
        (v1(options={"max_target_seqs": True}), "whole number"),
        (v1(options={"max_target_seqs": 0}), "out of range"),
        (v1(options={"max_target_seqs": 1.5}), "whole number"),
        (v1(options={"word_size": 3}), "out of range"),
        (v1(options={"outfmt": [6, 5]}), "not available"),
        (v1(options={"outfmt": "6 -out /etc/passwd"}), "not available"),
        (v1(options={"outfmt": []}), "at least one"),
        (v1(options=[1]), "JSON object"),
    ],
)
def test_hostile_or_broken_messages_are_rejected(body: str, match: str) -> None:
    with pytest.raises(MessageError, match=match):
        parse_message(body)


def test_rejection_keeps_the_job_id_when_valid() -> None:
    with pytest.raises(MessageError) as info:
        parse_message(v1(program="nope"))
    assert info.value.job_id == "job-1"
    with pytest.raises(MessageError) as info:
        parse_message(v1(job_id="../x", program="nope"))
    assert info.value.job_id is None


def test_protein_program_needs_protein_query_and_own_tasks() -> None:
    spec = parse_message(
        v1(
            program="blastp",
            query={"fasta": ">p\nMKTAYIAKQR*\n"},
            options={"task": "blastp-fast", "word_size": 3},
        )
    )
    assert spec.options.task == "blastp-fast"
    with pytest.raises(MessageError, match="not valid for blastp"):
        parse_options({"task": "megablast"}, "blastp")
    with pytest.raises(MessageError, match="not valid for tblastx"):
        parse_options({"task": "tblastx"}, "tblastx")
    with pytest.raises(MessageError, match="out of range"):
        parse_options({"word_size": 11}, "blastp")


@pytest.mark.parametrize(
    "params",
    [
        "-out /etc/passwd",
        "; rm -rf /",
        "-evalue 1 ; rm -rf /",
        "-evalue",
        "-evalue x",
        "-query /etc/shadow",
        "evalue 1",
        "-task 'megablast' -out x",
        "-evalue '1",
    ],
)
def test_legacy_parameter_injection_is_rejected(params: str) -> None:
    with pytest.raises(MessageError):
        parse_options(parse_parameter_string(params), "blastn")
    body = json.dumps(
        {"Id": "L1", "Name": "n", "InputFile": "q.fa", "DatabaseName": "demo", "Parameters": params}
    )
    with pytest.raises(MessageError) as info:
        parse_message(body)
    assert info.value.job_id == "L1"


def test_outfmt_deduplicates_and_accepts_a_single_int() -> None:
    assert parse_options({"outfmt": [15, 6, 15]}, "blastn").outfmt == (15, 6)
    assert parse_options({"outfmt": 7}, "blastn").outfmt == (7,)


def test_only_shards_and_jobs_asking_for_more_than_tabular_output_keep_the_archive() -> None:
    assert not keeps_archive((6,), sharded=False)
    assert not keeps_archive((7,), sharded=False) and not keeps_archive([7, 6], sharded=False)
    assert keeps_archive((6, 15), sharded=False) and keeps_archive((15,), sharded=False)
    # A run's merge of shards reads every shard's archive, whatever the formats.
    assert keeps_archive((6,), sharded=True) and keeps_archive((6, 7), sharded=True)


def test_a_shard_travels_in_the_message_and_is_checked() -> None:
    spec = parse_message(v1(shard={"index": 1, "count": 4}))
    assert spec.shard == ShardRef(1, 4)
    assert parse_message(spec.to_message()) == spec
    assert parse_message(v1()).shard is None and "shard" not in json.loads(
        parse_message(v1()).to_message()
    )
    bad_shards: list[object] = [
        {"index": 4, "count": 4},
        {"index": 0, "count": 1},
        {"index": -1, "count": 2},
        {"index": True, "count": 2},
        {"index": 0},
        [0, 2],
        {"index": 0, "count": 2, "x": 1},
    ]
    for bad in bad_shards:
        with pytest.raises(MessageError, match="'shard'") as exc:
            parse_message(v1(shard=bad))
        assert exc.value.job_id == "job-1"


def test_hit_fasta_is_asked_for_in_the_message_and_absent_by_default() -> None:
    asked = parse_message(v1(hit_fasta=True))
    assert asked.hit_fasta and parse_message(asked.to_message()) == asked
    assert json.loads(asked.to_message())["hit_fasta"] is True
    # Old messages (none, false or null) ask for none, and a job without it sends the
    # message it always did (older workers reject unknown fields).
    for body in (v1(), v1(hit_fasta=False), v1(hit_fasta=None)):
        spec = parse_message(body)
        assert not spec.hit_fasta and "hit_fasta" not in json.loads(spec.to_message())
    legacy = {"Id": "legacy-1", "InputFile": "q.fa", "DatabaseName": "demo"}
    assert not parse_message(json.dumps(legacy)).hit_fasta
    for bad in ("yes", 1, [True]):
        with pytest.raises(MessageError, match="'hit_fasta' must be true or false") as exc:
            parse_message(v1(hit_fasta=bad))
        assert exc.value.job_id == "job-1"
