"""CLI pieces without storage: parsing, rendering, progress, exit codes, stream hashing."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from blast_worker.cli.main import build_parser, main
from blast_worker.cli.progress import Progress
from blast_worker.cli.render import CliError, Result, emit, emit_error
from blast_worker.provision import _StreamHash, plan_chunks


def test_every_command_accepts_output_json() -> None:
    parser = build_parser()
    for argv in (
        ["init"],
        ["submit", "--db", "d"],
        ["status", "j"],
        ["wait", "j"],
        ["results", "j"],
        ["recent"],
        ["db", "upload", "n", "f"],
    ):
        args = parser.parse_args([*argv, "--output", "json"])
        assert args.output == "json"


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
    assert doc["ok"] is False and "AZURE_STORAGE_ACCOUNT" in doc["error"]


def test_json_envelope_and_text() -> None:
    out = io.StringIO()
    code = emit("status", Result({"a": 1}, lambda d: f"a={d['a']}"), "json", out)
    assert code == 0 and json.loads(out.getvalue()) == {
        "ok": True,
        "command": "status",
        "data": {"a": 1},
    }
    out = io.StringIO()
    assert emit("status", Result({"a": 1}, lambda d: f"a={d['a']}"), "text", out) == 0
    assert out.getvalue() == "a=1\n"
    out = io.StringIO()
    assert emit("wait", Result([], code=1, error="1 of 1 failed"), "json", out) == 1
    assert json.loads(out.getvalue())["ok"] is False


def test_errors_render_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert emit_error("status", CliError("job x not found; check the id"), "text") == 1
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


def test_stream_hash_out_of_order_and_resumed(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    chunks = plan_chunks(len(data), 1024)
    part = tmp_path / "f.part"
    part.write_bytes(data[:2048] + b"\0" * (len(data) - 2048))  # chunks 0, 1 present
    fd = os.open(part, os.O_RDONLY)
    try:
        h = _StreamHash(fd, chunks, {0, 1})
        for index in reversed(range(2, len(chunks))):
            off, length = chunks[index]
            h.add(index, data[off : off + length])
        assert h.finish() == hashlib.md5(data).digest()
        incomplete = _StreamHash(fd, chunks, {0})
        with pytest.raises(RuntimeError):
            incomplete.finish()
    finally:
        os.close(fd)
