"""The table from Azure's error codes to the fix (:mod:`deployer.hints`), row by row.

Each row is what Azure (or the sign-in) says, and what the user must read: the exit code, a
piece of the one-line message, and the pieces of the hint that name the fix. The same rows
run end to end through the CLI in ``test_first_hour.py`` (against the fake ARM) and in
``tests/integration/test_first_hour_storage.py`` (Azurite).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from blast_client.errors import StorageError, StorageFailure

from deployer import hints
from deployer.errors import (
    CredentialError,
    DeployerError,
    InputError,
    MissingSettingError,
    QuotaError,
)
from deployer.hints import Failure, advise


@dataclass(frozen=True)
class Row:
    """One situation and what the user must be told."""

    name: str
    failure: Failure
    kind: type[DeployerError]
    exit_code: int
    message: str
    hint: tuple[str, ...]


QUEUE_403 = StorageFailure(
    "AuthorizationPermissionMismatch",
    403,
    "queue",
    "aciresearchdata",
    False,
    "This request is not authorized to perform this operation using this permission.",
)
ROWS = [
    Row(
        "not signed in",
        Failure("CredentialUnavailable", "DefaultAzureCredential failed", "listing groups"),
        CredentialError,
        1,
        "not signed in to Azure",
        ("az login", "AZURE_CLIENT_SECRET", "DEPLOYER_ACCESS_TOKEN"),
    ),
    Row(
        "expired token",
        Failure("ExpiredAuthenticationToken", "The access token expiry ...", status=401),
        CredentialError,
        1,
        "Azure refused the credential",
        ("az login",),
    ),
    Row(
        "subscription not found",
        Failure(
            "SubscriptionNotFound",
            "The subscription '11111111-2222-3333-4444-555555555555' could not be found.",
            status=404,
        ),
        InputError,
        2,
        "could not be found",
        ("az account list -o table", "--subscription", "AZURE_SUBSCRIPTION_ID"),
    ),
    Row(
        "subscription malformed",
        Failure(
            "InvalidSubscriptionId",
            "The provided subscription identifier 'my-sub' is malformed or invalid.",
            status=400,
        ),
        InputError,
        2,
        "malformed or invalid",
        ("deployment.subscription",),
    ),
    Row(
        "subscription of another tenant",
        Failure("InvalidAuthenticationTokenTenant", "The access token is from the wrong issuer"),
        InputError,
        2,
        "not in the tenant",
        ("az login --tenant", "--subscription"),
    ),
    Row(
        "resource group missing",
        Failure("ResourceGroupNotFound", "Resource group 'research' could not be found.", "x"),
        DeployerError,
        1,
        "Resource group 'research' could not be found.",
        ("deployer init", "--resource-group", "az group list"),
    ),
    Row(
        "provider not registered",
        Failure(
            "MissingSubscriptionRegistration",
            "The subscription is not registered to use namespace "
            "'Microsoft.ContainerInstance'. See https://aka.ms/rps-not-found for how to "
            "register subscriptions.",
            status=409,
        ),
        DeployerError,
        1,
        "not registered to use Microsoft.ContainerInstance",
        ("az provider register --namespace Microsoft.ContainerInstance --wait", "deployer init"),
    ),
    Row(
        "ACI quota",
        Failure(
            "ContainerGroupQuotaReached",
            "Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota "
            "'StandardCores' exceeded in region 'eastus'. Limit: '10', Usage: '10' "
            "Requested: '1'.",
            status=409,
        ),
        QuotaError,
        1,
        "Limit: '10'",
        ("'StandardCores'", "eastus", "support request", "Container Instances"),
    ),
    Row(
        "ACI quota under another code",
        Failure(
            "ServiceUnavailable",
            "Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota "
            "'ContainerGroups' exceeded in region 'westeurope'. Limit: '0', Usage: '0' "
            "Requested: '1'.",
            status=409,
        ),
        QuotaError,
        1,
        "'ContainerGroups' exceeded",
        ("'ContainerGroups'", "westeurope", "support request"),
    ),
    Row(
        "ACR Tasks refused",
        Failure(
            "TasksOperationsNotAllowed",
            "ACR Tasks requests for the registry aciresearch and 0000 are not permitted.",
            status=400,
        ),
        DeployerError,
        1,
        "refuses ACR Tasks",
        ("deployer build --local",),
    ),
    Row(
        "storage data role missing",
        Failure(QUEUE_403.code, QUEUE_403.message, "x", 403, QUEUE_403),
        DeployerError,
        1,
        "storage account aciresearchdata refused the queue request",
        (
            "Storage Queue Data Contributor",
            'az role assignment create --role "Storage Queue Data Contributor" '
            '--assignee "$(az ad signed-in-user show --query id -o tsv)" '
            '--scope "$(az storage account show -n aciresearchdata --query id -o tsv)"',
        ),
    ),
    Row(
        "ARM write refused",
        Failure(
            "AuthorizationFailed",
            "The client 'x' does not have authorization to perform action "
            "'Microsoft.ContainerInstance/containerGroups/write'",
            status=403,
        ),
        DeployerError,
        1,
        "does not have authorization",
        ("Contributor", "az role assignment"),
    ),
    Row(
        "ACI cannot pull an image",
        Failure(
            "InaccessibleImage",
            "The image 'r.azurecr.io/ipengine:1.0' in container group 'lab-engines-1' is not "
            "accessible. Please check the image and registry credential.",
            "creating group lab-engines-1",
            400,
        ),
        DeployerError,
        1,
        "is not accessible",
        ("DEPLOYER_REGISTRY_PASSWORD", "az acr credential show", "AcrPull", "deployer plan"),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_each_failure_gets_one_line_and_the_fix(row: Row) -> None:
    error = advise(row.failure)
    assert isinstance(error, row.kind)
    assert int(error.exit_code) == row.exit_code
    assert row.message in error.message and "\n" not in error.message
    assert error.hint is not None and "\n" not in error.hint
    for piece in row.hint:
        assert piece in error.hint, (piece, error.hint)
    assert error.code == row.failure.code


def test_an_unknown_code_keeps_azure_s_words_and_code() -> None:
    error = advise(Failure("Conflict", "A delete is in flight.", "creating lab-head", 409))
    assert error.message == "Azure refused creating lab-head: A delete is in flight."
    assert error.code == "Conflict" and error.hint is None and error.exit_code == 1
    assert advise(Failure(None, "no body", status=502)).code == "HTTP502"


def test_a_refused_sas_is_named_besides_the_role() -> None:
    sas = StorageFailure("AuthorizationPermissionMismatch", 403, "blob", "acct", True, "no")
    hint = advise(Failure(sas.code, sas.message, "x", 403, sas)).hint or ""
    assert "SAS does not allow this request" in hint
    assert "Storage Blob Data Contributor" in hint


def test_a_storage_error_of_the_blast_client_gets_the_deployer_s_advice() -> None:
    signed_out = StorageFailure("CredentialUnavailable", None, None, None, False, "no sign-in")
    error = hints.from_blast(StorageError("not signed in", "az login", signed_out))
    assert isinstance(error, CredentialError) and "DEPLOYER_ACCESS_TOKEN" in (error.hint or "")
    plain = hints.from_blast(StorageError("storage refused the request (500: boom)", "retry"))
    assert plain.message.startswith("storage refused") and plain.hint == "retry"


def test_registry_admin_names_settings_that_exist() -> None:
    error = hints.missing_registry_admin("aciresearch.azurecr.io")
    assert isinstance(error, MissingSettingError) and error.exit_code == 2
    hint = error.hint or ""
    for piece in (
        "az acr update -n aciresearch --admin-enabled true",
        "DEPLOYER_REGISTRY_USERNAME",
        "DEPLOYER_REGISTRY_PASSWORD",
        "az acr credential show -n aciresearch",
        "registry_auth: identity",
        "deployment.managed_identity",
    ):
        assert piece in hint
    assert "in the workload file" not in hint  # no field of that name exists


def test_the_command_s_workload_file_stands_in_the_hint() -> None:
    missing = Failure("ResourceGroupNotFound", "Resource group 'rg' could not be found.")
    error = hints.user_error(advise(missing), "examples/blast-run.yaml")
    assert "`deployer init examples/blast-run.yaml`" in (error.hint or "")
    tasks = hints.user_error(advise(Failure("TasksOperationsNotAllowed", "no")), "lab.yaml")
    assert (tasks.hint or "").endswith("`deployer build --local lab.yaml`")
    assert "<workload file>" in (hints.user_error(advise(missing)).hint or "")
