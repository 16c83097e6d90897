"""Building real Azure SDK clients that talk to the fake ARM server.

azure-core refuses to send a bearer token over plain http:
``BearerTokenCredentialPolicy`` (and ARM's ``ARMChallengeAuthenticationPolicy``)
call ``_enforce_https``, which raises ``ServiceRequestError("Bearer token
authentication is not permitted for non-TLS protected (non-https) URLs.")`` unless
the pipeline context holds ``enforce_https = False``. The documented switch is the
per-call keyword ``enforce_https=False``; :class:`LoopbackHttpPolicy` sets the same
context flag for every request, but only when the URL's host is a loopback address,
so a misconfigured ``base_url`` pointing at a real host still fails closed.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.mgmt.containerinstance import ContainerInstanceManagementClient

from .arm import FakeArmServer


def is_loopback_url(url: str) -> bool:
    """Whether a URL's host is ``localhost`` or a loopback IP address.

    :param url: absolute URL.
    :return: ``True`` for ``http://127.0.0.1:1234/...``, ``http://[::1]/...``,
        ``http://localhost/...``.
    """
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoopbackHttpPolicy(SansIOHTTPPolicy[Any, Any]):
    """Allow bearer tokens over plain http for loopback hosts only.

    Add it with ``per_call_policies=[LoopbackHttpPolicy()]``: per-call policies run
    before the authentication policy, which reads the flag this sets.
    """

    def on_request(self, request: PipelineRequest[Any]) -> None:
        """Turn https enforcement off for this request if it goes to loopback.

        :param request: the pipeline request.
        """
        if is_loopback_url(request.http_request.url):
            request.context["enforce_https"] = False


def aci_client(server: FakeArmServer, **kwargs: Any) -> ContainerInstanceManagementClient:
    """A real ``ContainerInstanceManagementClient`` pointed at the fake server.

    Defaults keep tests fast: ``polling_interval=0.01`` (ACI sends no Retry-After on
    operation status, so the client's interval applies) and ``retry_backoff_factor
    =0.01``. Any keyword overrides them.

    :param server: a running fake server.
    :param kwargs: extra client keywords, e.g. ``retry_total=0``.
    :return: the client (close it, or use it as a context manager).
    """
    options: dict[str, Any] = {
        "base_url": server.url,
        "per_call_policies": [LoopbackHttpPolicy()],
        "polling_interval": 0.01,
        "retry_backoff_factor": 0.01,
    }
    options.update(kwargs)
    return ContainerInstanceManagementClient(server.credential(), server.subscription_id, **options)
