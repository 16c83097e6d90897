"""Signing in to Azure Resource Manager, shared by every ARM client (ACI, ACR).

The endpoint is the public cloud unless ``DEPLOYER_ARM_ENDPOINT`` points elsewhere
(the fake ARM server in tests, the local ACI emulator); plain http is accepted for
loopback hosts only. :func:`management_client` builds any azure-mgmt client with
the same credential, auth policy, polling and retry settings.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from azure.core.credentials import AccessToken, TokenCredential
from azure.core.pipeline import PipelineRequest
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

from deployer import defaults
from deployer.defaults import Env
from deployer.errors import CredentialError, InputError

C = TypeVar("C")


def is_loopback(host: str | None) -> bool:
    """Return True for 127.0.0.0/8, ::1 and localhost."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class LoopbackAuthPolicy(ARMChallengeAuthenticationPolicy):
    """ARM bearer auth that allows plain http only towards loopback hosts."""

    def on_request(self, request: PipelineRequest[Any]) -> None:
        if is_loopback(urlsplit(request.http_request.url).hostname):
            request.context["enforce_https"] = False
        super().on_request(request)


class StaticTokenCredential:
    """A credential that hands out one bearer token (``DEPLOYER_ACCESS_TOKEN``).

    Args:
        token (str): The token, e.g. from
            ``az account get-access-token --query accessToken -o tsv``.
    """

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticTokenCredential('********')"

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Return the token, presented as valid for the next 5 minutes."""
        return AccessToken(self._token, int(time.time()) + 300)


def default_credential() -> TokenCredential:
    """Return ``DEPLOYER_ACCESS_TOKEN`` as a credential if set, else ``DefaultAzureCredential``.

    ``DefaultAzureCredential`` tries an environment service principal, workload and
    managed identity, then ``az login``.
    """
    token = os.environ.get(Env.ACCESS_TOKEN)
    token_file = os.environ.get(f"{Env.ACCESS_TOKEN}_FILE")
    if not token and token_file:
        # In a group (the janitor towards the emulator) the token is a secret file.
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CredentialError(f"{Env.ACCESS_TOKEN}_FILE={token_file}: {exc.strerror}") from None
    if token:
        return StaticTokenCredential(token)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def token_claims(token: str) -> dict[str, Any]:
    """The claims of an Entra ID access token (a JWT), unverified; ``{}`` when it is not one.

    Args:
        token (str): The bearer token.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def signed_in_principal(credential: TokenCredential) -> tuple[str, str] | None:
    """Who is signed in: the ARM token's ``oid`` claim and whether it is a user.

    Args:
        credential (TokenCredential): The credential the deployer uses.

    Returns:
        tuple[str, str] | None: (object id, ``User`` or ``ServicePrincipal``); None when
        the token does not say (a token that is not a JWT).
    """
    token = credential.get_token(f"{defaults.PUBLIC_ARM_ENDPOINT}/.default").token
    claims = token_claims(token)
    oid = claims.get("oid")
    if not oid:
        return None
    # App-only tokens (a service principal, a managed identity) say idtyp "app".
    return str(oid), "ServicePrincipal" if claims.get("idtyp") == "app" else "User"


def arm_endpoint(endpoint: str | None = None) -> str:
    """Return the ARM endpoint to use, checked: https, or plain http on loopback only.

    Args:
        endpoint (str | None): The endpoint. Default: ``$DEPLOYER_ARM_ENDPOINT``,
            else ``https://management.azure.com``.

    Raises:
        InputError: For an endpoint that is not https (or http on loopback).
    """
    url = (endpoint or os.environ.get(Env.ARM_ENDPOINT) or defaults.PUBLIC_ARM_ENDPOINT).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"ARM endpoint {url!r} is not an http(s) URL", code="InvalidEndpoint")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InputError(
            f"ARM endpoint {url} uses plain http; only loopback hosts may",
            hint=f"use https, or unset {Env.ARM_ENDPOINT} for the public cloud",
            code="InvalidEndpoint",
        )
    return url


def management_client(
    client_class: Callable[..., C],
    subscription: str,
    *,
    endpoint: str | None = None,
    credential: TokenCredential | None = None,
    poll_interval: float | None = None,
) -> C:
    """Build an azure-mgmt client towards the checked ARM endpoint.

    Args:
        client_class (Callable[..., C]): E.g. ``ContainerInstanceManagementClient``.
        subscription (str): Subscription id (``az account list -o table``).
        endpoint (str | None): ARM endpoint. Default: ``$DEPLOYER_ARM_ENDPOINT``,
            else ``https://management.azure.com``. Plain http is accepted only for
            loopback hosts (127.0.0.0/8, ::1, localhost).
        credential (TokenCredential | None): Default: :func:`default_credential`.
        poll_interval (float | None): Seconds between LRO polls when ARM sends no
            Retry-After. Default: ``$DEPLOYER_POLL_INTERVAL``, else 5.

    Raises:
        InputError: For an endpoint that is not https (or http on loopback).
    """
    url = arm_endpoint(endpoint)
    credential = credential or default_credential()
    scope = f"{defaults.PUBLIC_ARM_ENDPOINT}/.default"
    interval = poll_interval or defaults.env_float(
        Env.POLL_INTERVAL, defaults.DEFAULT_POLL_INTERVAL_S
    )
    return client_class(
        credential,
        subscription,
        base_url=url,
        authentication_policy=LoopbackAuthPolicy(credential, scope),
        polling_interval=interval,
        # Throttling (429) and 5xx are retried with Retry-After; azure-core's default
        # of 3 status retries gives up too early under ARM throttling.
        retry_total=defaults.DEFAULT_DEPLOYMENT_RETRIES,
        retry_status=defaults.DEFAULT_DEPLOYMENT_RETRIES,
    )
