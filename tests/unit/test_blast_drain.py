"""The worker's exit-when-drained mode: its setting and its decision."""

from __future__ import annotations

from pathlib import Path

import pytest
from blast_client.config import ConfigError
from blast_worker.config import load_worker_config, parse_duration
from blast_worker.worker import Worker


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
        "BLAST_DB_CACHE": str(tmp_path / "cache"),
        "BLAST_WORK_DIR": str(tmp_path / "work"),
        **extra,
    }


@pytest.mark.parametrize(
    ("text", "seconds"), [("120", 120.0), ("120s", 120.0), ("2m", 120.0), ("1.5h", 5400.0)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "-5s", "0", "soon", "5d", "nan"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_service_mode_is_the_default(tmp_path: Path) -> None:
    assert load_worker_config(env(tmp_path)).exit_when_idle is None


def test_exit_when_idle_is_read(tmp_path: Path) -> None:
    assert load_worker_config(env(tmp_path, BLAST_EXIT_WHEN_IDLE="2m")).exit_when_idle == 120.0
    with pytest.raises(ConfigError, match="BLAST_EXIT_WHEN_IDLE"):
        load_worker_config(env(tmp_path, BLAST_EXIT_WHEN_IDLE="later"))


def test_drained_needs_the_whole_idle_window(tmp_path: Path) -> None:
    cfg = load_worker_config(env(tmp_path, BLAST_EXIT_WHEN_IDLE="10s"))
    worker = Worker(cfg)
    assert not worker.drained(None, 1000.0)
    assert not worker.drained(995.0, 1000.0)
    assert worker.drained(990.0, 1000.0)
    service = Worker(load_worker_config(env(tmp_path)))
    assert not service.drained(0.0, 1e9)
