"""Authentication of the fake ARM endpoint: the one token it accepts, a credential that
hands it out, and ARM's 401 answers.

The token is shaped like an Entra ID access token (a JWT, unsigned) so that clients can
read the signed-in user's object id from its ``oid`` claim, as they must on Azure to
assign roles to themselves.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from azure.core.credentials import AccessToken

from .messages import ArmRequest, ArmResponse, arm_error

FAKE_TENANT_ID = "00000000-0000-0000-0000-00000000d1e5"
"""The directory (tenant) of the fake user and of every identity the fake creates."""

FAKE_USER_OBJECT_ID = "00000000-0000-0000-0000-0000000a11ce"
"""The signed-in user's object id: the ``oid`` claim of :data:`FAKE_TOKEN`."""


def _segment(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def fake_jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT with these claims (the fake checks the whole string, not a signature).

    :param claims: the payload, e.g. ``{"oid": ...}``.
    :return: ``header.payload.signature``.
    """
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}.fake-signature"


FAKE_TOKEN = fake_jwt(
    {
        "aud": "https://management.azure.com",
        "iss": f"https://sts.windows.net/{FAKE_TENANT_ID}/",
        "name": "Fake Researcher",
        "oid": FAKE_USER_OBJECT_ID,
        "tid": FAKE_TENANT_ID,
        "upn": "researcher@example.org",
    }
)
"""The only bearer token the server accepts: a JWT whose ``oid`` is :data:`FAKE_USER_OBJECT_ID`."""

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


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT-shaped token, unverified (``{}`` when it is not one).

    :param token: a bearer token.
    :return: its payload.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


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
    request.caller = str(token_claims(given).get("oid", ""))
    return None


def _unauthorized(code: str, message: str) -> ArmResponse:
    response = arm_error(401, code, message)
    # Same challenge shape as ARM; it carries no claims, so the SDK does not retry.
    response.headers["WWW-Authenticate"] = (
        'Bearer authorization_uri="https://login.microsoftonline.com/common", '
        'error="invalid_token", error_description="' + message.replace('"', "'") + '"'
    )
    return response
