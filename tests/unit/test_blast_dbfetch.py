"""``db fetch`` planning: what to transfer, what resumes, what is current, what is published."""

from __future__ import annotations

import base64
import io
import json
import tarfile

import pytest
from blast_client.cli.progress import (
    FETCH_EVENT,
    PROGRESS_ENV,
    JsonProgress,
    TransferProgress,
    transfer_progress,
)
from blast_client.databases import database_info, parse_metadata
from blast_client.dbfetch import (
    FetchError,
    FetchProgress,
    StagedFile,
    VolumeRecord,
    alias_file,
    block_id,
    block_ids,
    fetched_manifest,
    journal_doc,
    member_name,
    parse_journal,
    plan_fetch,
    segments,
    select_files,
)
from blast_client.errors import InvalidRequest
from blast_client.ncbi import SourceDatabase

TARBALLS = {"nt.00.tar.gz": "a" * 32, "nt.01.tar.gz": "b" * 32, "nt.02.tar.gz": "c" * 32}


def record(name: str, md5: str, **files: tuple[int, str]) -> VolumeRecord:
    return VolumeRecord(
        name, md5, 100, {n: StagedFile(size, digest, 1) for n, (size, digest) in files.items()}
    )


def test_a_new_database_transfers_every_volume() -> None:
    plan = plan_fetch("nt", TARBALLS, None, {}, "nt")
    assert (plan.current, plan.transfer, plan.kept) == (False, tuple(TARBALLS), ())


def test_verified_volumes_of_the_same_tarballs_are_kept() -> None:
    journal = {
        "nt.00.tar.gz": record("nt.00.tar.gz", "a" * 32),
        "nt.01.tar.gz": record("nt.01.tar.gz", "0" * 32),  # an older tarball: redo
    }
    plan = plan_fetch("nt", TARBALLS, None, journal, "nt")
    assert plan.kept == ("nt.00.tar.gz",)
    assert plan.transfer == ("nt.01.tar.gz", "nt.02.tar.gz")


def test_current_when_storage_holds_these_tarballs() -> None:
    existing = {"files": {}, "source": {"db": "nt", "tarballs": dict(TARBALLS)}}
    assert plan_fetch("nt", TARBALLS, existing, {}, "nt").current
    newer = {**TARBALLS, "nt.02.tar.gz": "d" * 32}
    plan = plan_fetch("nt", newer, existing, {}, "nt")
    assert not plan.current and plan.transfer == tuple(newer)
    # The same tarballs from another database name are not "current" for this one.
    assert not plan_fetch("nt_other", TARBALLS, existing, {}, "nt").current


def test_an_uploaded_database_is_never_replaced() -> None:
    with pytest.raises(InvalidRequest, match="uploaded, not fetched") as info:
        plan_fetch("nt", TARBALLS, {"files": {"nt.nsq": {}}}, {}, "nt")
    assert "--as NAME" in str(info.value.hint)


def test_repeated_files_must_be_identical() -> None:
    v0 = record("nt.00.tar.gz", "a" * 32, **{"nt.00.nsq": (10, "1"), "taxdb.btd": (5, "t")})
    v1 = record("nt.01.tar.gz", "b" * 32, **{"nt.01.nsq": (10, "2"), "taxdb.btd": (5, "t")})
    chosen = select_files([v0, v1])
    assert sorted(chosen) == ["nt.00.nsq", "nt.01.nsq", "taxdb.btd"]
    assert chosen["taxdb.btd"][0] is v0
    v2 = record("nt.02.tar.gz", "c" * 32, **{"taxdb.btd": (5, "other")})
    with pytest.raises(FetchError, match=r"nt\.00\.tar\.gz and nt\.02\.tar\.gz both hold"):
        select_files([v0, v1, v2])


def test_block_ids_are_fixed_length_and_per_tarball() -> None:
    ids = block_ids("f" * 32, 3)
    assert len({len(i) for i in [*ids, block_id("0" * 32, 12345678)]}) == 1
    assert ids == block_ids("f" * 32, 3)  # a restarted volume re-stages the same ids
    assert not set(ids) & set(block_ids("e" * 32, 3))
    assert base64.b64decode(ids[2]).decode().endswith("00000002")


def test_journal_round_trip_and_garbage() -> None:
    volumes = {"nt.00.tar.gz": record("nt.00.tar.gz", "a" * 32, **{"nt.00.nsq": (10, "1")})}
    doc = json.loads(json.dumps(journal_doc("https://x", volumes)))
    assert parse_journal(doc) == volumes
    assert parse_journal(None) == {} and parse_journal({"volumes": {"x": {"md5": 1}}}) == {}


