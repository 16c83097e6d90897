"""The image catalogue (images/images.toml): order, selection, build arguments, extra CA."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deployer.errors import InputError
from deployer.imagebuild import catalogue, images, runner

IMAGES_DIR = images.find_images_dir(Path(__file__).parent)
CATALOGUE = catalogue.load(IMAGES_DIR)


def test_every_entry_has_a_context_and_parents_come_first() -> None:
    seen: set[str] = set()
    for spec in CATALOGUE.images:
        assert (IMAGES_DIR / spec.folder / "Dockerfile").is_file(), spec.name
        assert set(spec.parents) <= seen, spec.name
        seen.add(spec.name)
        # Every build argument the catalogue sets is declared by the Dockerfile.
        dockerfile = (IMAGES_DIR / spec.folder / "Dockerfile").read_text()
        for arg, _ in spec.args:
            assert f"ARG {arg}" in dockerfile, (spec.name, arg)


def test_selection_adds_parents_in_build_order_and_excludes_local_only_images() -> None:
    assert [s.name for s in CATALOGUE.select(None)] == [
        "base-builder",
        "base",
        "blast-client",
        "ipcontroller",
        "ipengine",
        "notebook",
        "blast-worker",
        "blast-web",
        "deployer",
    ]
    assert [s.name for s in CATALOGUE.select(["ipengine"])] == ["base-builder", "base", "ipengine"]
    assert [s.name for s in CATALOGUE.select(["notebook"])] == [
        "base-builder",
        "base",
        "blast-client",
        "notebook",
    ]
    with pytest.raises(InputError):
        CATALOGUE.select(["nope"])


def test_build_args_name_parents_in_the_same_registry() -> None:
    args = catalogue.build_args(
        CATALOGUE.get("notebook"), "r.io", "1.0-abc", "1.0", "abc", "debian:x"
    )
    assert args == {
        "BASE_IMAGE": "r.io/base:1.0-abc",
        "BUILDER_IMAGE": "r.io/base-builder:1.0-abc",
        "BLAST_CLIENT_IMAGE": "r.io/blast-client:1.0-abc",
        "VERSION": "1.0",
        "REVISION": "abc",
    }
    base = catalogue.build_args(CATALOGUE.get("base"), "r.io", "t", "1", "a", "debian:x")
    assert base["BASE_IMAGE"] == "debian:x"
    client = catalogue.build_args(CATALOGUE.get("blast-client"), "p", "t", "1", "a", "debian:x")
    assert client == {"BUILDER_IMAGE": "p/base-builder:t", "VERSION": "1", "REVISION": "a"}


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({}, "no \\[\\[image\\]\\]"),
        ({"image": [{"name": "a", "colour": "red"}]}, "unknown keys colour"),
        ({"image": [{"name": "a"}, {"name": "a"}]}, "listed twice"),
        ({"image": [{"name": "a", "args": {"X": "b"}}, {"name": "b"}]}, "not listed before"),
    ],
)
def test_bad_catalogues_are_refused(doc: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        catalogue.parse(doc)


def test_adding_an_image_is_one_entry(tmp_path: Path) -> None:
    text = (IMAGES_DIR / catalogue.CATALOGUE_FILE).read_text()
    text += '\n[[image]]\nname = "extra"\nargs = { BASE_IMAGE = "base" }\n'
    (tmp_path / catalogue.CATALOGUE_FILE).write_text(text)
    extended = catalogue.load(tmp_path)
    assert extended.images[-1].name == "extra" and extended.get("extra").service
    assert "extra" in [s.name for s in extended.select(None)]


def test_the_ca_goes_only_into_contexts_with_a_build_ca_folder(tmp_path: Path) -> None:
    assert catalogue.ca_files(IMAGES_DIR / "notebook", b"PEM") == {"build-ca/extra.crt": b"PEM"}
    assert catalogue.ca_files(IMAGES_DIR / "notebook", None) == {}
    assert catalogue.ca_files(tmp_path, b"PEM") == {}
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(InputError, match="no PEM certificate"):
        catalogue.read_ca_bundle(str(tmp_path / "ca.pem"))


def run_catalogue(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployer.imagebuild", "--images-dir", str(IMAGES_DIR), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_shell_asks_the_same_catalogue() -> None:
    order = run_catalogue("order")
    assert order.returncode == 0 and order.stdout.split() == [s.name for s in CATALOGUE.images]
    words = run_catalogue("docker-args", "base-builder", "--prefix", "p", "--tag", "t").stdout
    assert words.split("\n")[:4] == ["--tag", "p/base-builder:t", "--target", "builder"]
    words = run_catalogue("docker-args", "blast-worker", "--prefix", "p", "--tag", "t").stdout
    assert "BLAST_CLIENT_IMAGE=p/blast-client:t" in words.split("\n")
    bad = run_catalogue("docker-args", "nope")
    assert bad.returncode == 2 and "unknown image nope" in bad.stderr
    assert "Traceback" not in bad.stderr
    folder = run_catalogue("folder", "blast-web")
    assert folder.returncode == 0 and folder.stdout == f"{CATALOGUE.get('blast-web').folder}\n"
    assert run_catalogue("no-such-command").returncode == 2


def test_the_shell_tags_a_local_build_as_deployer_build_tags_its_context() -> None:
    """images/build.sh's ``ctx-`` tag is the one ``deployer build`` schedules the same
    context with: the fake ACR pushes the local build it finds by that tag."""
    shown = run_catalogue("hash-tag", "blast-worker")
    plan = runner.plan_build(IMAGES_DIR, "reg.example", ["blast-worker"], tag="t")
    (job,) = [j for j in plan.jobs if j.spec.name == "blast-worker"]
    assert (
        shown.returncode == 0 and job.refs[1] == f"reg.example/blast-worker:{shown.stdout.strip()}"
    )
    assert shown.stdout.startswith("ctx-")
    bad = run_catalogue("hash-tag", "nope")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_the_shell_asks_for_a_tls_hint(tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.log"
    quiet.write_text("Step 1/2 : FROM x\nSuccessfully built abc\n")
    none = run_catalogue("tls-hint", str(quiet))
    assert none.returncode == 1 and none.stdout == ""  # build.sh: "see above"
    missing = run_catalogue("tls-hint", str(tmp_path / "missing.log"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_deployer_image_gets_the_repository_sources_under_src() -> None:
    spec = CATALOGUE.get("deployer")
    files = catalogue.source_files(spec, IMAGES_DIR.parent)
    assert "src/deployer/run/janitor.py" in files and "src/pyproject.toml" in files
    assert "src/images/blast-client/pyproject.toml" in files
    assert not any("__pycache__" in name or ".venv" in name for name in files)
