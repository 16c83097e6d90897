"""Where each BLAST database's bytes-to-cache comes from (pure), and what plan, up and run do
when it is unknown."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deployer import api
from deployer.cli.main import app
from deployer.errors import InputError, WorkloadFileError
from deployer.plan.databases import (
    OFFLINE,
    DatabaseSize,
    SizeSource,
    StoredSizes,
    database_sizes,
    describe,
    needs_storage,
    require_known,
    sized,
)
from deployer.workload import Workload, load, parse

THREE = """\
deployment: {{name: demo, location: westeurope, registry: r.azurecr.io,
             managed_identity: /x/id, managed_identity_client_id: cid{account}}}
workloads:
  blast:
    workers: 2
    databases:
      - {{name: explicit_db, bytes_to_cache: 1000000}}
      - {{name: file_db, metadata: meta.json}}
      - {{name: {third}}}
"""
STORED = StoredSizes({"stored_db": 3_000_000_000, "no_size": None}, "container blastdb of acc")


def _text(third: str, account: str = "") -> str:
    return THREE.format(third=third, account=f", storage_account: {account}" if account else "")


def _workload(tmp_path: Path, third: str = "stored_db") -> Workload:
    (tmp_path / "meta.json").write_text(json.dumps({"bytes-to-cache": 2_000_000}))
    return parse(_text(third), "w.yaml", tmp_path)


def _by_name(sizes: tuple[DatabaseSize, ...]) -> dict[str, DatabaseSize]:
    return {s.name: s for s in sizes}


def test_each_size_says_where_it_came_from(tmp_path: Path) -> None:
    blast = _workload(tmp_path).workloads.blast
    assert blast is not None
    assert needs_storage(blast) == ["stored_db"]
    sizes = _by_name(database_sizes(blast, STORED))
    assert sizes["explicit_db"] == DatabaseSize(
        "explicit_db", 1_000_000, SizeSource.EXPLICIT, "the workload file"
    )
    assert sizes["file_db"] == DatabaseSize(
        "file_db", 2_000_000, SizeSource.METADATA_FILE, "meta.json"
    )
    assert sizes["stored_db"] == DatabaseSize(
        "stored_db",
        3_000_000_000,
        SizeSource.STORAGE_MANIFEST,
        "container blastdb of acc: stored_db/manifest.json",
    )
    lines = [describe(s) for s in sizes.values()]
    assert lines == [
        "Database explicit_db: bytes-to-cache 0.00 GB, given in the workload file",
        "Database file_db: bytes-to-cache 0.00 GB, from the metadata file meta.json",
        "Database stored_db: bytes-to-cache 3.00 GB, from the storage manifest (container "
        "blastdb of acc: stored_db/manifest.json)",
    ]


def test_an_explicit_value_wins_over_the_storage_manifest(tmp_path: Path) -> None:
    blast = _workload(tmp_path).workloads.blast
    assert blast is not None
    stored = StoredSizes({"explicit_db": 9, "file_db": 9, "stored_db": 3}, "c")
    sizes = _by_name(database_sizes(blast, stored))
    assert sizes["explicit_db"].bytes_to_cache == 1_000_000
    assert sizes["file_db"].bytes_to_cache == 2_000_000


@pytest.mark.parametrize(
    ("third", "stored", "why"),
    [
        ("missing_db", STORED, "it is not in storage (container blastdb of acc) yet"),
        ("no_size", STORED, "its manifest in storage (container blastdb of acc) has no"),
        ("stored_db", StoredSizes(error="refused (403)"), "could not be read: refused (403)"),
        ("stored_db", OFFLINE, "its manifest in storage was not read (--offline)"),
    ],
)
def test_an_unknown_size_is_assumed_zero_in_the_plan_and_refused_for_up(
    tmp_path: Path, third: str, stored: StoredSizes, why: str
) -> None:
    workload = _workload(tmp_path, third)
    assert workload.workloads.blast is not None
    sizes = database_sizes(workload.workloads.blast, stored)
    unknown = _by_name(sizes)[third]
    assert unknown.source is SizeSource.ASSUMED and unknown.bytes_to_cache is None
    assert why in unknown.detail
    assert "sized as if it took no memory" in describe(unknown)
    with pytest.raises(InputError) as info:
        require_known(sizes, "w.yaml")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"database {third} has no bytes_to_cache in the workload file and ")
    fetch = f"fetch it first (`deployer db fetch w.yaml {third}`), or give bytes_to_cache"
    assert (fetch in text) == (third == "missing_db"), text
    assert text.endswith("bytes_to_cache or metadata in workloads.blast.databases")


def test_sized_fills_in_what_storage_said_and_keeps_the_rest(tmp_path: Path) -> None:
    workload = _workload(tmp_path)
    assert workload.workloads.blast is not None
    out = sized(workload, database_sizes(workload.workloads.blast, STORED))
    assert out.workloads.blast is not None
    assert [d.bytes_to_cache for d in out.workloads.blast.databases] == [
        1_000_000,
        2_000_000,
        3_000_000_000,
    ]
    assert workload.workloads.blast.databases[2].bytes_to_cache is None  # input unchanged
    require_known(database_sizes(out.workloads.blast, StoredSizes()), "w.yaml")


def test_both_a_size_and_a_metadata_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text("{}")
    text = _text("x").replace("- {name: x}", "- {name: x, bytes_to_cache: 1, metadata: m.json}")
    with pytest.raises(WorkloadFileError) as info:
        parse(text, "w.yaml", tmp_path)
    assert "give bytes_to_cache or metadata, not both" in info.value.message


def test_offline_plan_says_what_it_assumed(
    tmp_path: Path, deployer_env: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    (tmp_path / "meta.json").write_text(json.dumps({"bytes-to-cache": 2_000_000}))
    # A storage account that is never reached: --offline reads no manifest.
    path = workload_file(_text("swissprot", account="neverread"))
    result = api.plan(path, offline=True)
    unknown = _by_name(tuple(result.databases))["swissprot"]
    assert unknown.source is SizeSource.ASSUMED
    assert unknown.detail == "its manifest in storage was not read (--offline)"
    cli = CliRunner().invoke(app, ["plan", str(path), "--offline"])
    assert cli.exit_code == 0, cli.output
    assert (
        "Database swissprot: bytes-to-cache unknown, as its manifest in storage was not read "
        "(--offline); the workers are sized as if it took no memory" in cli.stdout
    )
    doc = json.loads(CliRunner().invoke(app, ["plan", str(path), "--offline", "-o", "json"]).stdout)
    assert [d["source"] for d in doc["data"]["databases"]] == [
        "explicit",
        "metadata file",
        "assumed",
    ]


def test_up_refuses_a_database_of_unknown_size_before_azure(
    tmp_path: Path,
    deployer_env: dict[str, str],
    workload_file: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "meta.json").write_text(json.dumps({"bytes-to-cache": 2_000_000}))
    path = workload_file(_text("swissprot"))
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "sub")
    monkeypatch.setenv("DEPLOYER_RESOURCE_GROUP", "rg")

    def no_azure(settings: object) -> object:
        raise AssertionError("up must refuse before it builds a backend")

    with pytest.raises(InputError) as info:
        api.up(path, backend_factory=no_azure)  # type: ignore[arg-type]
    assert "database swissprot has no bytes_to_cache" in info.value.message
    assert "no storage is configured" in info.value.message
    assert load(path).workloads.blast is not None
