"""The worker's lease journal: one locked file per worker on the cache volume, replaced
atomically, read back by the worker's next life (see blast_worker/journal.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from blast_worker.journal import HeldMessage, LeaseJournal, journal_key


def test_a_record_survives_the_process_and_is_read_back(tmp_path: Path) -> None:
    # The first life records a message and dies without clearing it (the lock goes with it).
    script = (
        "import sys; from pathlib import Path; from blast_worker.journal import LeaseJournal; "
        "j = LeaseJournal.open(Path(sys.argv[1]), 'w1'); "
        "j.record('m-1', 'r-1', 'job-1'); j.record('m-1', 'r-2', 'job-1'); "
        "import os; os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=60)
    journal = LeaseJournal.open(tmp_path, "w1")
    assert journal is not None
    held = journal.held()
    assert held is not None
    assert (held.message_id, held.pop_receipt, held.job_id) == ("m-1", "r-2", "job-1")
    assert held.recorded_at > 0
    journal.clear()
    assert journal.held() is None
    journal.clear()  # clearing twice is fine
    assert not list((tmp_path / ".leases").glob("*.tmp"))
    journal.close()


def test_a_live_worker_keeps_its_journal_from_a_second_process(tmp_path: Path) -> None:
    first = LeaseJournal.open(tmp_path, "host")
    assert first is not None
    first.record("m-1", "r-1", None)
    script = (
        "import sys; from pathlib import Path; from blast_worker.journal import LeaseJournal; "
        "print(LeaseJournal.open(Path(sys.argv[1]), 'host') is None)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    assert out.strip() == "True"
    # Another key on the same volume is another worker's journal.
    other = LeaseJournal.open(tmp_path, "other-host")
    assert other is not None and other.held() is None
    held = first.held()
    assert held is not None
    assert held == HeldMessage("m-1", "r-1", None, held.recorded_at)
    first.close()
    other.close()


def test_an_unreadable_record_is_ignored(tmp_path: Path) -> None:
    journal = LeaseJournal.open(tmp_path, "w")
    assert journal is not None
    for text in ("", "{", "[]", '{"message_id": "m"}', "null"):
        journal.path.write_text(text)
        assert journal.held() is None
    journal.record("m", "r", None)
    assert journal.held() is not None
    journal.close()


def test_journal_key_is_a_safe_file_stem() -> None:
    assert journal_key("3f2a9c1d0b7e") == "3f2a9c1d0b7e"
    assert journal_key("a/b\\c d") == "a_b_c_d"
    assert journal_key("..") == "worker"
    assert journal_key("") == "worker"
    assert journal_key() != ""
