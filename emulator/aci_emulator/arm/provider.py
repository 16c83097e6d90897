"""The base of every resource provider the fake ARM server serves.

A provider is one class in one module of :mod:`aci_emulator.providers`: it names its
namespace and spec file, and serves each operation of that spec with a method
``op_<OperationId>``. Registering it there (``PROVIDERS``) is all the server needs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from ..spec import SwaggerSpec
from .messages import ArmRequest, ArmResponse
from .tracked import ResourceTable

if TYPE_CHECKING:
    from .server import FakeArmServer

Handler = Callable[[ArmRequest], ArmResponse]


class ResourceProvider:
    """Base class for one resource provider backed by one Azure REST spec.

    A subclass sets :attr:`namespace` and :attr:`spec_name` and defines a method
    ``op_<OperationId>`` (e.g. ``op_ContainerGroups_Get``) for each operation it
    serves; requests for spec operations without a method get 501, so the gap is
    obvious. The server validates parameters and the body before calling a handler,
    and holds its lock while the handler runs, so handlers need no locking of their
    own.

    :param spec_file: the spec it serves.
    """

    namespace: ClassVar[str] = ""
    """The resource provider namespace, e.g. ``Microsoft.ContainerInstance``."""
    spec_name: ClassVar[str] = ""
    """The file of the specs directory it serves, e.g. ``containerinstance-2023-05-01.json``."""

    def __init__(self, spec_file: Path) -> None:
        self.spec = SwaggerSpec.load(spec_file)
        self.server: FakeArmServer | None = None

    @classmethod
    def from_specs(cls, specs_dir: Path) -> Self:
        """The provider, serving :attr:`spec_name` of a specs directory.

        :param specs_dir: the Azure REST specs.
        :return: a new provider, not yet attached to a server.
        :raises SpecNotFoundError: the spec file is missing.
        """
        return cls(spec_file=specs_dir / cls.spec_name)

    def attach(self, server: FakeArmServer) -> None:
        """Called by the server when the provider is registered.

        :param server: the owning server.
        """
        self.server = server

    def handler(self, operation_id: str) -> Handler | None:
        """The method serving an operation, if any.

        :param operation_id: spec ``operationId``.
        :return: a bound ``op_<OperationId>`` method, or ``None``.
        """
        found = getattr(self, "op_" + operation_id, None)
        return found if callable(found) else None

    def reset(self) -> None:
        """Forget all resources (called by :meth:`FakeArmServer.reset`)."""
        for table in self.tables():
            table.clear()

    def resources_in(self, subscription_id: str, resource_group: str) -> list[dict[str, Any]]:
        """The provider's resources in one resource group, as ARM's generic resource list
        shows them (``Resources_ListByResourceGroup``): ``id``, ``name``, ``type``,
        ``location``, ``tags``. Called under the server's lock.

        :param subscription_id: the subscription.
        :param resource_group: the resource group (any case).
        :return: one entry per resource; by default those of :meth:`tables`.
        """
        return [
            r.generic()
            for table in self.tables()
            for r in table.in_group(subscription_id, resource_group)
        ]

    def delete_resource_group(self, subscription_id: str, resource_group: str) -> None:
        """Delete every resource of the provider in a resource group being deleted (ARM
        deletes a group with its contents). Called under the server's lock.

        :param subscription_id: the subscription.
        :param resource_group: the resource group (any case).
        """
        for table in self.tables():
            for resource in table.in_group(subscription_id, resource_group):
                self.forget(table, resource.key)

    def tables(self) -> list[ResourceTable]:
        """The tables of tracked resources the provider keeps (for the defaults of
        :meth:`resources_in` and :meth:`delete_resource_group`).

        :return: none by default.
        """
        return []

    def forget(self, table: ResourceTable, key: tuple[str, str, str]) -> None:
        """Remove one resource (its resource group is being deleted); providers whose
        resources own others (a storage account's queues) override it.

        :param table: its table.
        :param key: its key.
        """
        table.pop(key)

    def attached(self) -> FakeArmServer:
        """The server this provider is registered with.

        :return: the server.
        :raises RuntimeError: it is not registered yet.
        """
        if self.server is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a FakeArmServer")
        return self.server
