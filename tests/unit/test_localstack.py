"""The local stack's pure parts: its env file and the health verdict."""

from __future__ import annotations

import stat
from pathlib import Path

from deployer.localstack import ensure_env_file, read_env_file, stack_verdict

ONE_SHOT = frozenset({"init"})


def test_env_file_is_private_single_line_and_kept(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    assert ensure_env_file(path) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = read_env_file(path)
    for name in ("NOTEBOOK_TOKEN", "IPP_KEY", "IPP_SSH_KEY", "IPP_SSH_HOST_KEY", "STORAGE_KEY"):
        assert len(first[name]) >= 32, name
    assert "BEGIN" not in path.read_text()  # private keys are base64, one line each
    assert ensure_env_file(path) is False
    assert read_env_file(path) == first


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
