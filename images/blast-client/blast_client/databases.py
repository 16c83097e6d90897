"""Database manifests: what ``blast-jobs db upload`` writes and workers verify against.

Blob layout (container ``BLAST_DB_CONTAINER``): one prefix per database, ``<name>/<file>``
for every makeblastdb output file, and ``<name>/manifest.json``, uploaded last::

    {"version": 1, "name": "demo", "files": {"demo.nsq": {"size": 123, "md5": "<hex>"}, ...},
     "title": "demo", "molecule": "nucleotide", "sequences": 200, "residues": 400000,
     "bytes_to_cache": 150000, "last_updated": "2024-05-04T00:00:00"}

``title``, ``molecule``, ``sequences``, ``residues``, ``bytes_to_cache`` and ``last_updated``
come from the metadata file that makeblastdb writes for version-5 databases (``<name>.njs``
or ``<name>.pjs``), or, for a database fetched from NCBI (:mod:`blast_client.dbfetch`), from
NCBI's metadata of the same format, which the manifest also keeps whole under ``source``
(with where the database came from). They are absent from older manifests, and
:func:`database_info` then falls back to the metadata file's blob or, failing that, to the
file extensions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
METADATA_SUFFIXES = {".njs": "nucleotide", ".pjs": "protein"}
"""makeblastdb's JSON metadata file of a version-5 database, by molecule type."""

_SEQUENCE_SUFFIXES = {".nsq": "nucleotide", ".psq": "protein"}


@dataclass(frozen=True)
class DatabaseInfo:
    """One database in the database container.

    Attributes:
        name: Database name (the ``-db`` the worker passes to BLAST).
        title: makeblastdb's ``-title``, or None when unknown.
        molecule: "nucleotide" or "protein", or None when unknown.
        sequences: Number of sequences, or None when unknown.
        residues: Total letters, or None when unknown.
        size: Bytes of all files.
        files: Number of files.
        bytes_to_cache: Bytes BLAST keeps in memory to search it (NCBI's ``bytes-to-cache``),
            or None when unknown.
        last_updated: When the database was built (ISO 8601), or None.
        source: Where it was fetched from (``<url>`` of the NCBI directory), or None for an
            uploaded database.
    """

    name: str
    title: str | None
    molecule: str | None
    sequences: int | None
    residues: int | None
    size: int
    files: int
    bytes_to_cache: int | None = None
    last_updated: str | None = None
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The database as plain JSON."""
        return {
            "name": self.name,
            "title": self.title,
            "molecule": self.molecule,
            "sequences": self.sequences,
            "residues": self.residues,
            "size": self.size,
            "files": self.files,
            "bytes_to_cache": self.bytes_to_cache,
            "last_updated": self.last_updated,
            "source": self.source,
        }


def md5_file(path: Path, block: int = 4 * 1024 * 1024) -> bytes:
    """MD5 digest of a file.

    Args:
        path: The file.
        block: Read size.
    """
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.digest()


def metadata_file(names: list[str]) -> str | None:
    """The makeblastdb metadata file among ``names`` (``.njs`` or ``.pjs``), if any.

    Args:
        names: File names of one database.
    """
    for name in sorted(names):
        if Path(name).suffix in METADATA_SUFFIXES:
            return name
    return None


def parse_metadata(raw: bytes | str, suffix: str) -> dict[str, Any]:
    """Title, molecule, counts, cache size and date from BLAST's metadata JSON (pure).

    makeblastdb's ``.njs``/``.pjs`` and NCBI's ``<db>-<nucl|prot>-metadata.json`` share the
    format (1.1 and later).

    Args:
        raw: The metadata content.
        suffix: Its suffix, which decides the molecule when the file does not say.

    Returns:
        The keys that could be read (invalid content gives an empty mapping).
    """
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    info: dict[str, Any] = {"molecule": METADATA_SUFFIXES.get(suffix)}
    dbtype = str(doc.get("dbtype", "")).lower()
    if dbtype.startswith("nucl"):
        info["molecule"] = "nucleotide"
    elif dbtype.startswith("prot"):
        info["molecule"] = "protein"
    if isinstance(doc.get("description"), str):
        info["title"] = doc["description"]
    for key, source in (
        ("sequences", "number-of-sequences"),
        ("residues", "number-of-letters"),
        ("bytes_to_cache", "bytes-to-cache"),
    ):
        value = doc.get(source)
        if isinstance(value, int) and not isinstance(value, bool):
            info[key] = value
    if isinstance(doc.get("last-updated"), str):
        info["last_updated"] = doc["last-updated"]
    return info


def build_manifest(name: str, files: list[Path]) -> dict[str, Any]:
    """Manifest for a database made of ``files`` (used by ``blast-jobs db upload``).

    Args:
        name: Database name.
        files: The makeblastdb output files.
    """
    manifest: dict[str, Any] = {
        "version": 1,
        "name": name,
        "files": {
            f.name: {"size": f.stat().st_size, "md5": md5_file(f).hex()} for f in sorted(files)
        },
    }
    meta = metadata_file([f.name for f in files])
    if meta is not None:
        path = next(f for f in files if f.name == meta)
        manifest.update(parse_metadata(path.read_bytes(), path.suffix))
    return manifest


def database_info(
    name: str, manifest: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
) -> DatabaseInfo:
    """Describe a database from its manifest (pure).

    Args:
        name: Database name.
        manifest: The parsed ``manifest.json``.
        metadata: :func:`parse_metadata` of the metadata blob, for manifests written before
            they carried it.
    """
    files = manifest.get("files")
    entries: Mapping[str, Any] = files if isinstance(files, dict) else {}
    size = sum(int(e.get("size", 0)) for e in entries.values() if isinstance(e, dict))
    info: dict[str, Any] = {**(metadata or {}), **manifest}
    molecule = info.get("molecule")
    if molecule is None:
        for fname in entries:
            molecule = _SEQUENCE_SUFFIXES.get(Path(fname).suffix, molecule)
    source = info.get("source")
    return DatabaseInfo(
        name=name,
        title=info.get("title"),
        molecule=molecule,
        sequences=info.get("sequences"),
        residues=info.get("residues"),
        size=size,
        files=len(entries),
        bytes_to_cache=info.get("bytes_to_cache"),
        last_updated=info.get("last_updated"),
        source=str(source["url"]) if isinstance(source, dict) and "url" in source else None,
    )
