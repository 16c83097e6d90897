"""The blast-jobs CLI without storage: parsing, the JSON envelope, progress, exit codes."""

from __future__ import annotations

import io
import json

import pytest
from blast_client.cli.jobs import parse_duration
from blast_client.cli.main import main
from blast_client.cli.progress import Progress, TransferProgress
from blast_client.cli.render import Result, emit, emit_error
from blast_client.errors import BlastClientError, JobNotFound

COMMANDS = (
    ["init"],
    ["submit", "--db", "d"],
    ["status", "j"],
    ["wait", "j"],
    ["results", "j"],
    ["recent"],
    ["run-jobs", "r"],
    ["db", "upload", "n", "f"],
    ["db", "list"],
    ["db", "fetch", "swissprot", "--source", "gcp", "--date", "2024-05-01", "--as", "sp"],
)


@pytest.fixture
def no_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    """No storage settings: every command fails with the config error (exit 2) once it needs
    the client, which shows how it printed its output."""
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT", raising=False)


def _exit_code(argv: list[str]) -> object:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


@pytest.mark.parametrize("argv", COMMANDS)
@pytest.mark.usefixtures("no_storage")
def test_output_json_works_before_and_after_the_command(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    where = [[*argv, "--output", "json"], ["--output", "json", *argv], [*argv, "-o", "json"]]
    if argv[0] == "db":  # a group takes it between its name and the action too
        where.append(["db", "--output", "json", *argv[1:]])
    for args in where:
        assert _exit_code(args) == 2, args
        doc = json.loads(capsys.readouterr().out)
        assert doc["command"] == " ".join(argv[:2] if argv[0] == "db" else argv[:1])
        assert doc["error"]["code"] == "config", args
    # Without the flag (or after json before the command, text after it): one line on stderr.
    for args in (argv, ["--output", "json", *argv, "--output", "text"]):
        assert _exit_code(args) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.startswith("blast-jobs: "), args


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["submit"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["results", "j", "--format", "5"])
    assert info.value.code == 2


def test_missing_configuration_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT", raising=False)
    with pytest.raises(SystemExit) as info:
        main(["status", "job-1", "--output", "json"])
    assert info.value.code == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["command"] == "status" and doc["data"] is None
    assert doc["error"]["code"] == "config" and doc["error"]["exit_code"] == 2
    assert "AZURE_STORAGE_ACCOUNT" in doc["error"]["message"]
    # The flag before the command counts too (it used to be ignored).
    with pytest.raises(SystemExit) as info:
        main(["--output", "json", "status", "job-1"])
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "config"


def test_json_envelope_and_text() -> None:
    out = io.StringIO()
    code = emit("status", Result({"a": 1}, lambda d: f"a={d['a']}"), "json", out)
    assert code == 0 and json.loads(out.getvalue()) == {
        "ok": True,
        "command": "status",
        "data": {"a": 1},
        "error": None,
    }
    out = io.StringIO()
    assert emit("status", Result({"a": 1}, lambda d: f"a={d['a']}"), "text", out) == 0
    assert out.getvalue() == "a=1\n"
    out = io.StringIO()
    failed = BlastClientError("1 of 1 jobs did not succeed")
    # A failure keeps the same four keys; data is the partial result (the jobs waited for).
    assert emit("wait", Result([], error=failed), "json", out) == 1
    assert json.loads(out.getvalue()) == {
        "command": "wait",
        "ok": False,
        "data": [],
        "error": {
            "code": "error",
            "message": "1 of 1 jobs did not succeed",
            "hint": None,
            "exit_code": 1,
        },
    }


def test_errors_render_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert emit_error("status", JobNotFound("job x not found", hint="check the id"), "text") == 1
    err = capsys.readouterr().err
    assert err == "blast-jobs: job x not found; check the id\n"


def test_progress_prints_plain_lines_without_a_tty() -> None:
    stream = io.StringIO()
    bar = Progress(3, stream=stream)
    bar.update(0, "3 queued")
    bar.update(0, "3 queued")  # unchanged: no new line
    bar.update(2, "2 succeeded, 1 running")
    bar.close()
    assert stream.getvalue().splitlines() == [
        "0/3 finished; 3 queued",
        "2/3 finished; 2 succeeded, 1 running",
    ]


def test_transfer_progress_lines_without_a_tty() -> None:
    stream = io.StringIO()
    bar = TransferProgress(stream=stream, interval=3600)
    bar.update(0, 10 * 2**20, 0, 4, 0.0, None)
    bar.update(2**20, 10 * 2**20, 0, 4, 2**20, 9.0)  # same volume count, within the interval
    bar.update(5 * 2**20, 10 * 2**20, 2, 4, 2**20, 5.0)
    bar.update(10 * 2**20, 10 * 2**20, 4, 4, 2**20, 3725.0)
    bar.close()
    assert stream.getvalue().splitlines() == [
        "0.0/10.0 MiB  0.0 MiB/s  ETA --:--  0/4 volumes",
        "5.0/10.0 MiB  1.0 MiB/s  ETA 0:05  2/4 volumes",
        "10.0/10.0 MiB  1.0 MiB/s  ETA 1:02:05  4/4 volumes",
    ]


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
