"""Worker configuration: loading and validation, CPU detection, exit code 2 on bad settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from blast_client.config import ConfigError
from blast_worker.config import available_cpus, load_worker_config

CONN = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;"
)


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {
        "AZURE_STORAGE_CONNECTION_STRING": CONN,
        "BLAST_DB_CACHE": str(tmp_path / "c"),
        "BLAST_WORK_DIR": str(tmp_path / "w"),
    }
    base.update(extra)
    return base


def test_defaults(tmp_path: Path) -> None:
    cfg = load_worker_config(env(tmp_path))
    s = cfg.storage
    assert (s.queue, s.poison_queue, s.table) == ("blast-jobs", "blast-jobs-poison", "blastjobs")
    assert (s.db_container, s.results_container, s.inputs_container) == (
        "blastdb",
        "blast-results",
        "blast-inputs",
    )
    assert cfg.max_dequeue == 5 and cfg.health_port == 8080 and cfg.dbs == ()
    assert cfg.threads == available_cpus() >= 1
    assert (tmp_path / "c").is_dir()


def test_dbs_are_parsed(tmp_path: Path) -> None:
    cfg = load_worker_config(env(tmp_path, BLAST_DBS=" demo, nt_small ,,"))
    assert cfg.dbs == ("demo", "nt_small")


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        ({"AZURE_STORAGE_CONNECTION_STRING": ""}, "AZURE_STORAGE_CONNECTION_STRING"),
        ({"AZURE_STORAGE_CONNECTION_STRING": "garbage"}, "AZURE_STORAGE_CONNECTION_STRING"),
        ({"BLAST_QUEUE": "Bad_Queue"}, "BLAST_QUEUE"),
        ({"BLAST_JOB_TABLE": "blast-jobs"}, "BLAST_JOB_TABLE"),
        ({"BLAST_RESULTS_CONTAINER": "x"}, "BLAST_RESULTS_CONTAINER"),
        ({"BLAST_DBS": "demo,../etc"}, "BLAST_DBS"),
        ({"BLAST_THREADS": "two"}, "BLAST_THREADS"),
        ({"BLAST_THREADS": "0"}, "BLAST_THREADS"),
        ({"BLAST_MAX_DEQUEUE": "-1"}, "BLAST_MAX_DEQUEUE"),
        ({"BLAST_JOB_TIMEOUT": "nan"}, "BLAST_JOB_TIMEOUT"),
        ({"BLAST_VISIBILITY_TIMEOUT": "1"}, "BLAST_VISIBILITY_TIMEOUT"),
        ({"BLAST_HEALTH_PORT": "70000"}, "BLAST_HEALTH_PORT"),
        ({"BLAST_DB_CACHE": "relative/dir"}, "BLAST_DB_CACHE"),
        ({"BLAST_DB_CACHE": "/proc/blast-cache"}, "BLAST_DB_CACHE"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, extra: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        load_worker_config(env(tmp_path, **extra))


def test_account_name_alone_is_enough(tmp_path: Path) -> None:
    e = env(tmp_path, AZURE_STORAGE_CONNECTION_STRING="", AZURE_STORAGE_ACCOUNT="myacct01")
    assert load_worker_config(e).storage.account_name == "myacct01"
    e["AZURE_STORAGE_ACCOUNT"] = "My_Account"
    with pytest.raises(ConfigError, match="AZURE_STORAGE_ACCOUNT"):
        load_worker_config(e)


def test_worker_exits_2_naming_the_variable(tmp_path: Path) -> None:
    e = env(tmp_path, BLAST_MAX_DEQUEUE="many")
    proc = subprocess.run(
        [sys.executable, "-m", "blast_worker.worker"],
        env=e,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "BLAST_MAX_DEQUEUE" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cgroup_quota_caps_cpus(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) >= 1
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert available_cpus(tmp_path) == min(2, available_cpus(tmp_path / "none"))
