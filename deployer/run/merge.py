"""Merging per-batch results into one file per format, and the run's manifest (pure).

Batches are contiguous slices of the query file, so concatenating them in batch order keeps
query order. What each format needs:

* 6 (tabular): plain concatenation; byte-identical to one blastn of the whole file.
* 7 (commented tabular): blastn writes one header block per query and one closing line
  ``# BLAST processed N queries`` per file; each batch's closing line is dropped and one with
  the total is written at the end, as a single blastn would.
* 15 (JSON): one ``{"BlastOutput2": [...]}`` document holding every query's report.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from deployer.run.state import Run

MERGED_FORMATS = (6, 7, 15)
FILE_NAMES = {6: "results.6.tsv", 7: "results.7.txt", 15: "results.15.json", 11: "results.asn1"}
"""Merged file names (and the per-batch blob names the worker writes)."""
_PROCESSED = re.compile(rb"^# BLAST processed (\d+) quer(?:y|ies)\n?\Z", re.MULTILINE)


class MergeError(ValueError):
    """A batch's result is not what the worker writes; the message names the batch."""


def merge_tabular(parts: Sequence[bytes]) -> bytes:
    """Concatenate outfmt 6 parts in batch order.

    Args:
        parts (Sequence[bytes]): One result per batch, in batch order.
    """
    return b"".join(parts)


def merge_commented(parts: Sequence[bytes]) -> bytes:
    """Concatenate outfmt 7 parts, keeping each query's header block and one closing line.

    Args:
        parts (Sequence[bytes]): One result per batch, in batch order.

    Raises:
        MergeError: When a part lacks the closing ``# BLAST processed`` line.
    """
    body: list[bytes] = []
    total = 0
    for i, part in enumerate(parts, start=1):
        lines = part.splitlines(keepends=True)
        if not lines or not (m := _PROCESSED.match(lines[-1])):
            raise MergeError(f"batch {i}: outfmt 7 result has no '# BLAST processed' line")
        total += int(m.group(1))
        body.extend(lines[:-1])
    noun = "query" if total == 1 else "queries"
    return b"".join(body) + f"# BLAST processed {total} {noun}\n".encode()


def merge_json(parts: Sequence[bytes]) -> bytes:
    """Join outfmt 15 parts into one BLAST JSON document with every query's report.

    Args:
        parts (Sequence[bytes]): One result per batch, in batch order.

    Raises:
        MergeError: When a part is not a ``{"BlastOutput2": [...]}`` document.
    """
    reports: list[Any] = []
    for i, part in enumerate(parts, start=1):
        try:
            doc = json.loads(part)
            items = doc["BlastOutput2"]
        except (ValueError, KeyError, TypeError):
            raise MergeError(f"batch {i}: outfmt 15 result is not BLAST JSON") from None
        if not isinstance(items, list):
            raise MergeError(f"batch {i}: BlastOutput2 is not a list")
        reports.extend(items)
    return (json.dumps({"BlastOutput2": reports}, indent=2) + "\n").encode()


MERGERS = {6: merge_tabular, 7: merge_commented, 15: merge_json}


def merge(fmt: int, parts: Sequence[bytes]) -> bytes:
    """Merge the parts of one format (6, 7 or 15).

    Args:
        fmt (int): The output format.
        parts (Sequence[bytes]): One result per batch, in batch order.
    """
    return MERGERS[fmt](parts)


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def batch_file(index: int, job_id: str, fmt: int) -> str:
    """Path of a kept per-batch file under the output directory (the archives, 11)."""
    return f"batches/{index:05d}-{job_id}.{FILE_NAMES[fmt].split('.', 1)[1]}"


def manifest(run: Run, files: Mapping[str, bytes], job_states: Mapping[str, str]) -> dict[str, Any]:
    """The run's ``manifest.json``: batches, job ids, sha256 of every file, parameters.

    Args:
        run (Run): The run record.
        files (Mapping[str, bytes]): Every written file by its path under the output directory.
        job_states (Mapping[str, str]): Final state of each job id.
    """
    return {
        "run_id": run.run_id,
        "deployment": run.deployment,
        "status": run.status,
        "created": run.created,
        "finished": run.finished,
        "parameters": run.params,
        "queries": run.queries,
        "batches": [
            {
                "index": b.index,
                "job_id": b.job_id,
                "queries": b.queries,
                "state": job_states.get(b.job_id, "unknown"),
                "archive": batch_file(b.index, b.job_id, 11),
            }
            for b in run.batches
        ],
        "files": {
            path: {"sha256": sha256(data), "bytes": len(data)}
            for path, data in sorted(files.items())
        },
    }
