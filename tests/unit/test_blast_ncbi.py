"""NCBI's database layout: parsing, snapshot choice, and the HTTP edge against a local server."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from blast_client.errors import InvalidRequest
from blast_client.ncbi import (
    SOURCES,
    HttpSource,
    SourceDirectory,
    SourceError,
    UnknownDatabase,
    check_date,
    nearest_snapshots,
    parse_index,
    parse_listing,
    parse_md5_file,
    snapshot_for_date,
    source_url,
    volume_order,
    volumes_of,
)

from testbed.mirror_server import MirrorServer


def test_source_names_and_urls() -> None:
    assert source_url(None) == SOURCES["ncbi"]
    assert source_url("GCP") == SOURCES["gcp"]
    assert (
        source_url("https://mirror.example.org/blast/db/") == "https://mirror.example.org/blast/db"
    )
    for bad in ("ftp://ftp.ncbi.nlm.nih.gov/blast/db", "mirror", "http://"):
        with pytest.raises(InvalidRequest):
            source_url(bad)


def test_dates() -> None:
    assert check_date(None) is None
    assert check_date("2024-05-01") == "2024-05-01"
    for bad in ("2024-5-1", "yesterday", "2024-02-30"):
        with pytest.raises(InvalidRequest):
            check_date(bad)


def test_volumes_follow_update_blastdb_names() -> None:
    assert volume_order("nt", "nt.tar.gz") == -1
    assert volume_order("nt", "nt.007.tar.gz") == 7
    assert volume_order("nt", "nt.07.tar.gz") == 7
    assert volume_order("nt", "nt_euk.00.tar.gz") is None
    assert volume_order("nt", "nt.00.tar.gz.md5") is None
    files = [
        "ftp://ftp.ncbi.nlm.nih.gov/blast/db/human_genome.01.tar.gz",
        "ftp://ftp.ncbi.nlm.nih.gov/blast/db/human_genome.00.tar.gz",
        "ftp://ftp.ncbi.nlm.nih.gov/blast/db/human_genome-nucl-metadata.json",
        7,
    ]
    assert volumes_of("human_genome", files) == ("human_genome.00.tar.gz", "human_genome.01.tar.gz")


def test_both_index_formats() -> None:
    array = [
        {"dbname": "swissprot", "version": "1.1", "dbtype": "Protein"},
        {"dbname": "old", "version": "1.0"},
        "junk",
    ]
    assert set(parse_index(array)) == {"swissprot"}
    legacy = {"version": "1.0", "nt": {"description": "nt", "files": []}, "bad": 3}
    assert set(parse_index(legacy)) == {"nt"}
    with pytest.raises(ValueError):
        parse_index("text")


def test_md5_files_and_listings() -> None:
    assert parse_md5_file("0123456789ABCDEF0123456789abcdef  nt.00.tar.gz\n") == (
        "0123456789abcdef0123456789abcdef"
    )
    with pytest.raises(ValueError):
        parse_md5_file("<html>404</html>")
    xml = (
        "<ListBucketResult><CommonPrefixes><Prefix>2024-05-01-01-05-02/</Prefix>"
        "</CommonPrefixes><CommonPrefixes><Prefix>2024-05-01-13-00-00/</Prefix>"
        "</CommonPrefixes><CommonPrefixes><Prefix>other/</Prefix></CommonPrefixes>"
        "</ListBucketResult>"
    )
    names = parse_listing(xml)
    assert names == ["2024-05-01-01-05-02", "2024-05-01-13-00-00", "other"]
    assert snapshot_for_date(names, "2024-05-01") == "2024-05-01-13-00-00"
    assert snapshot_for_date(names, "2024-05-02") is None
    assert nearest_snapshots(["2024-04-01-00-00-00", "2024-05-03-00-00-00", "x"], "2024-05-01") == [
        "2024-05-03",
        "2024-04-01",
    ]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A small source: a flat directory with an index, and a bucket with two snapshots."""
    flat = tmp_path / "flat"
    flat.mkdir()
    meta = {
        "dbname": "tiny",
        "version": "1.1",
        "dbtype": "Nucleotide",
        "description": "Tiny",
        "number-of-sequences": 3,
        "files": ["ftp://ftp.ncbi.nlm.nih.gov/blast/db/tiny.tar.gz"],
    }
    (flat / "blastdb-metadata-1-1.json").write_text(json.dumps([meta]))
    (flat / "tiny.tar.gz").write_bytes(bytes(range(256)) * 40)
    (flat / "tiny.tar.gz.md5").write_text("00112233445566778899aabbccddeeff  tiny.tar.gz\n")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "blastdb-manifest.json").write_text(
        json.dumps({"version": "1.0", "tiny": {"description": "Tiny", "files": meta["files"]}})
    )
    (legacy / "tiny-nucl-metadata.json").write_text(json.dumps(meta))
    bucket = tmp_path / "bucket"
    for snap in ("2024-05-01-01-05-02", "2024-05-02-01-05-02"):
        (bucket / snap).mkdir(parents=True)
        (bucket / snap / "blastdb-metadata-1-1.json").write_text(
            json.dumps([{**meta, "description": snap}])
        )
    (bucket / "latest-dir").write_text("2024-05-02-01-05-02\n")
    return tmp_path


