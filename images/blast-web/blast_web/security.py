"""Authentication, signed sessions and CSRF tokens (no framework code; pure but for the clock).

The model is the notebook's: a generated token, or an argon2 password hash given by the user.
A visitor gets a signed session cookie at once (anonymous until login); a successful login
replaces it with a new authenticated one, so a session id planted before login is useless.
Every form carries a CSRF token derived from the session id with the server key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

SESSION_COOKIE = "blastweb_session"
SESSION_SECONDS = 12 * 3600


class AuthConfigError(ValueError):
    """The configured credentials cannot work; the message says what to set."""


def check_password_hash(value: str) -> str:
    """Return the argon2 hash in ``value``, accepting Jupyter's ``argon2:`` prefix.

    Args:
        value: ``$argon2id$...`` or ``argon2:$argon2id$...`` (``jupyter_server.auth.passwd()``).

    Raises:
        AuthConfigError: for anything that is not an argon2 hash.
    """
    raw = value.strip().removeprefix("argon2:")
    if not raw.startswith("$argon2"):
        raise AuthConfigError(
            "WEB_PASSWORD_HASH must be an argon2 hash, e.g. from "
            "python -c 'from argon2 import PasswordHasher; print(PasswordHasher().hash(\"pw\"))'"
        )
    return raw


@dataclass(frozen=True)
class Credentials:
    """What a login must present: the token, or the password matching the hash.

    Attributes:
        token: The access token, or None.
        password_hash: An argon2 hash (without Jupyter's prefix), or None.
    """

    token: str | None = None
    password_hash: str | None = None

    def check(self, secret: str) -> bool:
        """True when ``secret`` is the token or the password.

        Args:
            secret: What the user typed (or the ``?token=`` value).
        """
        if not secret:
            return False
        if self.token is not None and hmac.compare_digest(
            secret.encode("utf-8"), self.token.encode("utf-8")
        ):
            return True
        if self.password_hash is not None:
            try:
                return bool(PasswordHasher().verify(self.password_hash, secret))
            except (VerificationError, InvalidHashError):
                return False
        return False


@dataclass(frozen=True)
class Session:
    """A browser session.

    Attributes:
        sid: Random id; the CSRF token is derived from it.
        authenticated: True after a successful login.
        expires: Unix time after which the cookie is refused.
    """

    sid: str
    authenticated: bool
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and checks session cookies and CSRF tokens with one server key.

    Args:
        key: The secret key (random per process unless configured).
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, purpose: str, data: bytes) -> str:
        return _b64(hmac.new(self._key, purpose.encode() + b"\0" + data, hashlib.sha256).digest())

    def new_session(self, authenticated: bool, now: float | None = None) -> Session:
        """A fresh session with a new random id.

        Args:
            authenticated: Whether the user has logged in.
            now: The current Unix time (default: the clock).
        """
        now = time.time() if now is None else now
        return Session(secrets.token_urlsafe(18), authenticated, now + SESSION_SECONDS)

    def dump(self, session: Session) -> str:
        """The cookie value of ``session``.

        Args:
            session: The session.
        """
        payload = json.dumps(
            {"sid": session.sid, "auth": session.authenticated, "exp": int(session.expires)},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{self._mac('session', payload)}"

    def load(self, value: str | None, now: float | None = None) -> Session | None:
        """The session in a cookie value, or None if it is missing, forged or expired.

        Args:
            value: The cookie value.
            now: The current Unix time (default: the clock).
        """
        if not value or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        try:
            payload = _unb64(body)
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        try:
            doc = json.loads(payload)
            session = Session(str(doc["sid"]), bool(doc["auth"]), float(doc["exp"]))
        except (ValueError, KeyError, TypeError):
            return None
        now = time.time() if now is None else now
        return session if session.expires > now else None

    def csrf_token(self, session: Session) -> str:
        """The CSRF token that forms of this session carry.

        Args:
            session: The session.
        """
        return self._mac("csrf", session.sid.encode())

    def check_csrf(self, session: Session | None, token: str | None) -> bool:
        """True when ``token`` belongs to ``session``.

        Args:
            session: The request's session (None: no valid cookie).
            token: The submitted token.
        """
        if session is None or not token:
            return False
        return hmac.compare_digest(token, self.csrf_token(session))
