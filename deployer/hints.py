"""What to do about a failure: the one table from Azure's error codes to the fix a user can act on.

Every command's Azure failures come here: the ACI backend, ACR builds, the registry sign-in,
storage (through :mod:`blast_client`, which reads storage's errors) and, as the last net, the
CLI's renderer for an SDK error that nothing else caught. :func:`advise` is the table (pure);
:func:`from_exception` reads an SDK exception into a :class:`Failure` first, and
:func:`from_blast` takes an error of the BLAST client library.

Exit codes: a setting that names the wrong thing (the subscription) is bad input, 2; the rest is
Azure's state (not signed in, no resource group, no provider, no quota, no role), 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from azure.core.exceptions import AzureError as SdkError
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from blast_client import BlastClientError
from blast_client.errors import NOT_SIGNED_IN, StorageError, StorageFailure
from blast_client.storage import SIGN_IN_HINT, data_role_hint, storage_failure

from deployer.defaults import Env
from deployer.errors import (
    AzureError,
    CredentialError,
    DeployerError,
    InputError,
    MissingSettingError,
    QuotaError,
)

WORKLOAD = "<workload file>"
"""Stands for the command's workload file in a hint; the CLI puts the file's path in."""
INIT = f"`deployer init {WORKLOAD}`"
SET_SUBSCRIPTION = (
    "set the subscription: `az account list -o table` lists yours; pass --subscription ID, set "
    f"deployment.subscription in the workload file, or export {Env.SUBSCRIPTION}"
)
STORAGE_SERVICES = ("blob", "queue", "table")
SIGN_IN = (
    f"{SIGN_IN_HINT}, or run where a managed identity is available, or export "
    f"{Env.ACCESS_TOKEN} (`az account get-access-token --query accessToken -o tsv`)"
)
"""How to sign in: ``blast-jobs``' words, and the deployer's own ways."""


@dataclass(frozen=True)
class Failure:
    """One failure as Azure (or the sign-in) reported it.

    Args:
        code (str | None): Azure's error code (``ResourceGroupNotFound``...), or
            ``CredentialUnavailable`` when no sign-in was found.
        message (str): Azure's message, first line.
        what (str): What the deployer was doing, e.g. ``listing container groups in rg``.
            Default: ``calling Azure``.
        status (int | None): HTTP status; None when nothing was answered. Default: None.
        storage (StorageFailure | None): For a storage request, what storage said (its
            service and account). Default: None.
    """

    code: str | None
    message: str
    what: str = "calling Azure"
    status: int | None = None
    storage: StorageFailure | None = None


def quota_hint(quota: str, region: str) -> str:
    """How to get more ACI quota (pure).

    Args:
        quota (str): The quota's name, e.g. ``StandardCores``.
        region (str): The region, e.g. ``eastus``.
    """
    return (
        f"request more '{quota}' for Container Instances in {region}: Azure portal, Help + "
        "support, Create a support request, issue type 'Service and subscription limits "
        "(quotas)', quota type 'Container Instances' (https://aka.ms/azuresupport); until "
        "then use fewer or smaller groups, delete others, or pick another region"
    )


def registry_admin_hint(registry: str) -> str:
    """How to give ``registry_auth: admin`` its credentials, or not need them (pure).

    Args:
        registry (str): The registry's login server, e.g. ``myacr.azurecr.io``.
    """
    name = registry.split(".")[0] or "REGISTRY"
    return (
        f"either pull with a managed identity: set deployment.registry_auth: identity and "
        f"deployment.managed_identity ({INIT} sets both up), or turn the registry's admin user "
        f"on (`az acr update -n {name} --admin-enabled true`) and export "
        f"{Env.REGISTRY_USERNAME} and {Env.REGISTRY_PASSWORD} from "
        f"`az acr credential show -n {name}`"
    )


Rule = Callable[[Failure], DeployerError]


def _not_signed_in(f: Failure) -> DeployerError:
    return CredentialError(
        f"not signed in to Azure (no credential found while {f.what})",
        hint=SIGN_IN,
        code=NOT_SIGNED_IN,
    )


def _sign_in_refused(f: Failure) -> DeployerError:
    return CredentialError(
        f"Azure refused the credential while {f.what}: {f.message}",
        hint=f"sign in again with `az login` (or renew {Env.ACCESS_TOKEN} if you set it)",
        code=f.code,
    )


def _subscription(f: Failure) -> DeployerError:
    return InputError(
        f"wrong subscription while {f.what}: {f.message}", hint=SET_SUBSCRIPTION, code=f.code
    )


def _tenant(f: Failure) -> DeployerError:
    return InputError(
        f"the subscription is not in the tenant you signed in to, while {f.what}: {f.message}",
        hint=f"{SET_SUBSCRIPTION}; or sign in to its tenant with `az login --tenant TENANT_ID`",
        code=f.code,
    )


def _resource_group(f: Failure) -> DeployerError:
    return AzureError(
        f"{f.message} (while {f.what})",
        hint=f"{INIT} creates it and what the deployment needs in it (registry, storage, "
        "identity); or name an existing one with --resource-group, deployment.resource_group "
        f"or {Env.RESOURCE_GROUP} (`az group list -o table`)",
        code=f.code,
    )


_NAMESPACE = re.compile(r"namespace '([A-Za-z.]+)'")


def _provider(f: Failure) -> DeployerError:
    found = _NAMESPACE.search(f.message)
    namespace = found.group(1) if found else "NAMESPACE"
    return AzureError(
        f"the subscription is not registered to use {namespace} (while {f.what})",
        hint=f"register it: `az provider register --namespace {namespace} --wait` "
        f"({INIT} registers every provider the deployment needs)",
        code=f.code,
    )


_QUOTA = re.compile(r"quota '([^']+)' exceeded in region '([^']+)'")


def _quota(f: Failure) -> DeployerError:
    found = _QUOTA.search(f.message)
    quota, region = found.groups() if found else ("StandardCores", "the region")
    return QuotaError(f"{f.message} (while {f.what})", hint=quota_hint(quota, region), code=f.code)


def _acr_tasks(f: Failure) -> DeployerError:
    return AzureError(
        f"the registry refuses ACR Tasks runs (free-trial subscriptions cannot use them), "
        f"while {f.what}",
        hint=f"build with the local Docker engine and push instead: `deployer build --local "
        f"{WORKLOAD}`",
        code=f.code,
    )


def _storage_role(f: Failure) -> DeployerError:
    storage = f.storage or StorageFailure(f.code, f.status, None, None, False, f.message)
    service = f" {storage.service}" if storage.service else ""
    return AzureError(
        f"storage account {storage.account or '?'} refused the{service} request: {f.message}",
        hint=data_role_hint(storage),
        code=f.code,
    )


def _forbidden(f: Failure) -> DeployerError:
    return AzureError(
        f"{f.message} (while {f.what})",
        hint="you need Contributor (or Owner) on the resource group: an owner of it can grant "
        "it (`az role assignment create --role Contributor --assignee <you> --scope <the "
        "group's id>`); `az role assignment list --assignee <you> --all -o table` lists yours",
        code=f.code,
    )


def _inaccessible_image(f: Failure) -> DeployerError:
    # ACI says the same for a missing image and for refused credentials; the deployer's own
    # check before `up` already found every image with the user's credentials, so what is
    # left is the group's: the admin password or the identity's pull role.
    return AzureError(
        f"{f.message} (while {f.what})",
        hint=f"the registry refused the group's pull: with registry_auth: admin compare "
        f"{Env.REGISTRY_USERNAME} and {Env.REGISTRY_PASSWORD} with `az acr credential show`; "
        "with a managed identity give it AcrPull on the registry; `deployer plan` shows each "
        "image and whether the registry holds it",
        code=f.code,
    )


RULES: dict[str, Rule] = {
    NOT_SIGNED_IN: _not_signed_in,
    "AuthenticationFailed": _sign_in_refused,
    "InvalidAuthenticationToken": _sign_in_refused,
    "ExpiredAuthenticationToken": _sign_in_refused,
    "InvalidAuthenticationTokenTenant": _tenant,
    "SubscriptionNotFound": _subscription,
    "InvalidSubscriptionId": _subscription,
    "ResourceGroupNotFound": _resource_group,
    "MissingSubscriptionRegistration": _provider,
    "ContainerGroupQuotaReached": _quota,
    "QuotaExceeded": _quota,
    "TasksOperationsNotAllowed": _acr_tasks,
    "AuthorizationPermissionMismatch": _storage_role,
    "AuthorizationFailed": _forbidden,
    "InaccessibleImage": _inaccessible_image,
}
"""Azure's error code -> the error the user sees, with the fix as its hint."""


