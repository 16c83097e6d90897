"""The CLI without Azure: schema, offline plan, prices, exit codes, JSON envelopes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from blast_client.cli.output import Output
from typer.testing import CliRunner

from deployer.cli.main import app
from deployer.cli.output import ProgressPrinter, envelope, guarded
from deployer.errors import DeployerError, InputError

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "examples" / "cluster.yaml"


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def test_schema_is_json_schema_of_the_workload_file() -> None:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "aci-research deployer workload file"
    assert set(schema["required"]) == {"deployment", "workloads"}
    assert "IPyParallel" in schema["$defs"]


def test_plan_json_envelope_lists_groups_and_cost(deployer_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["plan", str(CLUSTER), "--offline", "-o", "json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["ok"] is True and body["command"] == "plan"
    plan = body["data"]
    assert [g["name"] for g in plan["groups"]] == [
        "aci-research-head",
        "aci-research-engines-1",
        "aci-research-blast-1",
        "aci-research-web",
    ]
    head = plan["groups"][0]
    assert head["ports"] == [8888, 2222] and head["ip"] == "public"
    assert head["vcpu"] == "2" and head["memory_gb"] == "3.5"
    web = plan["groups"][3]
    assert web["ports"] == [8080] and web["ip"] == "public"
    assert plan["counts"] == {"create": 4}
    assert plan["cost_per_hour"] > 0 and plan["currency"] == "USD"
    assert plan["price_source"].startswith("https://azure.microsoft.com/")
    assert any("hypervisor-isolated" in p for p in plan["protections"])


def test_plan_without_subscription_says_it_did_not_compare(deployer_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["plan", str(CLUSTER)])
    assert result.exit_code == 0, result.output
    assert "Note: not compared with Azure: deployment.subscription is not set" in result.stdout
    assert "aci-research-engines-1" in result.stdout
    assert "ACI provides: each container group runs in its own hypervisor-isolated" in (
        result.stdout.replace("\n", " ")
    )


def test_price_override_from_flag_and_file(
    deployer_env: dict[str, str], tmp_path: Path, workload_file: Callable[..., Path]
) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(
        json.dumps(
            {
                "source": "my contract",
                "currency": "EUR",
                "default": {"vcpu_second": 0.001, "gb_second": 0.0},
            }
        )
    )
    result = CliRunner().invoke(
        app, ["plan", str(CLUSTER), "--offline", "--prices", str(prices), "-o", "json"]
    )
    plan = json.loads(result.stdout)["data"]
    assert plan["currency"] == "EUR" and plan["price_source"] == "my contract"
    assert plan["cost_per_hour"] == round(float(plan["vcpu"]) * 3.6, 4)

    text = CLUSTER.read_text().replace(
        "  # prices: {vcpu_second: 0.0000113, gb_second: 0.0000012, currency: USD}",
        "  prices: {vcpu_second: 0.0, gb_second: 0.001, currency: GBP}",
    )
    inline = json.loads(
        CliRunner()
        .invoke(app, ["plan", str(workload_file(text)), "--offline", "-o", "json"])
        .stdout
    )["data"]
    assert inline["currency"] == "GBP" and inline["price_source"] == "workload file"
    assert inline["cost_per_hour"] == round(float(inline["memory_gb"]) * 3.6, 4)


@pytest.mark.parametrize(
    "args",
    [
        ["--output", "json", "plan", str(CLUSTER), "--offline"],
        ["plan", str(CLUSTER), "--offline", "--output", "json"],
        ["-o", "text", "plan", str(CLUSTER), "--offline", "-o", "json"],  # after wins
    ],
)
def test_output_json_works_before_and_after_the_command(
    deployer_env: dict[str, str], args: list[str]
) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body) == {"command", "ok", "data", "error"} and body["command"] == "plan"
    assert body["ok"] is True and body["error"] is None and body["data"]["groups"]


def test_error_envelope_before_the_command(
    deployer_env: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file("deployment: {name: x}\nworkloads: {}\nextra: 1\n")
    result = CliRunner().invoke(app, ["--output", "json", "plan", str(path), "--offline"])
    assert result.exit_code == 2
    body = json.loads(result.stdout)
    # The same four keys as on success; no partial result here, so data is null.
    assert set(body) == {"command", "ok", "data", "error"}
    assert body["ok"] is False and body["command"] == "plan" and body["data"] is None
    assert set(body["error"]) == {"code", "message", "hint", "exit_code"}
    assert body["error"]["exit_code"] == 2 and body["error"]["code"] == "InvalidWorkloadFile"
    assert len(result.stderr.strip().splitlines()) <= 2  # one line (and a hint), no traceback
    text = CliRunner().invoke(app, ["plan", str(path), "--offline"])
    assert text.exit_code == 2 and text.stdout == ""


def test_a_failure_with_a_partial_result_gives_it_as_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # What `deployer build` (the images that did build) and `deployer run` (the summary of a
    # failed run) do: the error carries the partial result, the envelope gives it as data.
    @guarded("build")
    def fails(output: Output | None = None) -> None:
        raise DeployerError("1 of 2 images failed", code="BuildFailed", data={"built": ["a"]})

    with pytest.raises(typer.Exit) as info:
        fails(output=Output.json)
    assert info.value.exit_code == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {
        "command": "build",
        "ok": False,
        "data": {"built": ["a"]},
        "error": {
            "code": "BuildFailed",
            "message": "1 of 2 images failed",
            "hint": None,
            "exit_code": 1,
        },
    }
    assert "1 of 2 images failed" in captured.err


def test_an_error_without_a_code_gets_a_generic_one() -> None:
    assert json.loads(envelope("up", error=DeployerError("no")))["error"]["code"] == "error"
    assert json.loads(envelope("up", error=InputError("bad")))["error"]["code"] == ("invalid_input")


def test_local_secrets_creates_then_keeps_the_env_file(tmp_path: Path) -> None:
    env = tmp_path / "compose" / ".env"
    first = CliRunner().invoke(app, ["local", "secrets", str(env)])
    assert first.exit_code == 0 and f"created {env}" in first.stderr
    token = env.read_text()
    again = CliRunner().invoke(app, ["--output", "json", "local", "secrets", str(env)])
    assert again.exit_code == 0
    assert json.loads(again.stdout)["data"] == {"file": str(env), "created": False}
    assert env.read_text() == token
    assert "NOTEBOOK_TOKEN" not in first.output + again.output


def test_usage_errors_exit_2() -> None:
    result = CliRunner().invoke(app, ["up"])
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["plan", str(CLUSTER), "--output", "yaml"])
    assert result.exit_code == 2


def test_missing_setting_exits_2_naming_flag_field_and_variable(
    deployer_env: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file(CLUSTER.read_text().replace("  registry: aciresearch.azurecr.io", ""))
    result = CliRunner().invoke(app, ["plan", str(path), "--offline", "-o", "json"])
    assert result.exit_code == 2
    assert "deployment.registry is not set" in result.stderr
    assert "--registry" in result.stderr and "DEPLOYER_REGISTRY" in result.stderr
    body = json.loads(result.stdout)
    assert body["ok"] is False and body["error"]["exit_code"] == 2


def test_database_too_big_unsharded_is_refused_before_azure(
    deployer_env: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file(
        CLUSTER.read_text().replace(
            "bytes_to_cache: 1048576", "bytes_to_cache: 15200000000\n        shards: 1"
        )
    )
    result = CliRunner().invoke(app, ["plan", str(path), "--offline"])
    assert result.exit_code == 2
    assert "database demo needs 17.3 GB per worker" in result.stderr
    assert "use a smaller database" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1  # one line, options included


def test_database_too_big_for_a_group_is_planned_in_shards(
    deployer_env: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file(
        CLUSTER.read_text().replace("bytes_to_cache: 1048576", "bytes_to_cache: 15200000000")
    )
    result = CliRunner().invoke(app, ["plan", str(path), "--offline"])
    assert result.exit_code == 0, result.output
    assert "Database demo: searched in 2 shards" in result.stdout
    assert "a run of B batches is B x 2 jobs" in result.stdout


def test_database_too_big_for_a_standard_group_gets_a_declared_large_group(
    deployer_env: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    text = CLUSTER.read_text().replace("bytes_to_cache: 1048576", "bytes_to_cache: 15200000000")
    path = workload_file(
        text.replace("deployment:\n", "deployment:\n  max_group: {vcpu: 31, memory_gb: 240}\n", 1)
    )
    result = CliRunner().invoke(app, ["--output", "json", "plan", str(path), "--offline"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["data"]
    [search] = data["searches"]
    assert search.startswith("Database demo: searched whole by workers of 17.3 GB in large")
    workers = [g for g in data["groups"] if "-blast-" in g["name"]]
    assert workers and all(float(g["memory_gb"]) > 16 for g in workers)


def test_progress_is_plain_lines_off_a_tty_and_a_live_table_on_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with ProgressPrinter("up demo", live=False) as progress:
        progress("demo-head", "create: provisioning")
        progress("demo-head", "ready")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "up demo"
    assert lines[1].endswith("demo-head: create: provisioning") and lines[2].endswith(
        "demo-head: ready"
    )

    with ProgressPrinter("up demo", live=True) as progress:
        progress("demo-head", "failed: [bold]x[/bold] refused")
    table = capsys.readouterr().err
    assert "demo-head" in table and "failed: [bold]x[/bold] refused" in table


def test_local_wait_without_docker_is_one_line_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = CliRunner().invoke(app, ["local", "wait", "--timeout", "1", "some-project"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach the Docker engine")
    assert "Traceback" not in result.output


def test_plan_shows_the_mpi_world_size_per_engines_container(deployer_env: dict[str, str]) -> None:
    path = ROOT / "examples" / "ipyparallel-mpi.yaml"
    result = CliRunner().invoke(app, ["plan", str(path), "--offline"])
    assert result.exit_code == 0, result.output
    assert "Note: MPI world size per container in ipp-mpi-engines-1: ipengine-1: 4 ranks" in (
        result.stdout
    )
    assert "one MPI world cannot span ACI container groups" in result.stdout
    body = json.loads(
        CliRunner().invoke(app, ["plan", str(path), "--offline", "-o", "json"]).stdout
    )
    assert [g["mpi_worlds"] for g in body["data"]["groups"]] == [
        {},
        {"ipengine-1": 4},
        {"ipengine-2": 4},
    ]


def test_mpi_with_one_engine_per_container_exits_2_with_one_line(
    deployer_env: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    text = (ROOT / "examples" / "ipyparallel-mpi.yaml").read_text()
    path = workload_file(text.replace("engines_per_container: 4", "engines_per_container: 1"))
    result = CliRunner().invoke(app, ["plan", str(path), "--offline"])
    assert result.exit_code == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {path}:13: workloads.ipyparallel: mpi: true needs ")
    assert "engines_per_container >= 2" in line


def test_plan_with_queries_shows_the_run_tuning_in_one_line(
    deployer_env: dict[str, str], workload_file: Callable[..., Path], tmp_path: Path
) -> None:
    # workers: 2 at the default threads (2): 4 cores for a database of 30 MB.
    text = CLUSTER.read_text().replace("bytes_to_cache: 1048576", "bytes_to_cache: 30000000")
    text = text.replace("workers: 1\n    threads_per_worker: 1 ", "workers: 2\n    # ")
    path = workload_file(text)
    queries = tmp_path / "q.fa"
    queries.write_text("".join(f">q{i}\n{'ACGT' * 150}\n" for i in range(100)))
    result = CliRunner().invoke(app, ["plan", str(path), "--offline", "--queries", str(queries)])
    assert result.exit_code == 0, result.output
    [line] = [x for x in result.stdout.splitlines() if x.startswith("Run tuning")]
    assert line.startswith("Run tuning (blastn, 4 cores): 1 worker x 4 threads, 1 batch of at")
    assert "4 threads share each scan of the 30.0 MB database" in line
    plain = CliRunner().invoke(app, ["plan", str(path), "--offline", "-o", "json"])
    assert json.loads(plain.stdout)["data"]["tuning"] is None


def test_plan_with_bad_queries_or_program_is_one_line_exit_2(
    deployer_env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.fa"
    bad.write_text("ACGT\n")
    cases = {
        "not FASTA": ["--queries", str(bad)],
        "missing file": ["--queries", str(tmp_path / "none.fa")],
        "program": ["--queries", str(CLUSTER), "--program", "blastz"],
    }
    good = tmp_path / "q.fa"
    good.write_text(">q\nACGT\n")
    cases["program"][1] = str(good)
    cases["database"] = ["--queries", str(good), "--db", "nosuch"]
    for what, extra in cases.items():
        result = CliRunner().invoke(app, ["plan", str(CLUSTER), "--offline", *extra])
        assert result.exit_code == 2, f"{what}: {result.output}"
        lines = [x for x in result.stderr.splitlines() if not x.startswith("  hint:")]
        assert len(lines) == 1 and lines[0].startswith("error:"), f"{what}: {result.stderr}"
