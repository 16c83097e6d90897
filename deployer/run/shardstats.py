"""What merging outfmt 15 of a batch of shards needs from the stored database.

:func:`blast_client.shardmerge.merge_json` needs each shard's first ordinal id in the whole
database (a database without ``-parse_seqids`` names a hit ``gnl|BL_ORD_ID|7``, counted
within its shard) and the whole database's (sequences, letters). Each number has one home:

* The totals are the database manifest's ``sequences`` and ``residues``: the very numbers a
  worker writes into its shard's alias file (``STATS_NSEQ``/``STATS_TOTLEN``,
  ``Provisioner.ensure_shard``), so the merged reports name what the shards searched with.
* A shard's first ordinal id is the sequences of the volumes before it. Each volume's count
  is in the header of its own index file (``.nin``/``.pin``, read from storage), and the
  shards are cut as the workers cut them: :func:`blast_client.shards.stored_volumes` and
  :func:`~blast_client.shards.split` of the same blobs, which weigh volumes by bytes only.

A number that cannot be read raises :class:`~deployer.run.merge.MergeError` in one line; the
merge never guesses one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from azure.core.exceptions import AzureError
from azure.storage.blob import ContainerClient
from blast_client import shards
from blast_client.client import database_blobs
from blast_client.databases import MANIFEST

from deployer.run.merge import MergeError, ShardStats

INDEX_SUFFIXES = {".nal": ".nin", ".pal": ".pin"}
"""A volume's index file, by the database's alias file."""

HEADER_BYTES = 512
"""First read of an index file's header (its title makes it longer at times; then more)."""


def index_sequences(header: bytes) -> int | None:
    """Sequences in one volume, from the start of its index file (``.nin``/``.pin``; pure).

    The header (BLAST database format 4 or 5) is: version, molecule, (5: volume number),
    the title, (5: the LMDB file's name) and the date, each string a big-endian length and
    its bytes, then the number of sequences, a big-endian 32-bit integer.

    Args:
        header: The file's first bytes.

    Returns:
        The count, or None when ``header`` ends before it.

    Raises:
        ValueError: When it is not an index file of format 4 or 5.
    """

    def u32(at: int) -> int | None:
        return int.from_bytes(header[at : at + 4], "big") if len(header) >= at + 4 else None

    version = u32(0)
    if version is None:
        return None
    if version not in (4, 5):
        raise ValueError(f"not a BLAST index file of format 4 or 5 (version {version})")
    at = 12 if version == 5 else 8
    for _ in range(3 if version == 5 else 2):
        length = u32(at)
        if length is None:
            return None
        at += 4 + length
    return u32(at)


def first_oids(
    db: str, alias: str, sizes: Mapping[str, int], sequences: Mapping[str, int], count: int
) -> tuple[int, ...]:
    """Each of the ``count`` shards' first ordinal id in the whole database (pure).

    Args:
        db: The database.
        alias: Its alias file.
        sizes: File name -> bytes of every file of the database (how the workers cut it).
        sequences: Volume name -> its sequences.
        count: The shards.

    Raises:
        ValueError: When the database cannot be cut so or a volume's count is missing.
    """
    volumes = []
    for volume in shards.stored_volumes(db, alias, sizes):
        if volume.name not in sequences:
            raise ValueError(f"database {db}: no sequence count for volume {volume.name}")
        volumes.append(replace(volume, sequences=sequences[volume.name]))
    return tuple(s.first_oid for s in shards.split(db, volumes, count))


def totals(db: str, manifest: Mapping[str, Any]) -> tuple[int, int]:
    """The whole database's (sequences, letters) from its manifest (pure).

    Raises:
        ValueError: When the manifest lacks either (the workers refuse to shard it then).
    """
    nseq, letters = manifest.get("sequences"), manifest.get("residues")
    if not isinstance(nseq, int) or not isinstance(letters, int):
        raise ValueError(f"database {db}: its manifest has no sequences and residues")
    return nseq, letters


def read(container: ContainerClient, db: str, count: int) -> ShardStats:
    """The numbers merging outfmt 15 of ``db`` cut into ``count`` shards needs, from storage.

    Args:
        container: The database container.
        db: The database.
        count: The shards.

    Raises:
        MergeError: When a number cannot be read, storage's errors included (one line).
    """
    prefix = f"{db}/"
    try:
        sizes = database_blobs(container, db)
        alias_name = next((db + s for s in INDEX_SUFFIXES if db + s in sizes), None)
        if alias_name is None or MANIFEST not in sizes:
            raise ValueError(f"database {db} has no alias file or no {MANIFEST} in storage")
        manifest = json.loads(container.download_blob(prefix + MANIFEST).readall())
        if not isinstance(manifest, dict):
            raise ValueError(f"database {db}: its {MANIFEST} is not a JSON object")
        alias = container.download_blob(prefix + alias_name).readall().decode("utf-8", "replace")
        suffix = INDEX_SUFFIXES[alias_name[len(db) :]]
        counts = {
            v: _volume_sequences(container, prefix + v + suffix, sizes.get(v + suffix))
            for v in shards.alias_volumes(alias)
        }
        del sizes[MANIFEST]
        return ShardStats(first_oids(db, alias, sizes, counts, count), totals(db, manifest))
    except (ValueError, AzureError) as exc:
        # A storage error's text runs over many lines; its first names it.
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise MergeError(f"outfmt 15 of {count} shards of {db} is not merged: {reason}") from None


def _volume_sequences(container: ContainerClient, blob: str, size: int | None) -> int:
    if size is None:
        raise ValueError(f"{blob} is not in storage")
    length = min(HEADER_BYTES, size)
    while True:
        header = container.download_blob(blob, offset=0, length=length).readall()
        found = index_sequences(header)
        if found is not None:
            return found
        if length >= size:
            raise ValueError(f"{blob} ends before its sequence count")
        length = min(2 * length, size)
