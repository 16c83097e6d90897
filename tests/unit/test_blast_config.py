"""Configuration loading and validation, CPU detection, health reporting, pure helpers."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from blast_worker.cli.jobs import parse_duration
from blast_worker.config import ConfigError, available_cpus, load_worker_config
from blast_worker.demo import DemoSpec, generate
from blast_worker.health import HealthState, serve
from blast_worker.joblog import index_partition, index_partitions_since, index_row
from blast_worker.provision import _PartState, build_manifest, decode_md5, plan_chunks

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


def test_health_reports() -> None:
    h = HealthState("w1", stale_after=60, started=1000.0)
    assert h.report(now=1010)[0] == 200
    code, body = h.report(now=1100)
    assert code == 503 and body["status"] == "unhealthy" and "no successful" in body["reason"]
    h.touch(now=1090)
    h.set("busy", "job-9")
    code, body = h.report(now=1100)
    assert (code, body["state"], body["job"], body["last_poll"]) == (200, "busy", "job-9", 1090)
    assert h.report(now=5000)[0] == 200  # a long BLAST run is not a failure
    h.stopping = True
    assert h.report(now=1100)[0] == 503


def test_health_endpoint_and_healthcheck_module() -> None:
    h = HealthState("w1")
    h.touch()
    server = serve(h, 0)
    try:
        port = server.server_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            body = json.load(resp)
        assert body["status"] == "ok" and body["worker_id"] == "w1" and body["state"] == "starting"
        proc = subprocess.run(
            [sys.executable, "-m", "blast_worker.healthcheck"],
            env={"BLAST_HEALTH_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 0 and json.loads(proc.stdout)["worker_id"] == "w1"
        h.stopping = True
        proc = subprocess.run(
            [sys.executable, "-m", "blast_worker.healthcheck"],
            env={"BLAST_HEALTH_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 1 and json.loads(proc.stdout)["status"] == "stopping"
    finally:
        server.shutdown()
    proc = subprocess.run(
        [sys.executable, "-m", "blast_worker.healthcheck"],
        env={"BLAST_HEALTH_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1 and json.loads(proc.stdout)["status"] == "unreachable"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("90s", 90), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("0.5h", 1800)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "m", "15x", "1h 30m", "-5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_time_index_keys_sort_and_cover_the_window() -> None:
    t = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    assert index_partition(t) == "t2023111422"
    assert index_row(t, "j") < index_row(t + 0.001, "j") < index_row(t + 10, "a")
    assert index_partitions_since(t - 3600, t) == ["t2023111421", "t2023111422"]
    assert index_partitions_since(t - 60, t) == ["t2023111422"]


def test_demo_data_is_deterministic_and_planted() -> None:
    spec = DemoSpec(seqs=20, seq_len=300, queries=4, decoys=1, query_len=100)
    a, b = generate(spec), generate(spec)
    assert a == b
    digest = hashlib.sha256(a.subjects.encode() + a.queries.encode()).hexdigest()
    # Pinned so that a change to the generator (and thus to every test database) is noticed.
    assert digest == DEMO_DIGEST
    assert a.queries.count(">") == 5 and set(a.planted) == {f"query_00{i}" for i in range(1, 5)}
    assert generate(DemoSpec(seqs=20, seq_len=300, seed=1)) != a


DEMO_DIGEST = "f686980a64480a105b9095bec51c9d2b8b2bf489c81c683d2860addfaecf24fd"


def test_chunk_plan_covers_file() -> None:
    assert plan_chunks(10, 4) == [(0, 4), (4, 4), (8, 2)]
    assert plan_chunks(0, 4) == []
    assert plan_chunks(8, 4) == [(0, 4), (4, 4)]


def test_manifest_and_md5_parsing(tmp_path: Path) -> None:
    f = tmp_path / "db.nsq"
    f.write_bytes(b"hello")
    m = build_manifest("db", [f])
    assert m["files"]["db.nsq"] == {"size": 5, "md5": hashlib.md5(b"hello").hexdigest()}
    raw = hashlib.md5(b"hello").digest()
    assert decode_md5(raw.hex()) == raw
    assert decode_md5(base64.b64encode(raw).decode()) == raw
    with pytest.raises(ValueError):
        decode_md5("abc")


def test_part_state_resumes_only_for_the_same_blob(tmp_path: Path) -> None:
    path = tmp_path / "x.part.state"
    s = _PartState(path, {"etag": "e1", "size": 10, "chunk": 4})
    s.mark(0)
    s.mark(2)
    assert _PartState(path, {"etag": "e1", "size": 10, "chunk": 4}).done == {0, 2}
    assert _PartState(path, {"etag": "e2", "size": 10, "chunk": 4}).done == set()
