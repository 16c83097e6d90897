"""Pure pieces of database provisioning: range plans, resumable part state, stream hashing."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest
from blast_worker.provision import _PartState, _StreamHash, decode_md5, plan_chunks


def test_chunk_plan_covers_file() -> None:
    assert plan_chunks(10, 4) == [(0, 4), (4, 4), (8, 2)]
    assert plan_chunks(0, 4) == []
    assert plan_chunks(8, 4) == [(0, 4), (4, 4)]


def test_md5_parsing() -> None:
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
