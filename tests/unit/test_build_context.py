"""Build-context packing: .dockerignore as the docker SDK applies it, and determinism."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest
from docker.utils.build import tar as docker_sdk_tar

from deployer.imagebuild import context, images

TREE = {
    "Dockerfile": "FROM scratch\n",
    "app/main.py": "print(1)\n",
    "app/__pycache__/main.cpython-311.pyc": "x",
    "app/sub/__pycache__/deep.pyc": "x",
    "app/sub/keep.txt": "keep",
    "docs/readme.md": "docs",
    "docs/keep.md": "keep",
    "secrets/key.pem": "secret",
    "build-ca/README": "readme",
    "notes.txt": "n",
    "a/b/c/d.log": "log",
    "a/b/important.log": "important",
}

CASES = {
    "double star": ["**/__pycache__", "**/*.log"],
    "re-include with !": ["*", "!Dockerfile", "!app/", "app/sub", "!app/sub/keep.txt"],
    "directory with trailing slash": ["docs/", "secrets/"],
    "ignored Dockerfile": ["Dockerfile", "notes.txt"],
    "star then re-include a folder": ["*", "!build-ca/", "!app/"],
    "re-include under an ignored folder": ["a/", "!a/b/important.log"],
    "comments and blanks": ["# comment", "", "  notes.txt  ", "docs/*.md", "!docs/keep.md"],
}


def _write_tree(root: Path, ignore: list[str]) -> None:
    for rel, text in TREE.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / ".dockerignore").write_text("\n".join(ignore) + "\n", encoding="utf-8")


def _names(data: bytes) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        return {m.name for m in tar.getmembers()}


@pytest.mark.parametrize("ignore", list(CASES.values()), ids=list(CASES))
def test_archive_matches_docker_sdk_rules(tmp_path: Path, ignore: list[str]) -> None:
    _write_tree(tmp_path, ignore)
    ours = _names(context.pack(tmp_path).data)
    # The SDK's own archive, with the patterns as docker-py's build() reads them.
    with docker_sdk_tar(str(tmp_path), exclude=context.dockerignore_patterns(tmp_path)) as ref:
        theirs = _names(ref.read())
    assert ours == theirs
    assert "Dockerfile" in ours  # always sent, even when ignored


def test_double_star_drops_nested_matches(tmp_path: Path) -> None:
    _write_tree(tmp_path, CASES["double star"])
    names = _names(context.pack(tmp_path).data)
    assert "app/sub/__pycache__/deep.pyc" not in names
    assert "a/b/c/d.log" not in names
    assert "app/sub/keep.txt" in names


def test_reinclude_keeps_only_what_is_named(tmp_path: Path) -> None:
    _write_tree(tmp_path, CASES["re-include with !"])
    names = _names(context.pack(tmp_path).data)
    assert "app/sub/keep.txt" in names
    assert "app/main.py" in names
    assert "notes.txt" not in names and "docs/readme.md" not in names


def test_same_tree_packs_to_identical_bytes(tmp_path: Path) -> None:
    _write_tree(tmp_path, CASES["double star"])
    first = context.pack(tmp_path)
    # Different mtimes and umask-style modes must not matter.
    for path in tmp_path.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    (tmp_path / "notes.txt").chmod(0o664)
    second = context.pack(tmp_path)
    assert first.data == second.data
    assert first.sha256 == second.sha256


def test_same_tree_in_another_place_packs_identically(tmp_path: Path) -> None:
    _write_tree(tmp_path / "one", [])
    _write_tree(tmp_path / "two", [])
    assert context.pack(tmp_path / "one").data == context.pack(tmp_path / "two").data


def test_one_byte_change_changes_the_hash(tmp_path: Path) -> None:
    _write_tree(tmp_path, [])
    before = context.pack(tmp_path)
    (tmp_path / "app" / "main.py").write_text("print(2)\n", encoding="utf-8")
    after = context.pack(tmp_path)
    assert before.sha256 != after.sha256
    assert before.data != after.data


def test_ignored_file_change_keeps_the_hash(tmp_path: Path) -> None:
    _write_tree(tmp_path, ["docs/"])
    before = context.pack(tmp_path)
    (tmp_path / "docs" / "readme.md").write_text("changed", encoding="utf-8")
    assert context.pack(tmp_path).sha256 == before.sha256


def test_executable_bit_changes_the_hash(tmp_path: Path) -> None:
    _write_tree(tmp_path, [])
    before = context.pack(tmp_path)
    (tmp_path / "notes.txt").chmod(0o755)
    assert context.pack(tmp_path).sha256 != before.sha256


def test_archive_metadata_is_normalised(tmp_path: Path) -> None:
    _write_tree(tmp_path, [])
    data = context.pack(tmp_path).data
    assert gzip.decompress(data)  # valid gzip
    assert data[4:8] == b"\x00\x00\x00\x00"  # gzip header mtime
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}


def test_extra_files_are_packed_but_not_hashed(tmp_path: Path) -> None:
    _write_tree(tmp_path, ["*", "!Dockerfile", "!build-ca/"])
    plain = context.pack(tmp_path)
    with_ca = context.pack(tmp_path, extra={"build-ca/extra.crt": b"-----BEGIN CERTIFICATE-----"})
    assert with_ca.sha256 == plain.sha256
    assert "build-ca/extra.crt" in _names(with_ca.data)
    assert "build-ca/extra.crt" not in _names(plain.data)


def test_transient_ca_in_the_tree_is_never_packed(tmp_path: Path) -> None:
    _write_tree(tmp_path, ["*", "!Dockerfile", "!build-ca/"])
    before = context.pack(tmp_path)
    (tmp_path / "build-ca" / "extra.crt").write_text("a CA images/build.sh left behind")
    after = context.pack(tmp_path)
    assert after.sha256 == before.sha256
    assert "build-ca/extra.crt" not in _names(after.data)


def test_real_image_contexts_pack_and_follow_their_dockerignore() -> None:
    images_dir = images.find_images_dir(Path(__file__).parent)
    packed = context.pack(images_dir / "blast-worker")
    assert "Dockerfile" in packed.files
    assert "blast_worker" in packed.files
    assert not [f for f in packed.files if "__pycache__" in f or f.endswith(".pyc")]
    assert not [f for f in packed.files if "egg-info" in f]
