"""Local parity: compose/docker-compose.yml is exactly the rendered default workload."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from deployer import contract, render, workload
from deployer.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "examples" / "cluster.yaml"
COMPOSE = ROOT / "compose" / "docker-compose.yml"


def test_compose_file_is_the_rendered_default_workload() -> None:
    rendered = render.compose_file(DEFAULT)
    assert COMPOSE.read_text(encoding="utf-8") == rendered, (
        "compose/docker-compose.yml drifted from the default workload: run "
        "`deployer render compose examples/cluster.yaml --out compose/docker-compose.yml`, "
        "or change deployer/templates/docker-compose.yml.j2 / deployer/contract.py"
    )


def _services(text: str) -> dict[str, dict[str, object]]:
    doc = yaml.safe_load(text)
    assert "name" not in doc  # docker-compose 1.29 rejects a top-level name
    assert "version" not in doc or isinstance(doc["version"], str)
    return doc["services"]  # type: ignore[no-any-return]


def test_every_example_renders_valid_compose_from_the_contract() -> None:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        loaded = workload.load(path)
        services = _services(render.compose_text(loaded))
        for name, svc in services.items():
            role = contract.ROLES["blast-worker" if name == "init" else name]
            assert (
                str(svc["image"]).endswith(f"/{role.image}:${{TAG:-latest}}") or name == "azurite"
            )
            # Only the notebook and the web page are published, and only on loopback.
            for port in svc.get("ports", []):  # type: ignore[attr-defined]
                assert str(port).startswith("127.0.0.1:")
                published = contract.WEB_PORT if name == "blast-web" else contract.NOTEBOOK_PORT
                assert str(port).endswith(f":{published}")
        assert ("ipengine" in services) == (loaded.workloads.ipyparallel is not None)
        assert ("blast-worker" in services) == (loaded.workloads.blast is not None)
        blast = loaded.workloads.blast
        assert ("blast-web" in services) == bool(blast and blast.web_page)


def test_secrets_are_files_never_environment_values() -> None:
    doc = yaml.safe_load(render.compose_file(DEFAULT))
    services = doc["services"]
    secret_names = {n for r in contract.ROLES.values() for n in r.secret_names}
    for name, svc in services.items():
        env = svc.get("environment") or {}
        mounted = svc.get("secrets") or []
        assert not secret_names & set(env), name
        for var, value in env.items():
            assert not re.search(r"(?i)(key|token|password|secret)=[^;]", str(value)), var
            if var.endswith("_FILE"):
                file = str(value).removeprefix("/run/secrets/")
                assert file in mounted, (name, var)
                assert var.removesuffix("_FILE").lower() == file
        # Each service mounts only the secrets it reads.
        assert len(mounted) == sum(1 for v in env if v.endswith("_FILE")), name
    assert set(doc["secrets"]) == {s for svc in services.values() for s in svc.get("secrets", [])}
    for name, spec in doc["secrets"].items():
        assert spec == {"file": f"${{SECRETS_DIR:-./secrets}}/{name}"}


def test_every_service_is_locked_down() -> None:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        services = _services(render.compose_text(workload.load(path)))
        for name, svc in services.items():
            assert svc["cap_drop"] == ["ALL"], name
            assert "cap_add" not in svc, name
            assert svc["security_opt"] == ["no-new-privileges:true"], name
            assert svc["read_only"] is True, name
            tmpfs: list[str] = svc["tmpfs"]  # type: ignore[assignment]
            assert any(t.startswith("/tmp:") for t in tmpfs), name
            pids: int = svc["pids_limit"]  # type: ignore[assignment]
            assert 0 < pids <= 1024, name
            assert svc["logging"] == {
                "driver": "json-file",
                "options": {"max-size": "10m", "max-file": "3"},
            }, name


def test_sizes_follow_the_workload() -> None:
    text = (
        DEFAULT.read_text()
        .replace("engines: 2 ", "engines: 6 ")
        .replace("memory_gb_per_engine: 1 ", "memory_gb_per_engine: 1.5 ")
    )
    services = _services(render.compose_text(workload.parse(text)))
    engine = services["ipengine"]
    assert engine["scale"] == "${ENGINE_REPLICAS:-6}"
    assert engine["cpus"] == "${ENGINE_CPUS:-1}" and engine["mem_limit"] == "1536m"
    assert render.mem_limit(160) == "16g"


def test_render_cli_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "docker-compose.yml"
    result = CliRunner().invoke(app, ["render", "compose", str(DEFAULT), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == render.compose_file(DEFAULT)


def test_mpi_is_on_by_default_in_an_mpi_workload_and_a_variable_in_any() -> None:
    mpi: dict[str, Any] = _services(
        render.compose_file(ROOT / "examples" / "ipyparallel-mpi.yaml")
    )["ipengine"]
    assert mpi["environment"]["IPP_MPI"] == "${ENGINE_MPI:-1}"
    assert mpi["environment"]["IPP_ENGINES_PER_CONTAINER"] == "${ENGINES_PER_CONTAINER:-4}"
    assert mpi["cpus"] == "${ENGINE_CPUS:-4}"
    default: dict[str, Any] = _services(render.compose_file(DEFAULT))["ipengine"]
    assert default["environment"]["IPP_MPI"] == "${ENGINE_MPI:-0}"
