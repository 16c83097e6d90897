"""Secrets of a deployment: generated once, kept in a 0600 state file, never printed.

The deployer generates the ipyparallel HMAC key, the SSH key pairs and the
notebook token itself, so it can build the engines' connection file. ARM never
returns secure values, so they persist locally in
``<state dir>/<deployment>.secrets.json`` (see :func:`deployer.defaults.state_dir`);
a second ``up`` reuses them and sends no change.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets as _random
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deployer import defaults
from deployer.errors import InputError


class Secret:
    """A secret string whose ``repr`` and ``str`` never show the value.

    Args:
        value (str): The secret value; read it with :meth:`reveal`.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def digest(values: Iterable[tuple[str, str]]) -> str:
    """Return a short sha256 over (name, secret value) pairs, for the change tag.

    The hash lets ``up`` see that a secret changed without storing it in clear;
    the values are long random keys, so the hash reveals nothing useful.
    """
    h = hashlib.sha256()
    for name, value in sorted(values):
        h.update(name.encode() + b"\0" + value.encode() + b"\0")
    return h.hexdigest()[:32]


@dataclass(frozen=True)
class SshKeyPair:
    """An ed25519 key pair: OpenSSH private PEM and ``ssh-ed25519 AAAA...`` public line."""

    private: str
    public: str

    @classmethod
    def generate(cls, comment: str) -> SshKeyPair:
        """Generate a fresh pair; ``comment`` ends the public line."""
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ).decode()
        public = (
            key.public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            .decode()
        )
        return cls(private=private, public=f"{public} {comment}")


@dataclass(frozen=True)
class DeploymentSecrets:
    """Everything secret the deployer generates for one deployment."""

    ipp_key: str
    engine_key: SshKeyPair
    host_key: SshKeyPair
    notebook_token: str

    @classmethod
    def generate(cls, deployment: str) -> DeploymentSecrets:
        """Generate fresh secrets for ``deployment``."""
        return cls(
            ipp_key=_random.token_hex(32),
            engine_key=SshKeyPair.generate(f"ipengine@{deployment}"),
            host_key=SshKeyPair.generate(f"ipcontroller@{deployment}"),
            notebook_token=_random.token_urlsafe(32),
        )


def path_for(deployment: str) -> Path:
    """Return the state file of ``deployment``."""
    return defaults.state_dir() / f"{deployment}.secrets.json"


def load_or_generate(deployment: str, *, persist: bool) -> DeploymentSecrets:
    """Load the deployment's secrets, or generate them.

    Args:
        deployment (str): The deployment name.
        persist (bool): Write freshly generated secrets to the state file (``up``
            does; ``plan`` does not, so planning changes nothing on disk).

    Raises:
        InputError: When the state file exists but cannot be read.
    """
    path = path_for(deployment)
    if path.exists():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return DeploymentSecrets(
                ipp_key=raw["ipp_key"],
                engine_key=SshKeyPair(**raw["engine_key"]),
                host_key=SshKeyPair(**raw["host_key"]),
                notebook_token=raw["notebook_token"],
            )
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(
                f"cannot read the deployment's secrets from {path}",
                hint="restore the file, or delete it to generate new keys (the next `up` then "
                "updates every group)",
            ) from None
    fresh = DeploymentSecrets.generate(deployment)
    if persist:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(fresh), fh)
    return fresh


def forget(deployment: str) -> None:
    """Delete the deployment's state file, if any (after ``down``)."""
    path_for(deployment).unlink(missing_ok=True)
