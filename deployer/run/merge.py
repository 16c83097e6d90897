"""A run's merged results and its manifest (pure).

The merge of each format is :mod:`blast_client.merge`'s, which the web page uses too; a run
merges every derived format it asked for (``blast_client.messages.OUTPUT_FORMATS``) into a
file named as each job's (``FORMAT_FILES``). A run never writes a merged file that silently
misses a batch: :func:`merge` raises :class:`MergeError` naming every batch whose result
could not be merged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from blast_client import merge as results
from blast_client import shardmerge
from blast_client.messages import FORMAT_EXTENSIONS

from deployer.run.state import Run, batch_state


class MergeError(ValueError):
    """A batch's result is not what the worker writes; the message names each such batch."""


def merge(fmt: int, parts: Sequence[bytes]) -> bytes:
    """Merge the parts of one format (6, 7 or 15), refusing to leave a batch out.

    Args:
        fmt (int): The output format.
        parts (Sequence[bytes]): One result per succeeded batch, in batch order.

    Raises:
        MergeError: When a part cannot be merged.
    """
    merged = results.merge(fmt, parts)
    if merged.bad:
        raise MergeError("; ".join(str(b) for b in merged.bad))
    return merged.data


def batch_part(fmt: int, archives: Sequence[bytes], parts: Sequence[bytes]) -> bytes:
    """One batch's result in format ``fmt``: its job's, or its shards' merged into one
    search of the whole database (:mod:`blast_client.shardmerge`; a run sets no
    ``max_target_seqs``, so BLAST's 500, which each shard was asked for too).

    Args:
        fmt (int): 6 or 7 for a batch of shards (15 is refused before such a run starts).
        archives (Sequence[bytes]): Each job's archive (11), in shard order.
        parts (Sequence[bytes]): Each job's result in ``fmt``, in shard order.

    Raises:
        MergeError: When the shards' results cannot be merged.
    """
    if len(parts) == 1:
        return parts[0]
    try:
        if fmt == 6:
            return shardmerge.merge_tabular(archives, parts, None)
        if fmt == 7:
            return shardmerge.merge_commented(archives, parts, None)
    except ValueError as exc:
        raise MergeError(str(exc)) from None
    raise MergeError(f"outfmt {fmt} of a batch of shards is not merged")


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def batch_file(index: int, job_id: str, fmt: int) -> str:
    """Path of a kept per-batch file under the output directory (the archives, 11)."""
    return f"batches/{index:05d}-{job_id}.{FORMAT_EXTENSIONS[fmt]}"


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
                **(
                    {
                        "shards": [
                            {
                                "shard": i,
                                "job_id": job,
                                "state": job_states.get(job, "unknown"),
                                "archive": batch_file(b.index, job, 11),
                            }
                            for i, job in enumerate(b.shards, start=1)
                        ],
                        "state": batch_state(b, job_states),
                    }
                    if b.shards
                    else {}
                ),
            }
            for b in run.batches
        ],
        "files": {
            path: {"sha256": sha256(data), "bytes": len(data)}
            for path, data in sorted(files.items())
        },
    }
