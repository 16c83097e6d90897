"""Build contexts: deterministic tar.gz archives that honour ``.dockerignore``.

Which files belong to a context is decided by the docker SDK's own implementation
of Docker's ``.dockerignore`` rules (``docker.utils.build.exclude_paths``, with
``**``, ``!`` re-includes and the Dockerfile always kept), never by our own
matcher. The archive is then written deterministically: entries sorted, mtime 0,
owner 0:0 without names, modes reduced to 0644/0755, gzip without a timestamp. So
an identical context gives identical bytes, and the context hash is stable.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from docker.utils.build import exclude_paths

DOCKERIGNORE = ".dockerignore"
TRANSIENT = ("build-ca/*.crt",)
"""Never packed from the tree: an extra CA bundle reaches a context only through
:func:`deployer.imagebuild.catalogue.ca_files`, never from a stray file."""


@dataclass(frozen=True)
class Packed:
    """A packed build context.

    Args:
        data (bytes): The tar.gz archive.
        sha256 (str): Hash of the context's own files (paths, types, modes and
            contents), without the extra files added for one build.
        files (tuple[str, ...]): Paths in the archive, sorted (directories too).
    """

    data: bytes
    sha256: str
    files: tuple[str, ...]


def dockerignore_patterns(root: Path) -> list[str]:
    """Return the patterns of ``root/.dockerignore``, read as the docker SDK reads them.

    Args:
        root (Path): The context directory.

    Returns:
        list[str]: Stripped lines, without blanks and ``#`` comments; empty when
        there is no ``.dockerignore``.
    """
    path = root / DOCKERIGNORE
    if not path.exists():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def context_files(root: Path, dockerfile: str = "Dockerfile") -> list[str]:
    """Return the paths (files and directories) of ``root`` that Docker would send.

    Args:
        root (Path): The context directory.
        dockerfile (str): The Dockerfile's path in the context; it is always kept,
            even when ``.dockerignore`` excludes it, as Docker does.
            Default: ``Dockerfile``.

    Returns:
        list[str]: Relative POSIX paths, sorted, minus :data:`TRANSIENT` files.
    """
    kept = exclude_paths(str(root), dockerignore_patterns(root), dockerfile=dockerfile)
    return sorted(p for p in kept if not any(fnmatchcase(p, t) for t in TRANSIENT))


def _normal_info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack(
    root: Path,
    *,
    dockerfile: str = "Dockerfile",
    extra: Mapping[str, bytes] | None = None,
) -> Packed:
    """Pack ``root`` as a deterministic tar.gz that honours its ``.dockerignore``.

    Args:
        root (Path): The context directory, e.g. ``images/ipengine``.
        dockerfile (str): The Dockerfile's path in the context. Default: ``Dockerfile``.
        extra (Mapping[str, bytes] | None): Files added for this build only (a
            generated Dockerfile, an extra CA bundle). They replace context files of
            the same name and are not part of :attr:`Packed.sha256`. Default: none.

    Returns:
        Packed: The archive, the context hash and the list of paths.

    Raises:
        FileNotFoundError: When ``root`` is not a directory.
    """
    if not root.is_dir():
        raise FileNotFoundError(f"build context {root} is not a directory")
    extra = dict(extra or {})
    files = context_files(root, dockerfile)
    digest = hashlib.sha256()
    raw = io.BytesIO()
    names: list[str] = []
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in files:
            if rel in extra:
                continue
            path = root / rel
            st = path.lstat()
            if stat.S_ISDIR(st.st_mode):
                tar.addfile(_normal_info(rel, tarfile.DIRTYPE, 0o755))
                digest.update(f"d {rel}\n".encode())
            elif stat.S_ISLNK(st.st_mode):
                info = _normal_info(rel, tarfile.SYMTYPE, 0o777)
                info.linkname = os.readlink(path)
                tar.addfile(info)
                digest.update(f"l {rel} {info.linkname}\n".encode())
            elif stat.S_ISREG(st.st_mode):
                # Only the executable bit matters to a build; umask differences must not.
                mode = 0o755 if st.st_mode & 0o111 else 0o644
                content = path.read_bytes()
                info = _normal_info(rel, tarfile.REGTYPE, mode, len(content))
                tar.addfile(info, io.BytesIO(content))
                digest.update(f"f {rel} {mode:o} {hashlib.sha256(content).hexdigest()}\n".encode())
            else:
                continue  # sockets and fifos cannot be sent to a builder
            names.append(rel)
        for rel in sorted(extra):
            parent = rel.rpartition("/")[0]
            if parent and parent not in names:
                tar.addfile(_normal_info(parent, tarfile.DIRTYPE, 0o755))
                names.append(parent)
            content = extra[rel]
            info = _normal_info(rel, tarfile.REGTYPE, 0o644, len(content))
            tar.addfile(info, io.BytesIO(content))
            names.append(rel)
    out = io.BytesIO()
    # mtime=0 and no file name: gzip's header would otherwise differ on every run.
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    return Packed(out.getvalue(), digest.hexdigest(), tuple(sorted(set(names))))
