"""deployer.run.places: a run started here is found again by its id alone."""

from __future__ import annotations

import json
import os

import pytest

from deployer.defaults import state_dir
from deployer.run import places
from deployer.settings import Settings


def settings(account: str | None, **kw: str) -> Settings:
    return Settings(
        deployment="lab",
        location="westeurope",
        registry="r.azurecr.io",
        image_tag="1",
        storage_account=account,
        subscription=kw.get("subscription", "sub"),
        resource_group=kw.get("resource_group", "rg"),
    )


def test_a_run_is_recalled_with_its_account_and_scope_and_no_secret(
    deployer_env: dict[str, str],
) -> None:
    places.remember("r0000000a", settings("labdata"))
    place = places.recall("r0000000a")
    assert place is not None
    again = place.settings()
    assert (again.storage_account, again.subscription, again.resource_group) == (
        "labdata",
        "sub",
        "rg",
    )
    assert again.deployment == "lab" and again.storage_connection_string is None
    (path,) = (state_dir() / "runs").glob("*.json")
    assert set(json.loads(path.read_text())) == {
        "run_id",
        "deployment",
        "storage_account",
        "subscription",
        "resource_group",
    }
    assert oct(path.parent.stat().st_mode & 0o777) == oct(0o700)


def test_storage_from_a_connection_string_is_not_recorded(deployer_env: dict[str, str]) -> None:
    places.remember("r0000000b", settings(None))
    assert places.recall("r0000000b") is None
    assert places.latest() is None


def test_latest_is_the_last_run_started_and_garbage_is_ignored(
    deployer_env: dict[str, str],
) -> None:
    places.remember("r00000001", settings("first"))
    places.remember("r00000002", settings("second"))
    folder = state_dir() / "runs"
    (folder / "r00000003.json").write_text("{not json")
    first, second = folder / "r00000001.json", folder / "r00000002.json"
    os.utime(first, (1, 1))
    os.utime(second, (2, 2))
    latest = places.latest()
    assert latest is not None and latest.storage_account == "second"
    assert places.recall("r00000003") is None


def test_storage_in_the_environment_wins(
    deployer_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert not places.storage_in_env()
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", "fromenv")
    assert places.storage_in_env()
