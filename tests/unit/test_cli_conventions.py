"""The conventions both command lines share (README, "CLI conventions"): one JSON envelope
of the same shape on success and failure, one stderr line for people, the exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from blast_client.cli.render import Result, emit

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
KEYS = {"command", "ok", "data", "error"}
ERROR_KEYS = {"code", "message", "hint", "exit_code"}


def cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def no_settings() -> dict[str, str]:
    drop = ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_SUBSCRIPTION_ID")
    return {k: v for k, v in os.environ.items() if k not in drop}


def test_success_has_the_four_keys_in_both_command_lines(tmp_path: Path) -> None:
    deployer = cli(
        "deployer",
        "plan",
        str(ROOT / "examples" / "cluster.yaml"),
        "--offline",
        "-o",
        "json",
        env={**no_settings(), "DEPLOYER_STATE_DIR": str(tmp_path)},
    )
    assert deployer.returncode == 0, deployer.stderr
    out = io.StringIO()
    assert emit("recent", Result([{"job_id": "j"}]), "json", out) == 0
    for doc in (json.loads(deployer.stdout), json.loads(out.getvalue())):
        assert set(doc) == KEYS and doc["ok"] is True and doc["error"] is None
        assert doc["data"] is not None


def test_failure_has_the_four_keys_one_stderr_line_and_the_error_exit_code(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "w.yaml"
    bad.write_text("deployment: {name: x}\nworkloads: {}\nextra: 1\n")
    runs = {
        "deployer": cli("deployer", "plan", str(bad), "--offline", "--output", "json"),
        "blast-jobs": cli("blast-jobs", "--output", "json", "status", "j", env=no_settings()),
    }
    for name, proc in runs.items():
        doc = json.loads(proc.stdout)
        assert set(doc) == KEYS and doc["ok"] is False and doc["data"] is None, name
        assert set(doc["error"]) == ERROR_KEYS, name
        assert proc.returncode == doc["error"]["exit_code"] == 2, name
        # People get the error on stderr in both formats; never a traceback.
        assert doc["error"]["message"].splitlines()[0] in proc.stderr, name
        assert "Traceback" not in proc.stderr, name
