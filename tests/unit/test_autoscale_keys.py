"""Workload keys of elastic BLAST workers: autoscale, priority, spot_fallback, overflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer import workload
from deployer.errors import WorkloadFileError

BASE = """\
deployment:
  name: demo
  location: westeurope
workloads:
  blast:
    databases: [{name: nt, bytes_to_cache: 1000}]
"""


def _load(text: str, tmp_path: Path) -> workload.Workload:
    path = tmp_path / "w.yaml"
    path.write_text(text, encoding="utf-8")
    return workload.load(path)


def _problems(text: str, tmp_path: Path) -> list[str]:
    with pytest.raises(WorkloadFileError) as info:
        _load(text, tmp_path)
    return [p.replace(str(tmp_path / "w.yaml"), "FILE") for p in info.value.problems]


def test_autoscale_defaults_and_workers_from_the_ceiling(tmp_path: Path) -> None:
    loaded = _load(BASE + "    autoscale: {max_workers: 24}\n", tmp_path)
    blast = loaded.workloads.blast
    assert blast is not None and blast.autoscale is not None
    assert blast.workers == 24  # the plan sizes the ceiling
    assert blast.autoscale.min_workers == 0
    assert blast.autoscale.target_backlog_per_worker == 4
    assert workload.duration_seconds(blast.autoscale.scale_in_after) == 120
    assert blast.priority == "regular" and blast.spot_fallback is False
    assert loaded.deployment.overflow_locations == []


def test_every_key_together(tmp_path: Path) -> None:
    text = (
        BASE.replace(
            "  location: westeurope\n",
            "  location: westeurope\n  overflow_locations: [northeurope, francecentral]\n",
        )
        + "    priority: spot\n    spot_fallback: true\n"
        "    autoscale:\n      min_workers: 2\n      max_workers: 24\n"
        "      target_backlog_per_worker: 3\n      scale_in_after: 5m\n"
    )
    loaded = _load(text, tmp_path)
    blast = loaded.workloads.blast
    assert blast is not None and blast.autoscale is not None
    assert (blast.priority, blast.spot_fallback) == ("spot", True)
    assert blast.autoscale.model_dump() == {
        "min_workers": 2,
        "max_workers": 24,
        "target_backlog_per_worker": 3,
        "scale_in_after": "5m",
    }
    assert loaded.deployment.overflow_locations == ["northeurope", "francecentral"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "    workers: 4\n    autoscale: {max_workers: 8}\n",
            "FILE:5: workloads.blast: give either workers (a fixed pool) or autoscale "
            "(whose max_workers is the ceiling), not both",
        ),
        (
            "    autoscale: {min_workers: 9, max_workers: 8}\n",
            "FILE:7: workloads.blast.autoscale: min_workers (9) must be <= max_workers (8)",
        ),
        (
            "    autoscale: {max_workers: 0}\n",
            "FILE:7: workloads.blast.autoscale.max_workers: must be >= 1 (got 0)",
        ),
        (
            "    autoscale: {min_workers: 1}\n",
            "FILE:7: workloads.blast.autoscale.max_workers: is required",
        ),
        (
            "    autoscale: {max_workers: 8, target_backlog_per_worker: 0}\n",
            "FILE:7: workloads.blast.autoscale.target_backlog_per_worker: must be >= 1 (got 0)",
        ),
        (
            "    autoscale: {max_workers: 8, scale_in_after: soon}\n",
            "FILE:7: workloads.blast.autoscale.scale_in_after: must be a duration like 90s, "
            "60m, 8h or 2d (got 'soon')",
        ),
        (
            "    workers: 2\n    priority: cheap\n",
            "FILE:8: workloads.blast.priority: must be one of 'regular' or 'spot' (got 'cheap')",
        ),
        (
            "    workers: 2\n    spot_fallback: true\n",
            "FILE:5: workloads.blast: spot_fallback applies only with priority: spot",
        ),
    ],
)
def test_bad_blast_keys_are_one_clear_line(extra: str, expected: str, tmp_path: Path) -> None:
    assert _problems(BASE + extra, tmp_path) == [expected]


@pytest.mark.parametrize(
    ("overflow", "blast", "expected"),
    [
        (
            "[northeurope]",
            "    workers: 2\n",
            "FILE:4: deployment.overflow_locations: needs workloads.blast.autoscale: "
            "only autoscaled worker groups overflow to other regions",
        ),
        (
            "[northeurope, northeurope]",
            "    autoscale: {max_workers: 4}\n",
            "FILE:4: deployment.overflow_locations: repeats northeurope",
        ),
        (
            "[westeurope]",
            "    autoscale: {max_workers: 4}\n",
            "FILE:4: deployment.overflow_locations: lists the primary location "
            "westeurope; list only the other regions",
        ),
        (
            "[North Europe]",
            "    autoscale: {max_workers: 4}\n",
            "FILE:4: deployment.overflow_locations.0: must match ^[a-z0-9]+$ (got 'North Europe')",
        ),
    ],
)
def test_bad_overflow_locations_are_one_clear_line(
    overflow: str, blast: str, expected: str, tmp_path: Path
) -> None:
    text = BASE.replace(
        "  location: westeurope\n", f"  location: westeurope\n  overflow_locations: {overflow}\n"
    )
    assert _problems(text + blast, tmp_path) == [expected]


def test_schema_documents_the_new_keys() -> None:
    schema = workload.json_schema()
    blast = schema["$defs"]["Blast"]["properties"]
    assert set(blast) >= {"autoscale", "priority", "spot_fallback"}
    assert blast["priority"]["enum"] == ["regular", "spot"]
    assert "overflow_locations" in schema["$defs"]["Deployment"]["properties"]
    assert set(schema["$defs"]["Autoscale"]["properties"]) == {
        "min_workers",
        "max_workers",
        "target_backlog_per_worker",
        "scale_in_after",
    }


def test_scale_refuses_an_autoscaled_pool_with_the_key_to_edit(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from deployer.cli.main import app

    path = tmp_path / "w.yaml"
    path.write_text(BASE + "    autoscale: {min_workers: 1, max_workers: 8}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["scale", str(path), "blast=4"])
    assert result.exit_code == 2
    assert "autoscales between 1 and 8 workers" in result.stderr
    assert "autoscale.max_workers" in result.stderr
    assert path.read_text(encoding="utf-8").endswith("max_workers: 8}\n")  # untouched
