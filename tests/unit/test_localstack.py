"""The local stack's pure parts: its env file and the health verdict."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from deployer.localstack import (
    ensure_env_file,
    read_env_file,
    read_secret_files,
    secrets_dir_for,
    stack_verdict,
)

ONE_SHOT = frozenset({"init"})


def test_secrets_are_private_files_and_the_env_file_holds_none(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    assert ensure_env_file(path) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    folder = secrets_dir_for(path)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = read_secret_files(folder)
    assert set(files) == {
        "azurite_accounts",
        "azure_storage_key",
        "notebook_token",
        "web_token",
        "ipp_key",
        "ipp_ssh_host_key",
        "ipp_ssh_key",
    }
    for name, value in files.items():
        info = (folder / name).stat()
        assert stat.S_IMODE(info.st_mode) == 0o600, name
        if os.geteuid() == 0:  # root hands them to the images' user
            assert (info.st_uid, info.st_gid) == (1000, 1000), name
        assert len(value) >= 32, name
    assert files["azurite_accounts"] == f"acilocal:{files['azure_storage_key']}"
    assert files["ipp_ssh_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    env = read_env_file(path)
    assert env["SECRETS_DIR"] == str(folder.resolve())
    text = path.read_text()
    for value in files.values():
        for line in value.splitlines()[1:-1] or [value]:
            assert line not in text
    assert ensure_env_file(path) is False
    assert read_secret_files(folder) == files


def test_a_missing_secret_file_regenerates_all(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    ensure_env_file(path)
    before = read_secret_files(secrets_dir_for(path))
    (secrets_dir_for(path) / "ipp_key").unlink()
    assert ensure_env_file(path) is True
    after = read_secret_files(secrets_dir_for(path))
    assert set(after) == set(before) and after["ipp_key"] != before["ipp_key"]


def test_verdict_waits_then_reports_ready() -> None:
    assert stack_verdict({}, ONE_SHOT) is None
    starting = {"azurite-1": "healthy", "init-1": "running", "notebook-1": "starting"}
    assert stack_verdict(starting, ONE_SHOT) is None
    ready = {"azurite-1": "healthy", "init-1": "exited 0", "notebook-1": "healthy"}
    assert stack_verdict(ready, ONE_SHOT) == "ready"


def test_verdict_names_the_failed_service() -> None:
    failed_init = {"azurite-1": "healthy", "init-1": "exited 1"}
    assert "init-1 failed (exited 1)" in str(stack_verdict(failed_init, ONE_SHOT))
    unhealthy = {"azurite-1": "unhealthy", "init-1": "exited 0"}
    assert "azurite-1 is unhealthy" in str(stack_verdict(unhealthy, ONE_SHOT))
