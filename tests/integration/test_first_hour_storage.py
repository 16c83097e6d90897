"""The first hour: a storage data role missing. Storage answers 403
``AuthorizationPermissionMismatch``, and the deployer names the role and the exact
``az role assignment create`` line.

The 403s are real: Azurite refuses a request that the account SAS signing it does not
allow, with the code Azure Storage sends when an Entra ID identity lacks the data role.
The ``deployer`` CLI runs as a subprocess, signed in to the fake ARM server.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas
from blast_client import BlastClient

from aci_emulator import FAKE_TOKEN, FakeArm, FakeRegistry
from aci_emulator.azurite import ACCOUNT, ACCOUNT_KEY, AzuriteContainer
from testbed.engine import REPO, image
from testbed.fake_arm import DEPLOYER_RESOURCE_GROUP, cluster_yaml
from testbed.first_hour import ImdsTrap, error_and_hint, signed_out_env

DEPLOYER = str(Path(sys.executable).parent / "deployer")
GRANT = (
    'az role assignment create --role "{role}" '
    '--assignee "$(az ad signed-in-user show --query id -o tsv)" '
    f'--scope "$(az storage account show -n {ACCOUNT} --query id -o tsv)"'
)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteContainer]:
    """Azurite's blob, queue and table services, with a database ``demo`` in them."""
    try:
        container = AzuriteContainer(image("azurite")).start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        client = BlastClient(container.services_connection_string())
        client.ensure_resources()
        folder = tmp_path_factory.mktemp("demo-db")
        parts = [folder / f"demo.{ext}" for ext in ("nhr", "nin", "nsq")]
        for part in parts:
            part.write_bytes(b"\0" * 64)
        client.upload_database("demo", parts)
        yield container
    finally:
        container.stop()


def sas(**allowed: bool) -> str:
    """An account SAS for the blob, queue and table services allowing only ``allowed``."""
    return generate_account_sas(
        ACCOUNT,
        ACCOUNT_KEY,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(**allowed),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        services="bqt",
    )


@pytest.fixture
def env(
    fake_arm: FakeArm, fake_registry: FakeRegistry, deployer_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[str], dict[str, str]]]:
    """The environment of a user signed in to ARM whose storage is Azurite signed by a SAS
    (and whose registry holds the images)."""
    with ImdsTrap() as imds:

        def make(connection_string: str) -> dict[str, str]:
            return signed_out_env(
                tmp_path,
                imds.url,
                **deployer_env,
                DEPLOYER_ARM_ENDPOINT=fake_arm.url,
                DEPLOYER_REGISTRY_ENDPOINT=fake_registry.server,
                DEPLOYER_ACCESS_TOKEN=FAKE_TOKEN,
                AZURE_SUBSCRIPTION_ID=fake_arm.subscription_id,
                DEPLOYER_RESOURCE_GROUP=DEPLOYER_RESOURCE_GROUP,
                AZURE_STORAGE_CONNECTION_STRING=connection_string,
            )

        yield make


def deployer(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DEPLOYER, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_run_without_the_queue_role_names_the_role_and_the_az_line(
    azurite: AzuriteContainer,
    env: Callable[[str], dict[str, str]],
    workload_file: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """The queries and the database check read storage (allowed); creating the run's queue
    is the first write, and storage refuses it."""
    read_only = azurite.services_connection_string(sas(read=True, list=True))
    path = workload_file(cluster_yaml(engines=4).replace("storage_account: aciresearchdata", ""))
    queries = tmp_path / "q.fa"
    queries.write_text(">q1\nACGTTGCAACGTTGCAACGTACGTTGCA\n")
    done = deployer("run", str(path), str(queries), "--db", "demo", env=env(read_only))
    print(done.stderr)  # shown when an assertion below fails
    assert done.returncode == 1
    line, hint = error_and_hint(done.stderr)
    assert line == (
        f"error: storage account {ACCOUNT} refused the queue request: This request is not "
        "authorized to perform this operation using this permission. "
        "[AuthorizationPermissionMismatch]"
    )
    assert "Storage Queue Data Contributor role on storage account devstoreaccount1" in hint
    assert GRANT.format(role="Storage Queue Data Contributor") in hint
    assert "SAS does not allow this request" in hint  # signed by a SAS here, so it says so


def test_reading_runs_without_the_table_role_names_the_role_and_the_az_line(
    azurite: AzuriteContainer, env: Callable[[str], dict[str, str]]
) -> None:
    """``run list`` reads the run table through the table SDK directly: its 403 reaches the
    command line untranslated, and the CLI's last net gives the same advice."""
    write_only = azurite.services_connection_string(sas(add=True))
    done = deployer("run", "list", env=env(write_only))
    print(done.stderr)  # shown when an assertion below fails
    assert done.returncode == 1
    line, hint = error_and_hint(done.stderr)
    assert line.startswith(f"error: storage account {ACCOUNT} refused the table request")
    assert GRANT.format(role="Storage Table Data Contributor") in hint


def test_blast_jobs_names_the_role_and_the_az_line_too(
    azurite: AzuriteContainer, env: Callable[[str], dict[str, str]]
) -> None:
    """``blast-jobs`` signs in to storage the same way; the storage library gives it the
    same advice."""
    read_only = azurite.services_connection_string(sas(read=True, list=True))
    done = subprocess.run(
        [str(Path(sys.executable).parent / "blast-jobs"), "init"],
        env=env(read_only),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    print(done.stderr)  # shown when an assertion below fails
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert GRANT.format(role="Storage Queue Data Contributor") in done.stderr