def advise(f: Failure) -> DeployerError:
    """The user-facing error for a failure: one line, and a hint that names the fix (pure).

    Args:
        f (Failure): What Azure said.

    Returns:
        DeployerError: Its ``code`` is Azure's; its exit code says whose the fix is.
    """
    rule = RULES.get(f.code or "")
    if rule is None and _QUOTA.search(f.message):
        rule = _quota  # ACI has reported quota refusals under other codes (ServiceUnavailable)
    if rule is not None:
        return rule(f)
    code = f.code or (f"HTTP{f.status}" if f.status else None)
    return AzureError(f"Azure refused {f.what}: {f.message}", code=code)


def _first_line(exc: SdkError) -> str:
    error = getattr(exc, "error", None)
    text = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    return (str(text) or type(exc).__name__).splitlines()[0]


def _is_storage(exc: SdkError) -> bool:
    """A storage SDK's exception: storage error codes come as ``error_code``, ARM's as
    ``error.code``, and storage requests carry the storage SDK's user agent."""
    return storage_failure(exc).service in STORAGE_SERVICES


def from_exception(exc: SdkError, what: str = "calling Azure") -> DeployerError:
    """The user-facing error for an Azure SDK exception (reads the exception only).

    Args:
        exc (azure.core.exceptions.AzureError): From an ARM, ACR or storage client, or from
            the credential.
        what (str): What the deployer was doing. Default: ``calling Azure``.
    """
    if isinstance(exc, ClientAuthenticationError) and exc.response is None:
        # Raised by the credential itself: nothing was sent.
        return advise(Failure(NOT_SIGNED_IN, _first_line(exc), what))
    if _is_storage(exc):
        storage = storage_failure(exc)
        return advise(Failure(storage.code, storage.message, what, storage.status, storage))
    if isinstance(exc, HttpResponseError):
        code = exc.error.code if exc.error and exc.error.code else None
        return advise(Failure(code, _first_line(exc), what, exc.status_code))
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return AzureError(
            f"cannot reach Azure while {what}: {_first_line(exc)}",
            hint=f"check the network, or {Env.ARM_ENDPOINT}",
            code="ServiceUnreachable",
        )
    return AzureError(f"Azure failed while {what}: {_first_line(exc)}", code=type(exc).__name__)


