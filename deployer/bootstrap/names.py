"""The names ``deployer init`` gives what it creates (pure).

A name the workload file sets is the user's choice and is used as it is. Otherwise the
resource group is the deployment's name, the identity too, and the storage account and the
registry, whose names are global across Azure, get the deployment's name plus a short hash of
the subscription, resource group and deployment: stable across runs (so a second ``init``
finds what the first made), and unlikely to collide between two users of the same example.
When such a name is taken anyway, :func:`candidates` gives the next ones to try, in a fixed
order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

GlobalKind = Literal["storage account", "registry"]
"""The resources whose names are global across Azure."""

# Azure's rules: storage accounts 3-24 lower-case letters and digits; registries 5-50
# letters and digits (case-insensitive; we write lower case).
_LIMITS: dict[GlobalKind, tuple[int, int]] = {"storage account": (3, 24), "registry": (5, 50)}
_SUFFIX = 6
_ACR_SUFFIXES = (".azurecr.io", ".azurecr.cn", ".azurecr.us")


def is_valid(kind: GlobalKind, name: str) -> bool:
    """Whether a storage account or registry name follows Azure's rules.

    Args:
        kind (GlobalKind): ``storage account`` or ``registry``.
        name (str): The name.
    """
    low, high = _LIMITS[kind]
    pattern = r"[a-z0-9]+" if kind == "storage account" else r"[a-zA-Z0-9]+"
    return low <= len(name) <= high and re.fullmatch(pattern, name) is not None


def rule(kind: GlobalKind) -> str:
    """Azure's naming rule for a storage account or a registry, for messages."""
    low, high = _LIMITS[kind]
    letters = "lower-case letters" if kind == "storage account" else "letters"
    return f"{low}-{high} {letters} and digits"


def _hash(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:_SUFFIX]


def candidates(
    kind: GlobalKind, deployment: str, subscription: str, resource_group: str
) -> Iterator[str]:
    """Names to try for a storage account or registry, the default first, in a fixed order.

    Args:
        kind (GlobalKind): ``storage account`` or ``registry``.
        deployment (str): The deployment's name.
        subscription (str): The subscription id.
        resource_group (str): The resource group.

    Yields:
        str: ``<deployment letters and digits><6 hex>``, then the same with other hashes.
    """
    _, high = _LIMITS[kind]
    stem = re.sub(r"[^a-z0-9]", "", deployment.lower())[: high - _SUFFIX] or "aci"
    attempt = 0
    while True:
        salt = () if attempt == 0 else (str(attempt),)
        yield stem + _hash(subscription.lower(), resource_group.lower(), deployment, *salt)
        attempt += 1


def registry_name(login_server: str) -> str | None:
    """The ACR resource name of a login server (``myacr`` of ``myacr.azurecr.io``).

    Args:
        login_server (str): A registry's login server.

    Returns:
        str | None: The name, or None when the registry is not an Azure Container Registry.
    """
    host = login_server.split("/")[0].split(":")[0].lower()
    if host.endswith(_ACR_SUFFIXES):
        return host.split(".")[0]
    return None


def login_server(name: str) -> str:
    """An ACR's login server in the public cloud.

    Args:
        name (str): The registry's name.
    """
    return f"{name.lower()}.azurecr.io"


@dataclass(frozen=True)
class IdentityRef:
    """Where a user-assigned identity lives.

    Args:
        subscription (str): Its subscription.
        resource_group (str): Its resource group.
        name (str): Its name.
    """

    subscription: str
    resource_group: str
    name: str

    @property
    def id(self) -> str:
        """Its resource id."""
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/"
            f"Microsoft.ManagedIdentity/userAssignedIdentities/{self.name}"
        )


_IDENTITY_ID = re.compile(
    r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/"
    r"Microsoft\.ManagedIdentity/userAssignedIdentities/([^/]+)$",
    re.IGNORECASE,
)


def parse_identity(resource_id: str) -> IdentityRef | None:
    """Parse a user-assigned identity's resource id.

    Args:
        resource_id (str): ``/subscriptions/.../userAssignedIdentities/<name>``.

    Returns:
        IdentityRef | None: Its parts, or None when it is not such an id.
    """
    m = _IDENTITY_ID.match(resource_id.strip())
    return IdentityRef(m[1], m[2], m[3]) if m else None


@dataclass(frozen=True)
class Choice:
    """The name ``init`` uses for a storage account or registry.

    Args:
        name (str): The name.
        note (str | None): What people should know, e.g. that the default was taken.
        taken (str | None): Set when the file's name is taken by someone else: ARM's
            message. ``name`` is then a free one to suggest.
    """

    name: str
    note: str | None = None
    taken: str | None = None


MAX_TRIES = 10


def choose(
    kind: GlobalKind,
    chosen: str | None,
    defaults: Iterator[str],
    exists_here: Callable[[str], bool],
    available: Callable[[str], tuple[bool, str]] | None,
) -> Choice:
    """Pick the name of a storage account or registry.

    The file's name (``chosen``) is the user's: used when it is ours or free, else reported as
    taken with a free default to suggest. Without one, the first default that is ours or free
    is used, saying so when the first was taken.

    Args:
        kind (GlobalKind): ``storage account`` or ``registry``.
        chosen (str | None): The name the workload file sets.
        defaults (Iterator[str]): :func:`candidates`.
        exists_here (Callable[[str], bool]): Whether a name exists in our resource group.
        available (Callable[[str], tuple[bool, str]] | None): Whether a name is free across
            Azure, and ARM's message; None while the provider is not registered (nothing can
            be checked yet: the first name is used, and checked once registered).
    """
    if chosen is not None:
        if available is None or exists_here(chosen):
            return Choice(chosen)
        free, message = available(chosen)
        if free:
            return Choice(chosen)
        suggestion = choose(kind, None, defaults, exists_here, available)
        return Choice(suggestion.name, taken=message or f"the {kind} name {chosen} is taken")
    first = next(defaults)
    if available is None:
        return Choice(first)
    for attempt, name in enumerate([first, *(next(defaults) for _ in range(MAX_TRIES - 1))]):
        if exists_here(name):
            return Choice(name)
        free, message = available(name)
        if free:
            note = None if attempt == 0 else f"the {kind} name {first} is taken; using {name}"
            return Choice(name, note)
    raise ValueError(f"no free {kind} name after {MAX_TRIES} tries")
