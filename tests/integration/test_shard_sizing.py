"""``deployer plan`` cuts and sizes a database's shards by its volumes' real sizes in storage
(Azurite), as the workers cut them, and refuses a single-volume database too large for a group.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from blast_client import BlastClient
from typer.testing import CliRunner

from deployer.cli.main import app
from testbed.azurite import Azurite, azurite

GB = 10**9
# Files of 12, 18, 18 and 12 kB hold 30 GB of bytes-to-cache (the metadata's), so the real cut
# is 6, 9, 9, 6 GB where an even split would say 3 shards of 10 GB (best real 3-way cut: 15 GB).
VOLUMES = (12_000, 18_000, 18_000, 12_000)
METADATA = {"dbtype": "Nucleotide", "number-of-sequences": 40, "number-of-letters": 4000,
            "bytes-to-cache": 30 * GB}  # fmt: skip
WORKLOAD = """\
deployment: {{name: shard4sizing, location: westeurope, registry: r.azurecr.io,
             managed_identity: /x/id, managed_identity_client_id: cid}}
workloads:
  blast:
    workers: 2
    threads_per_worker: 2
    databases: [{{name: {db}}}]
"""


@pytest.fixture(scope="module")
def storage() -> Iterator[Azurite]:
    with azurite(f"acitest{os.getpid()}shard4sizing") as found:
        yield found


def _upload(client: BlastClient, tmp_path: Path, db: str, volumes: list[str] | None) -> None:
    """A database of ``volumes`` (``VOLUMES``' sizes; None: one volume without an alias)."""
    folder = tmp_path / db
    folder.mkdir()
    names = volumes or [db]
    sizes = VOLUMES if volumes else (sum(VOLUMES),)
    for name, size in zip(names, sizes, strict=True):
        (folder / f"{name}.nsq").write_bytes(b"s" * (size - 100))
        (folder / f"{name}.nhr").write_bytes(b"h" * 100)
    if volumes:
        (folder / f"{db}.nal").write_text(f"TITLE {db}\nDBLIST {' '.join(volumes)}\n")
    (folder / f"{db}.njs").write_text(json.dumps(METADATA))
    (folder / f"{db}.ndb").write_bytes(b"d" * 50_000)  # the database's own: in no shard's cut
    client.upload_database(db, sorted(folder.iterdir()))


def _plan(tmp_path: Path, db: str) -> tuple[int, dict[str, object]]:
    path = tmp_path / f"{db}.yaml"
    path.write_text(WORKLOAD.format(db=db))
    result = CliRunner().invoke(app, ["plan", str(path), "-o", "json"])
    return result.exit_code, json.loads(result.stdout)


def test_plan_cuts_and_sizes_shards_by_the_volumes_in_storage(
    storage: Azurite, tmp_path: Path, deployer_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", storage.connection_string())
    client = BlastClient(connection_string=storage.connection_string())
    client.ensure_resources()
    _upload(client, tmp_path, "ntx", [f"ntx.0{i}" for i in range(4)])
    _upload(client, tmp_path, "onevol", None)
    assert client.database_volumes("ntx") == VOLUMES
    assert client.database_volumes("onevol") == (sum(VOLUMES) + 50_000 + len(json.dumps(METADATA)),)
    assert client.database_volumes("absent") is None

    code, doc = _plan(tmp_path, "ntx")
    assert code == 0, doc
    # The database's line, then how the workers are pinned to its shards.
    line, pinning = doc["data"]["searches"]  # type: ignore[index]
    assert line.startswith("Database ntx: searched in 4 shards"), line
    assert pinning.startswith("Shards: each worker group serves one of the 4 shards"), pinning
    assert "cut by its volumes' sizes in storage" in line
    assert "needing 7.1, 10.4, 10.4, 7.1 GB, up to 9.0 GB of bytes-to-cache and 10.4 GB" in line

    # One volume cannot be cut: refused before anything is created, in one line.
    code, doc = _plan(tmp_path, "onevol")
    assert code == 2, doc
    message = doc["error"]["message"]  # type: ignore[index]
    assert message.startswith("database onevol: a volume of 30.0 GB is larger than"), message
    assert "\n" not in message
