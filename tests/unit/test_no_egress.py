"""No test sends a request beyond loopback: ``DefaultAzureCredential``'s managed-identity probe
(169.254.169.254 by default) goes to a refused loopback port, in the test process and in its
subprocesses (``AZURE_POD_IDENTITY_AUTHORITY_HOST``, set by the top conftest).

The probe is observed, not assumed: an audit hook records every ``socket.connect`` while a
credential with nothing else to try asks for a token, and the test fails if any address is not
loopback, or if no probe was seen at all (then it would prove nothing)."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import DefaultAzureCredential

VARIABLE = "AZURE_POD_IDENTITY_AUTHORITY_HOST"
# Credentials that would find something on a developer's machine; without them only the
# managed-identity probe is left (and the environment credential, which needs variables).
ISOLATED = {
    "exclude_cli_credential": True,
    "exclude_developer_cli_credential": True,
    "exclude_powershell_credential": True,
    "exclude_shared_token_cache_credential": True,
    "exclude_visual_studio_code_credential": True,
    "exclude_interactive_browser_credential": True,
    # The probe's own retries (about 5 s of backoff) add nothing here.
    "retry_total": 0,
}
_CONNECTS: list[Any] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect" and _CONNECTS is not None:
        _CONNECTS.append(args[1])


sys.addaudithook(_audit)  # cannot be removed; records only inside `connects()`


@contextmanager
def connects() -> Iterator[list[Any]]:
    """Record the addresses of every socket connect made meanwhile (this process)."""
    global _CONNECTS
    _CONNECTS = []
    try:
        yield _CONNECTS
    finally:
        _CONNECTS = None


def _is_loopback(address: Any) -> bool:
    host = address[0] if isinstance(address, tuple) else str(address)
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _no_azure_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(
            ("AZURE_CLIENT", "AZURE_TENANT", "AZURE_FEDERATED", "IDENTITY_", "MSI_")
        ):
            monkeypatch.delenv(name, raising=False)


def test_the_probe_target_is_a_refused_loopback_port() -> None:
    url = os.environ.get(VARIABLE)
    assert url, f"{VARIABLE} is not set for the test session (tests/conftest.py sets it)"
    parts = urlsplit(url)
    assert _is_loopback(parts.hostname)
    import socket

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((parts.hostname, parts.port), timeout=2).close()


def test_default_credential_probes_stay_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_azure_settings(monkeypatch)
    with connects() as seen, pytest.raises(ClientAuthenticationError):
        DefaultAzureCredential(**ISOLATED).get_token("https://management.azure.com/.default")
    assert seen, "the managed-identity probe made no connection: this test would prove nothing"
    beyond = [a for a in seen if not _is_loopback(a)]
    assert not beyond, f"a credential probe left loopback: {beyond}"


PROBE = """
import json, sys
seen = []
sys.addaudithook(lambda e, a: seen.append(str(a[1][0])) if e == "socket.connect" else None)
from azure.identity import DefaultAzureCredential
try:
    DefaultAzureCredential(**json.loads(sys.argv[1])).get_token(
        "https://management.azure.com/.default"
    )
except Exception:
    pass
print(json.dumps(seen))
"""


def test_subprocesses_inherit_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_azure_settings(monkeypatch)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(ISOLATED)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen, "the subprocess's probe made no connection"
    assert all(_is_loopback((host,)) for host in seen), seen