def from_blast(exc: BlastClientError) -> DeployerError:
    """The user-facing error for an error of the BLAST client library (storage, bad input).

    Args:
        exc (BlastClientError): The library's error; a :class:`StorageError` carries what
            storage said.
    """
    failure = exc.failure if isinstance(exc, StorageError) else None
    if failure is not None and failure.code in RULES:
        return advise(
            Failure(failure.code, failure.message, "reaching storage", failure.status, failure)
        )
    if exc.exit_code == 2:
        return InputError(exc.message, hint=exc.hint, code=exc.code)
    return DeployerError(exc.message, hint=exc.hint, code=exc.code)


def user_error(
    exc: DeployerError | BlastClientError | SdkError, workload: str | None = None
) -> DeployerError:
    """Any error a command may end with, as the one user-facing type.

    Args:
        exc: A :class:`DeployerError`, an error of the BLAST client library, or an Azure SDK
            exception that reached the command line untranslated.
        workload: The command's workload file, which then stands in the hint where
            :data:`WORKLOAD` does (``deployer init examples/blast-run.yaml``).
    """
    if isinstance(exc, DeployerError):
        error = exc
    elif isinstance(exc, BlastClientError):
        error = from_blast(exc)
    else:
        error = from_exception(exc)
    if workload and error.hint and WORKLOAD in error.hint:
        error.hint = error.hint.replace(WORKLOAD, workload)
    return error


def missing_registry_admin(registry: str) -> MissingSettingError:
    """``registry_auth: admin`` without the admin user's credentials (pure).

    Args:
        registry (str): The registry's login server.
    """
    return MissingSettingError(
        f"registry_auth: admin pulls with the registry's admin user, but "
        f"{Env.REGISTRY_USERNAME} and {Env.REGISTRY_PASSWORD} are not both set",
        hint=registry_admin_hint(registry),
        code="MissingSetting",
    )
