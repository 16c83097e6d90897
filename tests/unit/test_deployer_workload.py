"""Workload file: validation errors name the file, line, field and allowed values."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal, get_args

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from deployer import workload
from deployer.errors import WorkloadFileError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

GOOD = """
deployment:
  name: demo
  location: eastus
  registry: r.azurecr.io
workloads:
  ipyparallel:
    engines: 4
"""


def _problems(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "w.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(WorkloadFileError) as info:
        workload.load(path)
    return [p.replace(str(path), "FILE") for p in info.value.problems]


def test_every_example_is_valid_and_matches_the_schema() -> None:
    schema = workload.json_schema()
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert files
    for path in files:
        loaded = workload.load(path)
        jsonschema.validate(json.loads(loaded.model_dump_json(exclude_none=True)), schema)


def test_error_names_file_line_field_and_bound(tmp_path: Path) -> None:
    text = GOOD.replace("engines: 4", "engines: 0")
    assert _problems(text, tmp_path) == [
        "FILE:8: workloads.ipyparallel.engines: must be >= 1 (got 0)"
    ]


def test_error_lists_allowed_values(tmp_path: Path) -> None:
    text = GOOD + "    tls:\n      mode: sometimes\n"
    [problem] = _problems(text, tmp_path)
    assert problem.startswith("FILE:10: workloads.ipyparallel.tls.mode: must be one of")
    assert "'off', 'self-signed' or 'provided'" in problem and "(got 'sometimes')" in problem


def test_unknown_field_lists_the_known_ones(tmp_path: Path) -> None:
    text = GOOD + "    cpus: 2\n"
    [problem] = _problems(text, tmp_path)
    assert problem.startswith("FILE:9: workloads.ipyparallel.cpus: is not a known field; allowed:")
    assert "vcpu_per_engine" in problem


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("name: demo", "name: Demo_1").replace("engines: 4", "engines: x")
    problems = _problems(text, tmp_path)
    assert [p.split(": ")[0:2] for p in problems] == [
        ["FILE:3", "deployment.name"],
        ["FILE:8", "workloads.ipyparallel.engines"],
    ]


def test_resources_must_come_in_tenths(tmp_path: Path) -> None:
    text = GOOD + "    vcpu_per_engine: 0.25\n"
    assert _problems(text, tmp_path) == [
        "FILE:9: workloads.ipyparallel.vcpu_per_engine: must be a multiple of 0.1 (got 0.25)"
    ]


def test_missing_workloads_and_bad_yaml(tmp_path: Path) -> None:
    assert _problems("deployment: {name: demo}\nworkloads: {}\n", tmp_path) == [
        "FILE:2: workloads: define at least one workload: ipyparallel or blast"
    ]
    [problem] = _problems("deployment: [\n", tmp_path)
    assert problem.startswith("FILE:2: not valid YAML")


def test_blast_metadata_is_read_relative_to_the_file(
    tmp_path: Path, workload_file: Callable[..., Path]
) -> None:
    (tmp_path / "nt-meta.json").write_text(json.dumps({"bytes-to-cache": 12345}))
    path = workload_file(
        """
        deployment: {name: demo}
        workloads:
          blast:
            workers: 1
            databases:
              - name: nt
                metadata: nt-meta.json
        """
    )
    loaded = workload.load(path)
    assert loaded.workloads.blast is not None
    assert loaded.workloads.blast.databases[0].bytes_to_cache == 12345


def test_blast_metadata_problems_name_the_line(
    tmp_path: Path, workload_file: Callable[..., Path]
) -> None:
    (tmp_path / "bad.json").write_text("{}")
    path = workload_file(
        """
        deployment: {name: demo}
        workloads:
          blast:
            workers: 1
            databases:
              - name: nt
                metadata: bad.json
        """
    )
    with pytest.raises(WorkloadFileError) as info:
        workload.load(path)
    assert f"{path}:7: workloads.blast.databases.0.metadata:" in info.value.message
    assert "bytes-to-cache" in info.value.message


def test_mpi_needs_more_than_one_engine_per_container(tmp_path: Path) -> None:
    text = GOOD + "    mpi: true\n"
    [problem] = _problems(text, tmp_path)
    assert problem == (
        "FILE:7: workloads.ipyparallel: mpi: true needs engines_per_container >= 2: the "
        "engines of one container form one MPI world, and one world cannot span containers"
    )
    path = tmp_path / "ok.yaml"
    path.write_text(text + "    engines_per_container: 2\n", encoding="utf-8")
    ipp = workload.load(path).workloads.ipyparallel
    assert ipp is not None and ipp.mpi and ipp.engines_per_container == 2


# --- YAML 1.1 booleans: on/off/yes/no are words where the schema wants words ----------

YAML11_BOOLEANS = ("on", "off", "yes", "no", "y", "n", "On", "OFF", "Yes", "NO")
"""Words PyYAML (YAML 1.1) reads as booleans unless quoted (y and n only in YAML 1.1's spec)."""


def _models(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models(arg)]


def _literal_fields(
    model: type[BaseModel], path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Every Literal field below ``model``, with its allowed words."""
    found = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        args = get_args(annotation)
        if getattr(annotation, "__origin__", None) is Literal:
            found.append(((*path, name), tuple(str(a) for a in args)))
        for inner in _models(annotation):
            found += _literal_fields(inner, (*path, name))
    return found


def test_every_literal_word_that_yaml_1_1_reads_as_a_boolean_is_accepted_unquoted() -> None:
    """``mode: off`` was False under YAML 1.1 and failed with "got False"; every field whose
    allowed words include such a word takes it unquoted."""
    fields = [
        (path, word)
        for path, words in _literal_fields(workload.Workload)
        for word in words
        if word in YAML11_BOOLEANS
    ]
    assert fields, "the schema has a field that takes off/on/yes/no (tls.mode: off)"
    for path, word in fields:
        doc: dict[str, object] = {
            "deployment": {"name": "demo"},
            "workloads": {
                "ipyparallel": {"engines": 1},
                "blast": {"workers": 1, "databases": [{"name": "d", "bytes_to_cache": 1}]},
            },
        }
        node = doc
        for part in path[:-1]:
            child = node.get(part)
            node[part] = child = child if isinstance(child, dict) else {}
            node = child
        node[path[-1]] = "WORD"
        text = yaml.safe_dump(doc).replace("WORD", word)  # unquoted, as a user writes it
        loaded = workload.parse(text)
        value: object = loaded
        for part in path:
            value = getattr(value, part)
        assert value == word, (path, text)


def test_boolean_fields_take_yes_no_on_off(tmp_path: Path) -> None:
    text = (
        "deployment: {name: demo}\nworkloads:\n"
        "  ipyparallel: {engines: 2, notebook: no, tls: {mode: off}}\n"
        "  blast: {workers: 1, web: yes, priority: spot, spot_fallback: on,"
        " databases: [{name: no, bytes_to_cache: 1}]}\n"
    )
    w = workload.parse(text)
    assert w.workloads.ipyparallel is not None and w.workloads.blast is not None
    assert w.workloads.ipyparallel.notebook is False
    assert w.workloads.ipyparallel.tls.mode == "off"
    assert w.workloads.blast.web is True and w.workloads.blast.spot_fallback is True
    assert w.workloads.blast.databases[0].name == "no"  # a name stays the word
    assert workload.parse(text.replace("notebook: no", "notebook: true")).workloads.ipyparallel


def test_a_value_yaml_typed_as_a_number_says_to_quote_it(tmp_path: Path) -> None:
    problems = _problems(GOOD.replace("registry: r.azurecr.io", "image_tag: 1.10"), tmp_path)
    assert problems == [
        "FILE:5: deployment.image_tag: must be text: put the value in quotes (YAML read it as 1.1)"
    ]
