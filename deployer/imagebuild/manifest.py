"""The build manifest: which exact image reference ``deployer build`` produced.

``deployer build`` writes one manifest per registry into the state directory
(``$DEPLOYER_STATE_DIR/builds/<registry>.json``); ``deployer up`` reads it and
deploys those references, unless the workload file, ``--image-tag`` or
``DEPLOYER_IMAGE_TAG`` pins a tag.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from deployer import defaults
from deployer.errors import InputError

VERSION = 1


@dataclass(frozen=True)
class BuiltImage:
    """One image of a build.

    Args:
        ref (str): ``<registry>/<image>:<tag>``, the reference to deploy.
        digest (str | None): Its manifest digest, when the registry reported one.
        build_hash (str): The hash of its context and parents (image label).
        status (str): ``succeeded`` (built now) or ``skipped`` (already there).
        run_protocol (int | None): For the janitor's image (``deployer``), the run protocol
            of the source it was built from (:data:`deployer.run.state.RUN_PROTOCOL`; its
            build hash covers that source); None for the others, and for builds from before
            it was recorded.
    """

    ref: str
    digest: str | None
    build_hash: str
    status: str
    run_protocol: int | None = None


@dataclass(frozen=True)
class BuildManifest:
    """What one ``deployer build`` produced for one registry.

    Args:
        registry (str): Registry login server.
        tag (str): The tag of this build (``<version>-<gitsha>``).
        images (dict[str, BuiltImage]): Per image name.
    """

    registry: str
    tag: str
    images: dict[str, BuiltImage] = field(default_factory=dict)

    def refs(self) -> dict[str, str]:
        """Return image name to reference."""
        return {name: image.ref for name, image in self.images.items()}


def path_for(registry: str, state: Path | None = None) -> Path:
    """Return the manifest file of ``registry`` in the state directory (``state``, else
    :func:`deployer.defaults.state_dir`)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", registry.rstrip("/"))
    return (state or defaults.state_dir()) / "builds" / f"{safe}.json"


def save(manifest: BuildManifest, path: Path | None = None) -> Path:
    """Write the manifest (atomically) and return its path.

    Images of an earlier build that this one did not touch are kept, so building
    one image does not forget the others.
    """
    path = path or path_for(manifest.registry)
    old = load(manifest.registry, path)
    images = {**(old.images if old else {}), **manifest.images}
    body = {"version": VERSION, **asdict(BuildManifest(manifest.registry, manifest.tag, images))}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load(registry: str, path: Path | None = None) -> BuildManifest | None:
    """Read the manifest of ``registry``; None when there is none.

    Raises:
        InputError: When the file exists but is not a manifest.
    """
    path = path or path_for(registry)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot read the build manifest {path}: {exc}",
            hint="run `deployer build` again, or delete the file",
        ) from None
    try:
        images = {name: BuiltImage(**image) for name, image in body["images"].items()}
        return BuildManifest(body["registry"], body["tag"], images)
    except (KeyError, TypeError, AttributeError):
        raise InputError(
            f"{path} is not a build manifest",
            hint="run `deployer build` again, or delete the file",
        ) from None
