"""A small client of the registry HTTP API (Docker Registry v2 / OCI distribution).

It answers the two questions ``deployer build`` asks a registry, whichever builds
the images: is a tag there (and with which digest), and give an existing manifest
one more tag. It speaks the standard token flow (a ``401`` with a ``Bearer``
challenge, then the realm's token endpoint with basic credentials) that the
distribution registry and ACR both implement. For ACR the credentials are the
null-GUID user and an ACR refresh token, obtained by exchanging an Entra ID token at
``/oauth2/exchange``, as ``az acr login`` does.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

import requests

from deployer.arm import is_loopback
from deployer.errors import DeployerError

ACR_USERNAME = "00000000-0000-0000-0000-000000000000"
"""The user name that goes with an ACR refresh token (``docker login``)."""
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
TIMEOUT_S = 60.0
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(DeployerError):
    """The registry refused a request or could not be reached."""


def base_url(server: str) -> str:
    """Return the registry's API root: https, or plain http for a loopback registry.

    Docker itself talks plain http to 127.0.0.0/8 registries without configuration,
    so the same rule applies here.
    """
    host = server.rsplit(":", 1)[0] if server.count(":") == 1 else server
    return f"{'http' if is_loopback(host) else 'https'}://{server.rstrip('/')}"


def acr_refresh_token(server: str, aad_token: str, *, tenant: str | None = None) -> str:
    """Exchange an Entra ID access token for an ACR refresh token.

    Args:
        server (str): Registry login server, e.g. ``myacr.azurecr.io``.
        aad_token (str): An Entra ID token for ``https://management.azure.com``
            (``az account get-access-token``).
        tenant (str | None): Tenant id, when the token's is not the registry's.

    Raises:
        RegistryError: When the registry refuses the token.
    """
    form = {"grant_type": "access_token", "service": server, "access_token": aad_token}
    if tenant:
        form["tenant"] = tenant
    try:
        reply = requests.post(f"{base_url(server)}/oauth2/exchange", data=form, timeout=TIMEOUT_S)
    except requests.RequestException as exc:
        raise RegistryError(
            f"cannot reach registry {server}: {exc}", hint="check the registry name"
        ) from None
    if reply.status_code != 200:
        raise RegistryError(
            f"registry {server} refused the Entra ID token ({reply.status_code})",
            hint="you need the AcrPush role on the registry (`az role assignment list --scope "
            "<registry id>`); `az login` again if the token expired",
            code="RegistryAuthenticationFailed",
        )
    token = reply.json().get("refresh_token")
    if not isinstance(token, str):
        raise RegistryError(f"registry {server} sent no refresh_token")
    return token


@dataclass
class RegistryClient:
    """Talks to one registry.

    Args:
        server (str): Login server, e.g. ``myacr.azurecr.io`` or ``127.0.0.1:5000``.
        username (str | None): Basic credentials for the token endpoint. Default: none.
        password (str | None): Their password, or an ACR refresh token.
    """

    server: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _session: requests.Session = field(default_factory=requests.Session, repr=False)

    def _auth(self) -> tuple[str, str] | None:
        return (self.username, self.password) if self.username and self.password else None

    def _token(self, challenge: str, scope: str) -> str:
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"registry {self.server} sent a challenge without a realm")
        query = {"service": params.get("service", self.server), "scope": scope}
        reply = self._session.get(realm, params=query, auth=self._auth(), timeout=TIMEOUT_S)
        if reply.status_code != 200:
            raise RegistryError(
                f"registry {self.server} refused a token for {scope} ({reply.status_code})",
                hint="check the registry credentials and your role on it (AcrPush)",
                code="RegistryAuthenticationFailed",
            )
        body = reply.json()
        token = body.get("access_token") or body.get("token")
        if not isinstance(token, str):
            raise RegistryError(f"registry {self.server} sent no token for {scope}")
        return token

    def _request(
        self,
        method: str,
        path: str,
        scope: str,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> requests.Response:
        url = f"{base_url(self.server)}{path}"
        for attempt in range(2):
            sent = dict(headers or {})
            with self._lock:
                token = self._tokens.get(scope)
            if token:
                sent["Authorization"] = f"Bearer {token}"
            try:
                reply = self._session.request(
                    method,
                    url,
                    headers=sent,
                    data=data,
                    auth=None if token else self._auth(),
                    timeout=TIMEOUT_S,
                )
            except requests.RequestException as exc:
                raise RegistryError(
                    f"cannot reach registry {self.server}: {exc}",
                    hint="check the registry name and that it is running",
                ) from None
            challenge = reply.headers.get("WWW-Authenticate", "")
            if reply.status_code == 401 and attempt == 0 and challenge.lower().startswith("bearer"):
                new = self._token(challenge, scope)
                with self._lock:
                    self._tokens[scope] = new
                continue
            return reply
        return reply

    def digest(self, repository: str, tag: str) -> str | None:
        """Return the manifest digest of ``repository:tag``, or None when it is absent.

        Raises:
            RegistryError: When the registry refuses the request.
        """
        reply = self._request(
            "HEAD",
            f"/v2/{repository}/manifests/{tag}",
            f"repository:{repository}:pull",
            {"Accept": ", ".join(MANIFEST_TYPES)},
        )
        if reply.status_code == 404:
            return None
        self._check(reply, f"read {repository}:{tag}")
        return reply.headers.get("Docker-Content-Digest")

    def retag(self, repository: str, source: str, tag: str) -> str:
        """Give the manifest at ``repository:source`` the tag ``tag`` too; return its digest.

        No layer moves: the same manifest bytes are stored under a second name.

        Raises:
            RegistryError: When the source is missing or the registry refuses.
        """
        scope = f"repository:{repository}:pull,push"
        got = self._request(
            "GET",
            f"/v2/{repository}/manifests/{source}",
            scope,
            {"Accept": ", ".join(MANIFEST_TYPES)},
        )
        self._check(got, f"read {repository}:{source}")
        media = got.headers.get("Content-Type", MANIFEST_TYPES[-1]).split(";")[0]
        put = self._request(
            "PUT",
            f"/v2/{repository}/manifests/{tag}",
            scope,
            {"Content-Type": media},
            got.content,
        )
        self._check(put, f"tag {repository}:{source} as {tag}")
        return put.headers.get("Docker-Content-Digest") or got.headers.get(
            "Docker-Content-Digest", ""
        )

    def _check(self, reply: requests.Response, what: str) -> None:
        if reply.status_code < 300:
            return
        hint = (
            "check the registry credentials and your role on it (AcrPull to read, AcrPush to push)"
            if reply.status_code in (401, 403)
            else None
        )
        # ACR refuses wrong credentials at its token endpoint (``_token``); a registry with
        # basic auth (the distribution registry) refuses them here.
        code = "RegistryAuthenticationFailed" if reply.status_code == 401 else None
        raise RegistryError(
            f"registry {self.server} could not {what}: HTTP {reply.status_code} "
            f"{reply.text[:200].strip()}".strip(),
            hint=hint,
            code=code,
        )


__all__ = ["ACR_USERNAME", "RegistryClient", "RegistryError", "acr_refresh_token"]
