"""Authentication of the fake ARM endpoint: the one token it accepts, a credential that
hands it out, and ARM's 401 answers."""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken

from .messages import ArmRequest, ArmResponse, arm_error

FAKE_TOKEN = "fake-arm-token"
"""The only bearer token the server accepts."""

FAKE_SUBSCRIPTION_ID = "00000000-0000-0000-0000-00000000fa4e"
"""Subscription id used by fixtures; the server accepts any subscription id."""


class FakeCredential:
    """An ``azure.core.credentials.TokenCredential`` that returns a fixed token.

    :param token: the bearer token to hand out; the server only accepts
        :data:`FAKE_TOKEN`, so pass something else to test 401 handling.
    """

    def __init__(self, token: str = FAKE_TOKEN) -> None:
        self.token = token
        self.requests = 0

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """Return the fixed token, valid for an hour.

        :param scopes: requested scopes (ignored; ARM clients ask for
            ``https://management.azure.com/.default``).
        :param claims: ignored.
        :param tenant_id: ignored.
        :param enable_cae: ignored.
        :param kwargs: ignored.
        :return: the access token.
        """
        self.requests += 1
        return AccessToken(self.token, int(time.time()) + 3600)


def authenticate(request: ArmRequest, token: str) -> ArmResponse | None:
    """Check the request's bearer token.

    :param request: the request.
    :param token: the token the server accepts.
    :return: ``None`` when it may pass, else ARM's 401 answer.
    """
    auth = request.header("Authorization")
    if not auth:
        return _unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        )
    scheme, _, given = auth.partition(" ")
    if scheme.lower() != "bearer" or given != token:
        return _unauthorized("InvalidAuthenticationToken", "The access token is invalid.")
    return None


def _unauthorized(code: str, message: str) -> ArmResponse:
    response = arm_error(401, code, message)
    # Same challenge shape as ARM; it carries no claims, so the SDK does not retry.
    response.headers["WWW-Authenticate"] = (
        'Bearer authorization_uri="https://login.microsoftonline.com/common", '
        'error="invalid_token", error_description="' + message.replace('"', "'") + '"'
    )
    return response
