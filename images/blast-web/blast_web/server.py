"""``blast-web``: read the settings, prepare TLS, and serve the page with uvicorn.

Writes only below ``$TMPDIR`` (the TLS files), so the container's root filesystem may be
read-only. See :mod:`blast_web.settings` for the environment it reads.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import uvicorn
from blast_client import BlastClient, BlastClientError

from blast_web.app import create_app
from blast_web.service import Service
from blast_web.settings import Settings, SettingsError, load_settings, secret

log = logging.getLogger("blast_web")


def tls_files(settings: Settings, directory: Path) -> tuple[str, str] | None:
    """Write the certificate and key for uvicorn (mode 0600); None when TLS is off.

    Args:
        settings: The settings (``tls``, ``tls_cert``, ``tls_key``).
        directory: A private directory to write them in.

    Raises:
        SettingsError: if openssl cannot make the self-signed certificate.
    """
    if settings.tls == "off":
        return None
    cert, key = directory / "tls.crt", directory / "tls.key"
    if settings.tls == "self-signed":
        argv = [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365",
            "-subj", f"/CN={os.uname().nodename}", "-keyout", str(key), "-out", str(cert),
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SettingsError(f"openssl could not make a certificate: {done.stderr.strip()}")
    else:
        cert.write_text((settings.tls_cert or "").strip() + "\n", encoding="utf-8")
        key.touch(mode=0o600)
        key.write_text((settings.tls_key or "").strip() + "\n", encoding="utf-8")
    key.chmod(0o600)
    return str(cert), str(key)


class RedactToken(logging.Filter):
    """Hide ``token=`` values in uvicorn's access log (the login URL `make up` prints), and
    leave out the health probes' requests, one every few seconds."""

    _TOKEN = re.compile(r"(?i)([?&]token=)[^&\s]*")

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the request path argument in place; False drops a health probe's line.

        Args:
            record: An access log record (args: client, method, path, version, status).
        """
        if isinstance(record.args, tuple):
            if len(record.args) > 2 and record.args[2] == "/healthz":
                return False
            record.args = tuple(
                self._TOKEN.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        return True


def storage_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for the client library, with the connection string read from
    ``AZURE_STORAGE_CONNECTION_STRING_FILE`` when that is how it was given.

    Args:
        env: The process environment.

    Raises:
        SettingsError: if the file cannot be read.
    """
    out = dict(env)
    value = secret(env, "AZURE_STORAGE_CONNECTION_STRING")
    if value is not None:
        out["AZURE_STORAGE_CONNECTION_STRING"] = value
    out.pop("AZURE_STORAGE_CONNECTION_STRING_FILE", None)
    return out


def main() -> None:
    """Start the server; a bad setting is one line on stderr and exit code 2."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # The storage SDK logs every request and its headers at INFO.
    logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        tls_dir = Path(tempfile.mkdtemp(prefix="blast-web-tls-"))
        tls = tls_files(settings, tls_dir)
        client = BlastClient.from_env(queue=settings.queue, env=storage_env(os.environ))
    except (SettingsError, BlastClientError) as exc:
        print(f"blast-web: {exc}", file=sys.stderr)
        sys.exit(2)
    for name in list(os.environ):
        if name.startswith(("WEB_TOKEN", "WEB_PASSWORD_HASH", "WEB_SECRET_KEY", "WEB_TLS_")):
            del os.environ[name]  # the server keeps them in memory only
    if settings.generated_token:
        log.info(
            "no WEB_TOKEN or WEB_PASSWORD_HASH given; generated token: %s",
            settings.credentials.token,
        )
    logging.getLogger("uvicorn.access").addFilter(RedactToken())
    scheme = "https" if tls else "http"
    log.info("serving the BLAST page on %s://0.0.0.0:%d", scheme, settings.port)
    uvicorn.run(
        create_app(Service(client), settings),
        host="0.0.0.0",  # published on loopback by compose, behind ACI's IP on Azure
        port=settings.port,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
        server_header=False,
        proxy_headers=False,
        access_log=True,
        log_level="info",
    )


if __name__ == "__main__":
    main()
