"""Build BLAST databases with makeblastdb and package them as NCBI publishes them.

For the ``db fetch`` tests and benchmark: real makeblastdb and blastdbcmd (from the worker
image, through any ``run(argv)`` such as :meth:`testbed.blast_stack.BlastTools.run`),
then NCBI's layout (``ncbi.py`` in blast_client documents it):

* one ``tar.gz`` per volume (``<db>.NN.tar.gz``, or ``<db>.tar.gz`` for one volume) with that
  volume's files; database-wide files (alias, LMDB index, metadata) go into every volume's
  tarball, so a fetch must cope with repeated, identical files;
* ``<tarball>.md5`` as ``md5sum`` writes it;
* ``<db>-<nucl|prot>-metadata.json``: ``blastdbcmd -metadata`` as NCBI republishes it,
  format version 1.1, ``files`` rewritten to the tarballs' URLs on NCBI's FTP site (a
  mirror must not follow them) and ``bytes-total-compressed`` added;
* ``blastdb-metadata-1-1.json`` (all databases' metadata, an array) and the older
  ``blastdb-manifest.json`` (format 1.0).

Cloud-style snapshots (``latest-dir`` plus dated directories) are plain directories of the
same files; :func:`snapshot` makes one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blast_client.databases import md5_file
from blast_client.demo import SplitMix64

Run = Callable[[list[str]], "subprocess.CompletedProcess[bytes]"]
"""Runs an ncbi-blast+ program (paths on the host work unchanged); fails on error."""

NCBI_FTP = "ftp://ftp.ncbi.nlm.nih.gov/blast/db"
AMINO = "ACDEFGHIKLMNPQRSTVWY"


@dataclass(frozen=True)
class BuiltDb:
    """A database built by makeblastdb, before packaging.

    Attributes:
        name: Database name (``-out`` base name).
        molecule: ``nucleotide`` or ``protein``.
        path: ``-db`` path of the original files (``<dir>/<name>``).
        queries: FASTA file of queries with known hits.
    """

    name: str
    molecule: str
    path: Path
    queries: Path

    @property
    def directory(self) -> Path:
        """The directory holding its files."""
        return self.path.parent

    def files(self) -> list[Path]:
        """Its database files (not the FASTA)."""
        return sorted(
            p
            for p in self.directory.iterdir()
            if p.name.startswith(self.name + ".") and not p.name.endswith(".fa")
        )


def protein_fasta(name: str, seqs: int, length: int, queries: int, seed: int) -> tuple[str, str]:
    """Random protein subjects and queries cut (with a few substitutions) from them.

    Args:
        name: Prefix of the subject ids.
        seqs: Number of subjects.
        length: Residues per subject.
        queries: Number of queries.
        seed: PRNG seed (the same seed gives the same text).

    Returns:
        Subjects FASTA and queries FASTA.
    """
    rng = SplitMix64(seed)
    subjects = []
    for i in range(seqs):
        seq = "".join(AMINO[rng.below(20)] for _ in range(length))
        subjects.append((f"{name}_{i + 1:05d}", seq))
    out = []
    for q in range(queries):
        sid, seq = subjects[rng.below(seqs)]
        start = rng.below(length - 100)
        window = list(seq[start : start + 100])
        for pos in range(0, 100, 9):
            window[pos] = AMINO[rng.below(20)]
        out.append(f">pq_{q + 1:03d} from {sid}\n{''.join(window)}\n")
    text = "".join(f">{sid} synthetic protein {sid}\n{seq}\n" for sid, seq in subjects)
    return text, "".join(out)


def build(
    run: Run,
    work: Path,
    name: str,
    molecule: str,
    subjects: str,
    queries: str,
    title: str,
    max_file_sz: str | None = None,
) -> BuiltDb:
    """makeblastdb (v5, ``-parse_seqids``) on ``subjects`` into ``work/<name>/``.

    Args:
        run: Runs ncbi-blast+ programs.
        work: Scratch directory.
        name: Database name.
        molecule: ``nucleotide`` or ``protein``.
        subjects: Subjects FASTA.
        queries: Queries FASTA (kept next to it).
        title: ``-title``.
        max_file_sz: makeblastdb's ``-max_file_sz`` (e.g. ``1MB``) to get several volumes.
    """
    directory = work / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.subjects.fa").write_text(subjects)
    (directory / f"{name}.queries.fa").write_text(queries)
    argv = [
        "makeblastdb",
        "-in",
        str(directory / f"{name}.subjects.fa"),
        "-dbtype",
        "nucl" if molecule == "nucleotide" else "prot",
        "-parse_seqids",
        "-blastdb_version",
        "5",
        "-out",
        str(directory / name),
        "-title",
        title,
    ]
    if max_file_sz:
        argv += ["-max_file_sz", max_file_sz]
    run(argv)
    return BuiltDb(name, molecule, directory / name, directory / f"{name}.queries.fa")


def package(run: Run, db: BuiltDb, out: Path) -> dict[str, Any]:
    """Write ``db``'s tarballs, ``.md5`` files and metadata file into ``out``.

    Args:
        run: Runs ncbi-blast+ programs.
        db: The built database.
        out: The mirror directory.

    Returns:
        The published metadata document.
    """
    out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = json.loads(run(["blastdbcmd", "-db", str(db.path), "-metadata"]).stdout)
    files = [f.name for f in db.files()]
    volume = re.compile(re.escape(db.name) + r"\.(\d{2,3})\.")
    numbers = sorted({m.group(1) for f in files if (m := volume.match(f))})
    shared = [f for f in files if not volume.match(f)]
    groups = (
        {
            f"{db.name}.{n}.tar.gz": [f for f in files if f.startswith(f"{db.name}.{n}.")] + shared
            for n in numbers
        }
        if numbers
        else {f"{db.name}.tar.gz": files}
    )
    compressed = 0
    for tarball, members in groups.items():
        path = out / tarball
        with tarfile.open(path, "w:gz") as tar:
            for member in sorted(members):
                tar.add(db.directory / member, arcname=member)
        (out / f"{tarball}.md5").write_text(f"{md5_file(path).hex()}  {tarball}\n")
        compressed += path.stat().st_size
    kind = "nucl" if db.molecule == "nucleotide" else "prot"
    meta.update(
        {
            "version": "1.1",
            "files": [f"{NCBI_FTP}/{t}" for t in groups],
            "bytes-total-compressed": compressed,
        }
    )
    (out / f"{db.name}-{kind}-metadata.json").write_text(json.dumps(meta, indent=2))
    return meta


def write_indexes(out: Path, metadata: list[dict[str, Any]]) -> None:
    """``blastdb-metadata-1-1.json`` and ``blastdb-manifest.json`` for the databases in ``out``.

    Args:
        out: The mirror directory.
        metadata: Each database's published metadata.
    """
    (out / "blastdb-metadata-1-1.json").write_text(json.dumps(metadata, indent=2))
    legacy: dict[str, Any] = {"version": "1.0"}
    for meta in metadata:
        legacy[meta["dbname"]] = {
            "size": round(meta["bytes-total"] * 1e-9, 4),
            "description": meta["description"],
            "last_updated": meta["last-updated"][:10],
            "files": meta["files"],
        }
    (out / "blastdb-manifest.json").write_text(json.dumps(legacy, indent=2))


def snapshot(mirror: Path, bucket: Path, name: str, latest: bool) -> Path:
    """Copy a flat mirror into ``bucket/<name>/`` (hard links), a cloud-style snapshot.

    Args:
        mirror: A flat mirror directory.
        bucket: The bucket directory.
        name: Snapshot name, ``YYYY-MM-DD-HH-MM-SS``.
        latest: Also name it in ``bucket/latest-dir``.
    """
    target = bucket / name
    shutil.copytree(mirror, target, copy_function=_link)
    if latest:
        (bucket / "latest-dir").write_text(name + "\n")
    return target


def _link(src: str, dst: str) -> None:
    try:
        Path(dst).hardlink_to(src)
    except OSError:
        shutil.copy2(src, dst)