def test_source_directory_finds_databases_and_snapshots(site: Path) -> None:
    http = HttpSource(retries=1, backoff=0.01)
    with MirrorServer(site) as server:
        db = SourceDirectory(server.url("flat"), http).database("tiny")
        assert db.snapshot is None and db.volumes == ("tiny.tar.gz",)
        assert db.url("tiny.tar.gz") == server.url("flat/tiny.tar.gz")  # not NCBI's ftp URL
        assert db.molecule == "nucleotide"
        assert SourceDirectory(server.url("flat"), http).md5(db, "tiny.tar.gz").startswith("0011")
        # The 1.0 manifest alone: numbers come from <db>-nucl-metadata.json.
        old = SourceDirectory(server.url("legacy"), http).database("tiny")
        assert old.metadata["number-of-sequences"] == 3
        bucket = SourceDirectory(server.url("bucket"), http)
        assert bucket.database("tiny").metadata["description"] == "2024-05-02-01-05-02"
        dated = bucket.database("tiny", "2024-05-01")
        assert (dated.snapshot, dated.metadata["description"]) == ("2024-05-01-01-05-02",) * 2
        with pytest.raises(InvalidRequest, match=r"no snapshot of 2024-04-30; the nearest are "):
            bucket.database("tiny", "2024-04-30")
        with pytest.raises(InvalidRequest, match="only its current databases"):
            SourceDirectory(server.url("flat"), http).database("tiny", "2024-05-01")
        with pytest.raises(UnknownDatabase, match=r"has no database 'tinny'; it has: tiny") as info:
            SourceDirectory(server.url("flat"), http).database("tinny")
        assert info.value.exit_code == 2 and "did you mean tiny?" in str(info.value.hint)
        with pytest.raises(SourceError, match="not a BLAST database directory"):
            SourceDirectory(server.url("bucket/2024-05-01-01-05-02/none"), http).database("x")


def test_ranges_survive_a_dropped_connection(site: Path) -> None:
    slept: list[float] = []
    http = HttpSource(retries=2, backoff=0.25, sleep=slept.append)
    body = (site / "flat" / "tiny.tar.gz").read_bytes()
    with MirrorServer(site) as server:
        url = server.url("flat/tiny.tar.gz")
        head = http.head(url)
        assert (head.size, head.ranges) == (len(body), True)
        server.drop("/flat/tiny.tar.gz", after=1000)
        assert http.get_range(url, 500, 5000) == body[500:5500]
        first, second = server.requests("tiny.tar.gz")
        assert (first.start, first.sent, first.complete) == (500, 1000, False)
        # The retry asks for the rest only, from the byte where the connection dropped.
        assert (second.start, second.sent, second.complete) == (1500, 4000, True)
        assert slept == [0.25]
        for _ in range(3):
            server.drop("/flat/tiny.tar.gz", after=10)  # each attempt gets 10 bytes further
        with pytest.raises(SourceError, match=r"connection dropped after 30 of 100 bytes; tried 3"):
            http.get_range(url, 0, 100)
        with pytest.raises(SourceError, match="HTTP 404"):
            http.get_range(server.url("flat/missing.tar.gz"), 0, 10)
        server.ranges = False
        assert http.head(url).ranges is False
        with http.stream(url) as stream:
            assert stream.read(len(body) + 1) == body


def test_a_held_transfer_outlasts_read_timeouts_until_released(site: Path) -> None:
    # What the Ctrl-C and kill tests rely on: held, the volume cannot finish, and no read
    # timeout ends the GET (a retry with Range would finish it).
    http = HttpSource(retries=2, backoff=0.01, timeout=2.0)
    body = (site / "flat" / "tiny.tar.gz").read_bytes()
    with MirrorServer(site) as server:
        url = server.url("flat/tiny.tar.gz")
        release = server.hold("/flat/tiny.tar.gz", after=1000, every=0.1)
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(http.get_range(url, 0, len(body))))
        reader.start()
        reader.join(3 * http.timeout)
        assert reader.is_alive() and len(server.requests("tiny.tar.gz")) == 1
        release.set()
        reader.join(60)
        assert got == [body]
        held, rest = server.requests("tiny.tar.gz")
        assert held.start == 0 and 1000 < held.sent < len(body) and not held.complete
        assert (rest.start, rest.sent, rest.complete) == (held.sent, len(body) - held.sent, True)


def test_unreachable_source_fails_fast() -> None:
    http = HttpSource(retries=5, backoff=0.01)
    with pytest.raises(SourceError, match=r"cannot reach http://127.0.0.1:9/x/latest-dir \("):
        SourceDirectory("http://127.0.0.1:9/x", http).database("nt")
