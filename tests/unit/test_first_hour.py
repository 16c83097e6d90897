"""The first hour, failure by failure: each ends in exit code 1 or 2, one line, and a hint
that names the fix, never in a traceback.

The real ``deployer`` CLI runs as a subprocess against the fake ARM server (real SDKs, bodies
checked against the REST specs); Azure's refusals are scripted with its fault injector, with
the status, code and message Azure sends. The storage 403 and ACR Tasks rows need Azurite:
``tests/integration/test_first_hour_storage.py`` and
``tests/integration/imagebuild/test_build_first_hour.py``. The table itself is
``test_hints.py``.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aci_emulator import FAKE_TOKEN, FakeArm, FakeRegistry
from deployer import deployment_secrets
from testbed.fake_arm import DEPLOYER_RESOURCE_GROUP, cluster_yaml
from testbed.first_hour import ImdsTrap, error_and_hint, signed_out_env

REPO = Path(__file__).resolve().parents[2]
DEPLOYER = str(Path(sys.executable).parent / "deployer")
TIMEOUT = 300


def deployer(*args: str, env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run the real CLI; its stderr is printed (shown when an assertion fails)."""
    done = subprocess.run(
        [DEPLOYER, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    print(done.stderr)
    return done


@pytest.fixture
def imds() -> Iterator[ImdsTrap]:
    """Where the managed identity probe goes instead of 169.254.169.254."""
    with ImdsTrap() as trap:
        yield trap


@pytest.fixture
def signed_in(
    fake_arm: FakeArm, fake_registry: FakeRegistry, deployer_env: dict[str, str], imds: ImdsTrap
) -> dict[str, str]:
    """The fake ARM's endpoint, subscription, resource group and token, and the registry
    that holds the images; nothing else."""
    return signed_out_env(
        Path(deployer_env["DEPLOYER_STATE_DIR"]).parent,
        imds.url,
        **deployer_env,
        DEPLOYER_ARM_ENDPOINT=fake_arm.url,
        DEPLOYER_REGISTRY_ENDPOINT=fake_registry.server,
        DEPLOYER_ACCESS_TOKEN=FAKE_TOKEN,
        AZURE_SUBSCRIPTION_ID=fake_arm.subscription_id,
        DEPLOYER_RESOURCE_GROUP=DEPLOYER_RESOURCE_GROUP,
    )


@pytest.fixture
def lab(workload_file: Callable[..., Path]) -> Path:
    """A cluster of 4 engines with a notebook and one BLAST worker (3 groups)."""
    return workload_file(cluster_yaml(engines=4), "lab.yaml")


# --- not signed in, for every command ------------------------------------------------


def test_not_signed_in_every_command_says_how_to_sign_in(
    fake_arm: FakeArm,
    deployer_env: dict[str, str],
    imds: ImdsTrap,
    lab: Path,
    workload_file: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """No ``az``, no credential variable, no token cache, the managed identity probe on a
    loopback port that answers "Identity not found": ``DefaultAzureCredential`` genuinely fails,
    and every command that talks to Azure says so in one line and how to sign in."""
    env = signed_out_env(
        tmp_path,
        imds.url,
        **deployer_env,
        DEPLOYER_ARM_ENDPOINT=fake_arm.url,
        AZURE_SUBSCRIPTION_ID=fake_arm.subscription_id,
        DEPLOYER_RESOURCE_GROUP=DEPLOYER_RESOURCE_GROUP,
    )
    deployment_secrets.load_or_generate("lab", persist=True)  # as if `up` ran here before
    queries = tmp_path / "q.fa"
    queries.write_text(">q1\nACGTTGCAACGTTGCAACGT\n")
    closed = f"http://127.0.0.1:{imds.url.rsplit(':', 1)[1]}/nothing/"
    storage = {**env, "AZURE_STORAGE_ACCOUNT": "aciresearchdata"}
    # A database sized only by its manifest in storage, which cannot be read signed out.
    unsized = workload_file(
        cluster_yaml(engines=4).replace("{name: demo, bytes_to_cache: 1000000}", "{name: demo}"),
        "unsized.yaml",
    )
    commands: list[tuple[list[str], dict[str, str]]] = [
        (["up", str(unsized)], env),
        (["init", str(lab), "--yes"], env),
        (["plan", str(lab)], env),
        (["build", str(lab)], env),
        (["up", str(lab)], env),
        (["url", str(lab)], env),
        (["status", str(lab)], env),
        (["logs", "lab-head", "--file", str(lab)], env),
        (["scale", str(lab), "ipyparallel=8"], env),
        (["down", str(lab)], env),
        (["destroy", str(lab), "--yes"], env),
        (["run", str(lab), str(queries), "--db", "demo"], env),
        (["run", "status", "r0123abcd"], storage),
        (["run", "list"], storage),
        (["run", "results", "r0123abcd"], storage),
        (["run", "cancel", "r0123abcd"], storage),
        (["db", "fetch", str(lab), "demo", "--source", closed], env),
    ]
    # Concurrently: each is a Python start-up (about a second of CPU).
    started = time.monotonic()
    running = [
        (
            args,
            subprocess.Popen(
                [DEPLOYER, *args],
                env=e,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for args, e in commands
    ]
    results = [
        (args, *proc.communicate(timeout=TIMEOUT), proc.returncode) for args, proc in running
    ]
    print(f"{len(commands)} commands in {time.monotonic() - started:.1f} s")
    unsized_up, *results = results
    for args, _, stderr, _code in [unsized_up, *results]:
        print(f"$ deployer {' '.join(args)}\n{stderr}")
    for args, _, stderr, code in results:
        assert code == 1, (args, stderr)
        line, hint = error_and_hint(stderr)
        assert line.startswith("error: not signed in to Azure"), (args, line)
        assert "az login" in hint and "AZURE_CLIENT_SECRET" in hint, (args, hint)
        # azure-identity's own warnings (one per credential tried) are not shown.
        assert "EnvironmentCredential" not in stderr, (args, stderr)
    # Without the database's size the workers cannot be sized: that says why, and the hint
    # is still how to sign in.
    _, _, stderr, code = unsized_up
    assert code == 2, stderr
    line, hint = error_and_hint(stderr)
    assert line.startswith("error: database demo has no bytes_to_cache") and "not signed in" in line
    assert "az login" in hint
    assert fake_arm.calls() == []  # nothing was sent: no token, no request
    assert imds.connections > 0  # the probe went to loopback, not to 169.254.169.254
    assert lab.read_text() == textwrap.dedent(cluster_yaml(engines=4)).lstrip()  # scale: no edit


# Probes the managed identity endpoint the way a storage call of the deployer would, in a
# process of its own (azure-identity reads the environment when it starts).
ONE_SIGN_IN = """
from azure.identity import DefaultAzureCredential
try:
    DefaultAzureCredential().get_token("https://storage.azure.com/.default")
except Exception as exc:
    print(type(exc).__name__)
"""
STORAGE_READ = """
from blast_client import BlastClient, BlastClientError
try:
    BlastClient(account_name="aciresearchdata", retries=6).database("demo")
except BlastClientError as exc:
    print(exc.message)
"""


def test_signed_out_a_storage_call_tries_to_sign_in_once_not_once_per_retry(
    imds: ImdsTrap, tmp_path: Path
) -> None:
    """The storage SDKs retry every error, a failed sign-in too: with the deployer's 6
    retries a signed-out ``up`` sat for minutes before it said so."""
    env = signed_out_env(tmp_path, imds.url)

    def probes(code: str) -> tuple[int, str]:
        before = imds.connections
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
        assert done.returncode == 0, done.stderr
        return imds.connections - before, done.stdout.strip()

    once, said = probes(ONE_SIGN_IN)
    assert once > 0 and said == "ClientAuthenticationError"
    read, said = probes(STORAGE_READ)
    assert "not signed in" in said
    assert read == once


# --- the subscription ------------------------------------------------------------------


def test_subscription_unset_says_how_to_set_it(signed_in: dict[str, str], lab: Path) -> None:
    env = {k: v for k, v in signed_in.items() if k != "AZURE_SUBSCRIPTION_ID"}
    done = deployer("up", str(lab), env=env)
    assert done.returncode == 2
    line, hint = error_and_hint(done.stderr)
    assert line == "error: deployment.subscription is not set"
    for piece in ("--subscription", "deployment.subscription", "AZURE_SUBSCRIPTION_ID"):
        assert piece in hint
    assert "az account list -o table" in hint


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (404, "SubscriptionNotFound", "The subscription '{sub}' could not be found."),
        (
            400,
            "InvalidSubscriptionId",
            "The provided subscription identifier '{sub}' is malformed or invalid.",
        ),
    ],
)
def test_a_wrong_subscription_says_how_to_set_it(
    fake_arm: FakeArm,
    signed_in: dict[str, str],
    lab: Path,
    status: int,
    code: str,
    message: str,
) -> None:
    text = message.format(sub=fake_arm.subscription_id)
    fake_arm.faults.script(status, count=100, body={"error": {"code": code, "message": text}})
    done = deployer("status", str(lab), env=signed_in)
    assert done.returncode == 2
    line, hint = error_and_hint(done.stderr)
    assert line == f"error: wrong subscription while listing container groups in research: {text}"
    assert "az account list -o table" in hint and "--subscription" in hint


# --- the resource group, the provider, the quota ---------------------------------------


def test_a_missing_resource_group_names_deployer_init(
    fake_arm: FakeArm, signed_in: dict[str, str], lab: Path
) -> None:
    body = {
        "error": {
            "code": "ResourceGroupNotFound",
            "message": f"Resource group '{DEPLOYER_RESOURCE_GROUP}' could not be found.",
        }
    }
    fake_arm.faults.script(404, path="/resourceGroups/", count=100, body=body)
    done = deployer("up", str(lab), env=signed_in)
    assert done.returncode == 1
    line, hint = error_and_hint(done.stderr)
    assert "Resource group 'research' could not be found." in line
    assert "ResourceGroupNotFound" in line
    assert f"`deployer init {lab}` creates it" in hint  # the command's own file
    assert not fake_arm.calls("PUT")


def test_an_unregistered_provider_says_how_to_register_it(
    fake_arm: FakeArm, signed_in: dict[str, str], lab: Path
) -> None:
    body = {
        "error": {
            "code": "MissingSubscriptionRegistration",
            "message": "The subscription is not registered to use namespace "
            "'Microsoft.ContainerInstance'. See https://aka.ms/rps-not-found for how to "
            "register subscriptions.",
        }
    }
    fake_arm.faults.script(409, method="PUT", count=100, body=body)
    done = deployer("up", str(lab), env=signed_in)
    assert done.returncode == 1
    line, hint = error_and_hint(done.stderr)
    # Every group failed for the one reason: said once.
    assert line.startswith(
        "error: 3 of 3 group(s) failed to come up: the subscription is not "
        "registered to use Microsoft.ContainerInstance"
    )
    assert "az provider register --namespace Microsoft.ContainerInstance --wait" in hint
    assert f"`deployer init {lab}`" in hint
    assert "Registration failed" not in done.stderr  # azure-mgmt-core's own attempt, unshown
    assert "deployer init" in hint


def test_a_plan_beyond_the_vcpu_quota_names_the_quota_and_how_to_get_more(
    fake_arm: FakeArm, signed_in: dict[str, str], lab: Path
) -> None:
    fake_arm.aci.usage_limits["StandardCores"] = 4
    done = deployer("up", str(lab), env=signed_in)
    assert done.returncode == 1
    line, hint = error_and_hint(done.stderr)
    assert "the plan needs" in line and "ACI quota StandardCores" in line
    assert "'StandardCores'" in hint and "eastus" in hint and "support request" in hint
    assert not fake_arm.calls("PUT")


def test_aci_s_own_quota_refusal_names_the_quota_and_how_to_get_more(
    fake_arm: FakeArm, signed_in: dict[str, str], lab: Path
) -> None:
    """ACI refuses a create past the quota even when the check before it passed (another
    deployment took the cores meanwhile)."""
    message = (
        "Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota "
        "'StandardCores' exceeded in region 'eastus'. Limit: '10', Usage: '10' Requested: '4'."
    )
    body = {"error": {"code": "ContainerGroupQuotaReached", "message": message}}
    fake_arm.faults.script(409, method="PUT", count=100, body=body)
    done = deployer("up", str(lab), env=signed_in)
    assert done.returncode == 1
    line, hint = error_and_hint(done.stderr)
    assert "Limit: '10'" in line and "ContainerGroupQuotaReached" in line
    assert "'StandardCores'" in hint and "support request" in hint


# --- the registry admin user -----------------------------------------------------------


def test_registry_admin_without_its_user_names_the_settings_that_exist(
    signed_in: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file(
        cluster_yaml(engines=4).replace("storage_account: aciresearchdata", "registry_auth: admin")
    )
    done = deployer("up", str(path), env=signed_in)
    assert done.returncode == 2
    line, hint = error_and_hint(done.stderr)
    assert "registry_auth: admin" in line and "DEPLOYER_REGISTRY_USERNAME" in line
    assert "az acr update -n aciresearch --admin-enabled true" in hint
    assert "registry_auth: identity" in hint and "deployer init" in hint
    assert "in the workload file" not in hint


# --- after up: the notebook's URL without opening a JSON file ----------------------------


def _on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with its stdout on a pseudo-terminal; return (exit code, stdout)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [DEPLOYER, *args],
        env={**env, "TERM": "xterm", "COLUMNS": "80"},
        cwd=REPO,
        stdout=slave,
        stderr=subprocess.DEVNULL,
    )
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], TIMEOUT)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=TIMEOUT), b"".join(chunks).decode()


