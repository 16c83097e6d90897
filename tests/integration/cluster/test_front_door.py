"""The notebook's authentication and TLS settings, and the controller's key from a file, on
single containers of the images (no stack needed)."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from docker.models.containers import Container

from deployer.deployment_secrets import SshKeyPair
from testbed.cluster import SECURITY, python_in
from testbed.engine import ImageRunner, exec_text

# Inside the notebook container: status codes of the API with and without credentials, and
# the certificate the server presents. A password login goes through the login form, with
# its XSRF cookie, as a browser's would.
PROBE = r"""
import hashlib, http.cookiejar, json, ssl, urllib.parse, urllib.request
scheme, token, password = {scheme!r}, {token!r}, {password!r}
base = f"{{scheme}}://127.0.0.1:8888"
context = ssl._create_unverified_context()
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context),
                                     urllib.request.HTTPCookieProcessor(jar))
def status(path, data=None):
    try:
        return opener.open(base + path, data=data, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code
result = {{"anonymous": status("/api/kernels")}}
if token:
    result["wrong token"] = status(f"/api/kernels?token=x{{token}}")
    result["token"] = status(f"/api/kernels?token={{token}}")
    jar.clear()  # a good token leaves a login cookie behind
if password:
    def login(secret):
        jar.clear()
        status("/login")
        xsrf = next(c.value for c in jar if c.name == "_xsrf")
        form = urllib.parse.urlencode({{"password": secret, "_xsrf": xsrf}}).encode()
        status("/login?next=%2Fapi%2Fkernels", data=form)
        return status("/api/kernels")
    result["wrong password"] = login("x" + password)
    result["password"] = login(password)
if scheme == "https":
    der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", 8888)))
    result["certificate"] = hashlib.sha256(der).hexdigest()
print(json.dumps(result))
"""


def probe(container: Container, scheme: str, token: str = "", password: str = "") -> dict[str, Any]:
    """Wait for the notebook server in ``container``, then probe it (see ``PROBE``).

    Args:
        container (Container): A running notebook container.
        scheme (str): ``http`` or ``https``.
        token (str): A token to try, if any.
        password (str): A password to log in with, if any.
    """
    deadline = time.monotonic() + 60
    while exec_text(container, ["/usr/local/bin/healthcheck"])[0] != 0:
        container.reload()
        assert container.status == "running", container.logs().decode(errors="replace")
        assert time.monotonic() < deadline, "the notebook server did not start"
        time.sleep(1)
    code = PROBE.format(scheme=scheme, token=token, password=password)
    result: dict[str, Any] = python_in(container, code, timeout=60)
    return result


def self_signed() -> tuple[str, str, str]:
    """A throwaway certificate and key; returns (cert PEM, key PEM, SHA-256 of its DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aci-research test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert_pem, key_pem, cert.fingerprint(hashes.SHA256()).hex()


def test_notebook_with_a_token_over_self_signed_tls(run_image: ImageRunner) -> None:
    container = run_image.start(
        "notebook", environment={"NOTEBOOK_TOKEN": "t0ken-for-tls", "NOTEBOOK_TLS": "self-signed"}
    )
    result = probe(container, "https", token="t0ken-for-tls")
    assert (result["anonymous"], result["wrong token"], result["token"]) == (403, 403, 200)
    assert len(result["certificate"]) == 64
    assert "generated token" not in container.logs().decode()


def test_notebook_serves_a_provided_certificate(run_image: ImageRunner) -> None:
    cert, key, fingerprint = self_signed()
    container = run_image.start(
        "notebook",
        environment={
            "NOTEBOOK_TOKEN": "t0ken-for-tls",
            "NOTEBOOK_TLS": "provided",
            "NOTEBOOK_TLS_CERT": cert,
            "NOTEBOOK_TLS_KEY": key,
        },
    )
    result = probe(container, "https", token="t0ken-for-tls")
    assert result["certificate"] == fingerprint
    assert (result["anonymous"], result["token"]) == (403, 200)
    # The server (and the kernels it starts) does not inherit the key in its environment.
    leaked = python_in(
        container,
        "import json, os\n"
        "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "cmd = {p: open(f'/proc/{p}/cmdline', 'rb').read() for p in pids}\n"
        "server = [p for p in pids if b'/jupyter-lab\\0' in cmd[p]]\n"
        "print(json.dumps([b'BEGIN PRIVATE KEY' in open(f'/proc/{p}/environ', 'rb').read()"
        " for p in server]))",
        timeout=30,
    )
    assert leaked == [False]


def test_notebook_reads_its_token_and_tls_key_from_secret_files(
    run_image: ImageRunner, tmp_path: Path
) -> None:
    # The ACI secret volume (and compose secrets) form: NAME_FILE names a 0600 file.
    cert, key, fingerprint = self_signed()
    mounts = {}
    for name, value in (
        ("notebook_token", "t0ken-from-file"),
        ("tls_cert", cert),
        ("tls_key", key),
    ):
        path = tmp_path / name
        path.write_text(value + "\n")
        path.chmod(0o600)
        os.chown(path, 1000, 1000)
        mounts[str(path)] = {"bind": f"/run/secrets/{name}", "mode": "ro"}
    container = run_image.start(
        "notebook",
        environment={
            "NOTEBOOK_TOKEN_FILE": "/run/secrets/notebook_token",
            "NOTEBOOK_TLS": "provided",
            "NOTEBOOK_TLS_CERT_FILE": "/run/secrets/tls_cert",
            "NOTEBOOK_TLS_KEY_FILE": "/run/secrets/tls_key",
        },
        volumes=mounts,
    )
    result = probe(container, "https", token="t0ken-from-file")
    assert result["certificate"] == fingerprint
    assert (result["anonymous"], result["wrong token"], result["token"]) == (403, 403, 200)
    assert "t0ken-from-file" not in container.logs().decode()


def test_notebook_with_an_argon2_password(run_image: ImageRunner) -> None:
    code, hashed = run_image.run(
        "notebook",
        command=[
            "python",
            "-c",
            "from jupyter_server.auth import passwd; print(passwd('correct horse'))",
        ],
        entrypoint=[],
    )
    hashed = hashed.strip().splitlines()[-1]
    assert code == 0 and hashed.startswith("argon2:"), hashed
    container = run_image.start("notebook", environment={"NOTEBOOK_PASSWORD_HASH": hashed})
    result = probe(container, "http", password="correct horse")
    assert (result["anonymous"], result["wrong password"], result["password"]) == (403, 403, 200)
    assert "generated token" not in container.logs().decode()


def test_notebook_refuses_a_password_that_is_not_argon2(run_image: ImageRunner) -> None:
    code, logs = run_image.run(
        "notebook", environment={"NOTEBOOK_PASSWORD_HASH": "sha1:abc:def"}, timeout=60
    )
    assert code == 2
    assert "argon2" in logs and "Traceback" not in logs


@pytest.mark.timeout(120)
def test_controller_reads_its_key_from_a_file(run_image: ImageRunner, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "hmac").write_text("key-from-a-file-0123456789abcdef")
    host, engine = SshKeyPair.generate("host"), SshKeyPair.generate("engine")
    (secrets / "hmac").chmod(0o644)
    container = run_image.start(
        "ipcontroller",
        environment={
            "IPP_KEY_FILE": "/run/secrets/hmac",
            "IPP_SSH_HOST_KEY": host.private,
            "IPP_SSH_AUTHORIZED_KEYS": engine.public,
        },
        volumes={str(secrets): {"bind": "/run/secrets", "mode": "ro"}},
    )
    deadline = time.monotonic() + 90
    while exec_text(container, ["/usr/local/bin/healthcheck"])[0] != 0:
        container.reload()
        assert container.status == "running", container.logs().decode(errors="replace")
        assert time.monotonic() < deadline, "the controller did not become healthy"
        time.sleep(2)
    for name in ("ipcontroller-engine.json", "ipcontroller-client.json"):
        code, text = exec_text(container, ["cat", f"{SECURITY}/{name}"])
        assert code == 0, text
        info = json.loads(text)
        assert info["key"] == "key-from-a-file-0123456789abcdef"
    assert "key-from-a-file" not in container.logs().decode()