def test_alias_points_at_ncbi_names() -> None:
    name, text = alias_file("sp2024", "swissprot", "protein", "UniProtKB/Swiss-Prot")
    assert name == "sp2024.pal"
    assert text.decode().splitlines()[-2:] == ["TITLE UniProtKB/Swiss-Prot", "DBLIST swissprot"]
    assert alias_file("n", "nt", "nucleotide", None)[0] == "n.nal"


METADATA = {
    "version": "1.1",
    "dbname": "swissprot",
    "dbtype": "Protein",
    "db-version": 5,
    "description": "Non-redundant UniProtKB/SwissProt sequences",
    "number-of-letters": 180_000_000,
    "number-of-sequences": 480_000,
    "last-updated": "2024-05-04T00:00:00",
    "bytes-total": 350_000_000,
    "bytes-to-cache": 185_000_000,
    "files": ["ftp://ftp.ncbi.nlm.nih.gov/blast/db/swissprot.tar.gz"],
}


def test_the_manifest_keeps_ncbi_metadata_and_worker_md5s() -> None:
    db = SourceDatabase("swissprot", "https://m/db", None, METADATA, ("swissprot.tar.gz",))
    manifest = fetched_manifest(
        "swissprot",
        db,
        {"swissprot.tar.gz": "a" * 32},
        {"swissprot.psq": (7, "b" * 32)},
        "2024-05-05T00:00:00+00:00",
    )
    assert manifest["files"] == {"swissprot.psq": {"size": 7, "md5": "b" * 32}}
    assert manifest["source"]["metadata"] == METADATA
    assert manifest["source"]["tarballs"] == {"swissprot.tar.gz": "a" * 32}
    info = database_info("swissprot", manifest)
    assert (info.title, info.molecule, info.sequences, info.residues) == (
        METADATA["description"],
        "protein",
        480_000,
        180_000_000,
    )
    assert (info.bytes_to_cache, info.last_updated, info.source) == (
        185_000_000,
        "2024-05-04T00:00:00",
        "https://m/db",
    )
    # makeblastdb's own .pjs gives an upload the same numbers.
    assert parse_metadata(json.dumps(METADATA), ".pjs")["bytes_to_cache"] == 185_000_000


def test_tar_entries_must_be_flat_plain_files() -> None:
    def entry(name: str, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        return info

    assert member_name(entry("nt.00.nsq"), "v") == "nt.00.nsq"
    assert member_name(entry("./nt.00.nsq"), "v") == "nt.00.nsq"
    assert member_name(entry("./", tarfile.DIRTYPE), "v") is None
    for bad in ("../etc/passwd", "/etc/passwd", "sub/nt.nsq", ".hidden"):
        with pytest.raises(FetchError):
            member_name(entry(bad), "v")
    with pytest.raises(FetchError, match="not a plain file"):
        member_name(entry("nt.nal", tarfile.SYMTYPE), "v")
    # tarfile's own writer agrees with these rules for what the mirror builder makes.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"x" * 10
        info = tarfile.TarInfo("nt.nsq")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    with tarfile.open(fileobj=buf, mode="r|gz") as tar:
        assert [member_name(m, "v") for m in tar] == ["nt.nsq"]


def test_segments_and_progress_maths() -> None:
    assert segments(10, 4) == [(0, 4), (4, 4), (8, 2)]
    assert segments(0, 4) == []
    p = FetchProgress(total=100, done=25, volumes_total=4, volumes_done=1, elapsed=5.0)
    assert (p.rate, p.eta) == (5.0, 15.0)
    assert FetchProgress(100, 0, 4, 0, 0.0).eta is None


def test_json_progress_lines_for_a_program_reading_the_log() -> None:
    stream = io.StringIO()
    lines = JsonProgress(stream=stream, interval=3600)
    lines.update(0, 10 * 2**20, 0, 4, 0.0, None)
    lines.update(2**20, 10 * 2**20, 0, 4, 2**20, 9.0)  # same volume count, within the interval
    lines.update(5 * 2**20, 10 * 2**20, 2, 4, 2**20, 5.0)
    lines.close()
    docs = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(d["event"], d["done"], d["volumes_done"], d["eta"]) for d in docs] == [
        (FETCH_EVENT, 0, 0, None),
        (FETCH_EVENT, 5 * 2**20, 2, 5.0),
    ]
    assert {"time", "total", "volumes", "rate"} <= set(docs[0])


def test_blast_progress_json_picks_the_json_lines() -> None:
    assert isinstance(transfer_progress({PROGRESS_ENV: "json"}, enabled=False), JsonProgress)
    assert isinstance(transfer_progress({}, enabled=True), TransferProgress)
