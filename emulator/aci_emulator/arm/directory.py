"""The fake's Entra ID directory: which principals exist, and since when others can see them.

A new managed identity's service principal is not visible to role assignments at once: on
Azure it replicates for seconds to minutes, and until then a role assignment naming it is
refused with ``PrincipalNotFound``. :meth:`Directory.add` takes that delay.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """One principal.

    :param object_id: its object id.
    :param kind: ``User`` or ``ServicePrincipal`` (a role assignment's ``principalType``).
    :param visible_at: the directory's clock from which role assignments find it.
    """

    object_id: str
    kind: str
    visible_at: float


class Directory:
    """Principals by object id (thread-safe).

    :param clock: monotonic seconds; a test that must not wait out a replication delay
        gives the client and the directory one fake clock (``arm.directory.clock``).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._principals: dict[str, Principal] = {}

    def add(self, object_id: str, kind: str, *, delay: float = 0.0) -> Principal:
        """Add a principal, visible ``delay`` seconds from now.

        :param object_id: its object id.
        :param kind: ``User`` or ``ServicePrincipal``.
        :param delay: the replication delay.
        :return: the principal.
        """
        principal = Principal(object_id.lower(), kind, self.clock() + max(0.0, delay))
        with self._lock:
            self._principals[principal.object_id] = principal
        return principal

    def remove(self, object_id: str) -> None:
        """Forget a principal (its identity was deleted).

        :param object_id: its object id.
        """
        with self._lock:
            self._principals.pop(object_id.lower(), None)

    def find(self, object_id: str) -> Principal | None:
        """The principal, if it exists and has replicated.

        :param object_id: its object id.
        :return: the principal, or ``None`` (unknown, or not visible yet).
        """
        with self._lock:
            found = self._principals.get(object_id.lower())
        if found is None or found.visible_at > self.clock():
            return None
        return found
