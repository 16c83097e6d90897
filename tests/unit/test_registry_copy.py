"""The stored registry storage that test registries start from (testbed/registry.py): blob
contents are shared by hard links, and everything the registry may rewrite in place is a copy
of its own, so one registry's writes never reach the store or another registry."""

from __future__ import annotations

from pathlib import Path

from testbed.registry import copy_storage

BLOB = "docker/registry/v2/blobs/sha256/ab/abcd/data"
TAG_LINK = "docker/registry/v2/repositories/ipengine/_manifests/tags/latest/current/link"
UPLOAD = "docker/registry/v2/repositories/ipengine/_uploads/0c1d/data"


def test_blobs_are_linked_links_are_copied_and_uploads_left_out(tmp_path: Path) -> None:
    source, target = tmp_path / "store", tmp_path / "registry"
    for rel, text in ((BLOB, "layer bytes"), (TAG_LINK, "sha256:abcd"), (UPLOAD, "partial")):
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_text(text)

    copy_storage(source, target)

    assert (target / BLOB).read_text() == "layer bytes"
    assert (target / BLOB).stat().st_ino == (source / BLOB).stat().st_ino
    assert (target / TAG_LINK).stat().st_ino != (source / TAG_LINK).stat().st_ino
    # A push of the same tag rewrites the link file in place: the store keeps its own.
    (target / TAG_LINK).write_text("sha256:ef01")
    assert (source / TAG_LINK).read_text() == "sha256:abcd"
    assert not (target / UPLOAD).exists()
