"""Credentials, signed sessions, CSRF tokens and the settings chain (``*_FILE`` secrets)."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from blast_web.security import AuthConfigError, Credentials, Signer, check_password_hash
from blast_web.server import RedactToken, storage_env
from blast_web.settings import SettingsError, load_settings


def test_token_and_password_checks() -> None:
    hashed = PasswordHasher().hash("pw")
    both = Credentials(token="tok", password_hash=hashed)
    assert both.check("tok") and both.check("pw")
    assert not both.check("") and not both.check("to") and not both.check("PW")
    assert not Credentials(token=None, password_hash=None).check("anything")


def test_only_argon2_hashes_are_accepted() -> None:
    hashed = PasswordHasher().hash("pw")
    assert check_password_hash("argon2:" + hashed) == hashed
    with pytest.raises(AuthConfigError, match="argon2"):
        check_password_hash("sha1:abc:def")


def test_sessions_round_trip_and_forgeries_or_old_ones_fail() -> None:
    signer = Signer(b"k" * 32)
    session = signer.new_session(authenticated=True, now=1000.0)
    value = signer.dump(session)
    assert signer.load(value, now=1001.0) == session
    assert signer.load(value, now=session.expires + 1) is None
    assert Signer(b"other key").load(value, now=1001.0) is None
    _, mac = value.split(".")
    forged = base64.urlsafe_b64encode(b'{"sid":"x","auth":true,"exp":99999}').decode().rstrip("=")
    assert signer.load(f"{forged}.{mac}", now=1001.0) is None
    for junk in (None, "", "a.b.c", "!!!.???"):
        assert signer.load(junk) is None


def test_csrf_tokens_belong_to_one_session() -> None:
    signer = Signer(b"k" * 32)
    one, two = signer.new_session(False), signer.new_session(False)
    assert signer.check_csrf(one, signer.csrf_token(one))
    assert not signer.check_csrf(two, signer.csrf_token(one))
    assert not signer.check_csrf(None, signer.csrf_token(one))
    assert not signer.check_csrf(one, None)


def test_secrets_come_from_files_first(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    settings = load_settings({"WEB_TOKEN_FILE": str(tmp_path / "token"), "WEB_TOKEN": "env"})
    assert settings.credentials.token == "from-file" and not settings.generated_token
    with pytest.raises(SettingsError, match=r"WEB_TOKEN_FILE=.* cannot be read"):
        load_settings({"WEB_TOKEN_FILE": str(tmp_path / "missing")})


def test_a_token_is_generated_when_none_is_given() -> None:
    settings = load_settings({})
    assert settings.generated_token and len(settings.credentials.token or "") == 48
    assert settings.port == 8080 and settings.tls == "off" and not settings.secure_cookies


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WEB_TLS": "maybe"}, "WEB_TLS must be"),
        ({"WEB_TLS": "provided", "WEB_TLS_CERT": "x"}, "needs WEB_TLS_CERT and WEB_TLS_KEY"),
        ({"WEB_PORT": "http"}, "WEB_PORT='http' is not a whole number"),
        ({"WEB_MAX_RECORDS": "0"}, "WEB_MAX_RECORDS=0 is out of range"),
        ({"WEB_PASSWORD_HASH": "plain"}, "argon2"),
    ],
)
def test_bad_settings_say_what_to_set(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_the_access_log_never_shows_the_token() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/searches?token=s3cret&q=1", "1.1", 303), None,
    )  # fmt: skip
    assert RedactToken().filter(record)
    assert "s3cret" not in record.getMessage()
    assert "/searches?token=[redacted]&q=1" in record.getMessage()
    probe = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/healthz", "1.1", 200), None,
    )  # fmt: skip
    assert not RedactToken().filter(probe)


def test_the_storage_connection_string_may_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "cs").write_text("AccountName=a;AccountKey=k\n")
    env = storage_env({"AZURE_STORAGE_CONNECTION_STRING_FILE": str(tmp_path / "cs"), "X": "1"})
    assert env == {"AZURE_STORAGE_CONNECTION_STRING": "AccountName=a;AccountKey=k", "X": "1"}
    assert storage_env({"AZURE_STORAGE_ACCOUNT": "acct"}) == {"AZURE_STORAGE_ACCOUNT": "acct"}
