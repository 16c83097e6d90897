"""The page's settings, from the environment; every secret may also come from a ``*_FILE``.

Environment:
    WEB_TOKEN / WEB_TOKEN_FILE                  access token (secret)
    WEB_PASSWORD_HASH / WEB_PASSWORD_HASH_FILE  argon2 hash (secret); with neither set,
                                                a random token is generated and logged once
    WEB_SECRET_KEY / WEB_SECRET_KEY_FILE        key signing cookies (default: random per start,
                                                which logs everyone out on restart)
    WEB_TLS                                     off (default) | self-signed | provided
    WEB_TLS_CERT(_FILE), WEB_TLS_KEY(_FILE)     PEM certificate and key when provided
    WEB_PORT                                    listening port (default 8080)
    WEB_MAX_QUERY_BYTES                         largest query, pasted or uploaded (default 10 MiB)
    WEB_MAX_RECORDS                             most FASTA records per search (default 1000)
    BLAST_QUEUE                                 the job queue (default blast-jobs)
    AZURE_STORAGE_CONNECTION_STRING(_FILE)      storage (read by the BLAST client library)
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from blast_client import ConfigError
from blast_client.config import env_int

from blast_web.security import AuthConfigError, Credentials, check_password_hash

DEFAULT_PORT = 8080
DEFAULT_MAX_QUERY_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_RECORDS = 1000
TLS_MODES = ("off", "self-signed", "provided")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says what to set."""


def secret(env: Mapping[str, str], name: str) -> str | None:
    """``$NAME_FILE``'s contents (trailing newline dropped) if set, else ``$NAME``, else None.

    Args:
        env: The environment.
        name: The variable name without ``_FILE``.

    Raises:
        SettingsError: if the ``_FILE`` cannot be read.
    """
    path = env.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SettingsError(f"{name}_FILE={path} cannot be read: {exc.strerror}") from None
    value = env.get(name)
    return value if value else None


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    try:
        return env_int(env, name, default, lo, hi)
    except ConfigError as exc:
        raise SettingsError(exc.message) from None


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment.

    Attributes:
        credentials: Token and/or password hash.
        generated_token: True when no credential was given and the token was made up here.
        secret_key: Key signing cookies and CSRF tokens.
        tls: ``off``, ``self-signed`` or ``provided``.
        tls_cert: PEM certificate text when provided.
        tls_key: PEM key text when provided.
        port: Listening port.
        max_query_bytes: Largest query accepted.
        max_records: Most FASTA records per search.
        queue: The job queue name.
    """

    credentials: Credentials
    generated_token: bool = False
    secret_key: bytes = b""
    tls: str = "off"
    tls_cert: str | None = None
    tls_key: str | None = None
    port: int = DEFAULT_PORT
    max_query_bytes: int = DEFAULT_MAX_QUERY_BYTES
    max_records: int = DEFAULT_MAX_RECORDS
    queue: str = "blast-jobs"

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry ``Secure`` when the page is served over TLS."""
        return self.tls != "off"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read :class:`Settings` from the environment.

    Args:
        env: The environment (default ``os.environ``).

    Raises:
        SettingsError: on a malformed or incomplete setting.
    """
    env = os.environ if env is None else env
    token = secret(env, "WEB_TOKEN")
    raw_hash = secret(env, "WEB_PASSWORD_HASH")
    try:
        password_hash = check_password_hash(raw_hash) if raw_hash else None
    except AuthConfigError as exc:
        raise SettingsError(str(exc)) from None
    generated = token is None and password_hash is None
    if generated:
        token = secrets.token_hex(24)
    key_text = secret(env, "WEB_SECRET_KEY")
    key = key_text.encode() if key_text else secrets.token_bytes(32)
    tls = env.get("WEB_TLS") or "off"
    if tls not in TLS_MODES:
        raise SettingsError(f"WEB_TLS must be off, self-signed or provided (got {tls!r})")
    cert, pem_key = secret(env, "WEB_TLS_CERT"), secret(env, "WEB_TLS_KEY")
    if tls == "provided" and not (cert and pem_key):
        raise SettingsError("WEB_TLS=provided needs WEB_TLS_CERT and WEB_TLS_KEY (PEM)")
    return Settings(
        credentials=Credentials(token, password_hash),
        generated_token=generated,
        secret_key=key,
        tls=tls,
        tls_cert=cert,
        tls_key=pem_key,
        port=_int(env, "WEB_PORT", DEFAULT_PORT, 1, 65535),
        max_query_bytes=_int(
            env, "WEB_MAX_QUERY_BYTES", DEFAULT_MAX_QUERY_BYTES, 1024, 256 * 1024 * 1024
        ),
        max_records=_int(env, "WEB_MAX_RECORDS", DEFAULT_MAX_RECORDS, 1, 100_000),
        queue=env.get("BLAST_QUEUE") or "blast-jobs",
    )
