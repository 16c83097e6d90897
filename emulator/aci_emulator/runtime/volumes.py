"""Volumes of emulated groups: ``secret`` files on tmpfs and ``emptyDir`` directories.

* ``secret`` files land on tmpfs (``/dev/shm``) with mode 0600, owned by the container's
  user when that is numeric, one copy per user;
* ``emptyDir`` is a directory of the group, mode 0777 (like Kubernetes), shared by its
  containers.

``azureFile`` and ``gitRepo`` volumes are refused before anything runs (the runtime's check).
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .settings import EmulatorError
from .state import GroupRun


class VolumeStore:
    """The host directories behind the volumes of one emulator's groups.

    :param instance_id: the emulator's id (prefix of its directories).
    """

    def __init__(self, instance_id: str) -> None:
        self._disk = Path(tempfile.mkdtemp(prefix=f"{instance_id}-"))
        shm = Path("/dev/shm")
        self._tmpfs = Path(
            tempfile.mkdtemp(prefix=f"{instance_id}-", dir=shm if shm.is_dir() else None)
        )

    def close(self) -> None:
        """Remove every directory of this store."""
        for path in (self._disk, self._tmpfs):
            shutil.rmtree(path, ignore_errors=True)

    def binds(
        self, run: GroupRun, body: dict[str, Any], cprops: dict[str, Any], uid: int | None
    ) -> dict[str, dict[str, str]]:
        """Docker bind mounts for a container's ``volumeMounts``.

        :param run: the group (its ``dirs`` collect what is created).
        :param body: the group body (its ``volumes``).
        :param cprops: the container's properties.
        :param uid: the container's numeric user, ``None`` when unknown (root-readable files).
        :return: host path to ``{"bind", "mode"}``.
        :raises EmulatorError: a mount names no volume of the group.
        """
        volumes = {str(v["name"]): v for v in body.get("properties", {}).get("volumes") or []}
        binds: dict[str, dict[str, str]] = {}
        for mount in cprops.get("volumeMounts") or []:
            volume = volumes.get(str(mount["name"]))
            if volume is None:
                raise EmulatorError(
                    "InvalidVolumeMount",
                    f"The volume mount '{mount['name']}' names no volume of the group.",
                )
            mode = "ro" if mount.get("readOnly") else "rw"
            if volume.get("secret") is not None:
                source = self._secret_dir(run, str(volume["name"]), volume["secret"], uid)
                mode = "ro"
            else:
                source = self._disk / run.name / "emptydir" / str(volume["name"])
                if not source.exists():
                    source.mkdir(parents=True)
                    source.chmod(0o777)  # like Kubernetes' emptyDir: every container writes
                    run.dirs.append(source)
            binds[str(source)] = {"bind": str(mount["mountPath"]), "mode": mode}
        return binds

    def _secret_dir(
        self, run: GroupRun, volume: str, files: Mapping[str, str], uid: int | None
    ) -> Path:
        # One copy per container user, so the files can be 0600 and still readable.
        path = self._tmpfs / run.name / f"{volume}-{uid if uid is not None else 'root'}"
        if path.exists():
            return path
        path.mkdir(parents=True, mode=0o700)
        for name, content in files.items():
            target = path / name
            target.write_bytes(base64.b64decode(content))
            target.chmod(0o600 if uid is not None else 0o644)
            if uid is not None:
                with contextlib.suppress(PermissionError):
                    os.chown(target, uid, -1)
        if uid is not None:
            with contextlib.suppress(PermissionError):
                os.chown(path, uid, -1)
        else:
            path.chmod(0o755)
        run.dirs.append(path)
        return path
