"""Workload file: validation errors name the file, line, field and allowed values."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

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