def test_up_prints_the_front_doors_with_their_token_on_a_terminal_and_url_any_time(
    fake_arm: FakeArm, signed_in: dict[str, str], workload_file: Callable[..., Path]
) -> None:
    path = workload_file(
        cluster_yaml(engines=4).replace(
            "threads_per_worker: 2", "threads_per_worker: 2\n        web: true"
        )
    )
    code, screen = _on_a_terminal(["up", str(path)], signed_in)
    assert code == 0, screen
    token = deployment_secrets.load_or_generate("lab", persist=False).notebook_token
    lines = [line.strip() for line in screen.replace("\r", "").splitlines()]
    [notebook] = [line for line in lines if line.startswith("notebook: ")]
    [page] = [line for line in lines if line.startswith("blast web: ")]
    head = fake_arm.aci.group(DEPLOYER_RESOURCE_GROUP, "lab-head")
    assert head is not None
    fqdn = f"{head.body['properties']['ipAddress']['dnsNameLabel']}.eastus.azurecontainer.io"
    assert notebook == f"notebook: https://{fqdn}:8888/lab?token={token}"
    assert page.startswith("blast web: https://lab-blast-") and page.endswith(
        f":8080/?token={token}"
    )

    # In a pipe (a log, CI) the token stays out; the output says where to get it.
    again = deployer("up", str(path), env=signed_in)
    assert again.returncode == 0 and token not in again.stdout + again.stderr
    assert f"notebook: https://{fqdn}:8888/" in again.stdout
    assert "`deployer url FILE`" in again.stdout

    shown = deployer("url", str(path), env=signed_in)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [notebook, page]
    body = json.loads(deployer("url", str(path), "-o", "json", env=signed_in).stdout)
    assert body["ok"] and body["data"]["urls"] == {
        "notebook": notebook.removeprefix("notebook: "),
        "blast web": page.removeprefix("blast web: "),
    }


def test_url_of_a_deployment_that_is_not_up_says_to_bring_it_up(
    signed_in: dict[str, str], lab: Path
) -> None:
    deployment_secrets.load_or_generate("lab", persist=True)
    done = deployer("url", str(lab), env=signed_in)
    assert done.returncode == 1
    line, hint = error_and_hint(done.stderr)
    assert "deployment lab is not up" in line and f"deployer up {lab}" in hint
