"""The fake ARM server with every registered provider, and its emulator mode."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self, TypeVar

from .arm import FakeArmServer, ResourceProvider
from .providers import (
    PROVIDERS,
    AciProvider,
    AcrProvider,
    ManagedIdentityProvider,
    RegistriesProvider,
    ResourcesProvider,
    RoleAssignmentsProvider,
    StorageProvider,
)
from .runtime import DockerRuntime, EmulatorSettings
from .spec import specs_dir as default_specs_dir

P = TypeVar("P", bound=ResourceProvider)


class FakeArm(FakeArmServer):
    """The fake ARM server with every provider this package implements.

    The providers are those of :data:`~aci_emulator.providers.PROVIDERS`, each built
    from its spec file: ``arm.get(AciProvider)``, or ``arm.aci`` (Microsoft.ContainerInstance),
    ``arm.acr`` (Microsoft.ContainerRegistry runs; give it ``arm.acr.storage`` and
    ``arm.acr.registry`` before scheduling runs), ``arm.registries`` (registry management),
    ``arm.resources`` (resource groups, provider registration), ``arm.storage``,
    ``arm.identities`` and ``arm.role_assignments``.

    In emulator mode (``emulate``), container groups become real containers on the
    local Docker engine (see :mod:`aci_emulator.runtime`); :attr:`emulator` is the
    runtime while the server runs.

    :param specs_dir: the Azure REST specs; default ``$ACI_EMULATOR_SPECS``, else
        ``../shared/azure-specs`` next to the repository.
    :param emulate: ``True`` or :class:`EmulatorSettings` to run groups on Docker.
    :param listen_for_containers: in emulator mode, also listen on the emulator
        network's gateway so groups reach the server (see :attr:`container_url`).
    :param providers: the provider classes to serve; default every registered one.
    :param kwargs: passed to :class:`FakeArmServer` (``token``, ``subscription_id``).
    """

    def __init__(
        self,
        *,
        specs_dir: Path | str | None = None,
        emulate: bool | EmulatorSettings = False,
        listen_for_containers: bool = False,
        providers: Iterable[type[ResourceProvider]] = PROVIDERS,
        **kwargs: Any,
    ) -> None:
        specs = Path(specs_dir) if specs_dir else default_specs_dir()
        super().__init__([kind.from_specs(specs) for kind in providers], **kwargs)
        self._emulate = (
            (emulate if isinstance(emulate, EmulatorSettings) else EmulatorSettings())
            if emulate
            else None
        )
        self._listen_for_containers = listen_for_containers
        self.container_url: str | None = None

    def get(self, kind: type[P]) -> P:
        """The registered provider of a class.

        :param kind: e.g. :class:`AciProvider`.
        :return: the provider.
        :raises KeyError: the server does not serve it.
        """
        for provider in self.providers:
            if isinstance(provider, kind):
                return provider
        raise KeyError(f"no {kind.__name__} registered")

    @property
    def aci(self) -> AciProvider:
        """The ``Microsoft.ContainerInstance`` provider."""
        return self.get(AciProvider)

    @property
    def acr(self) -> AcrProvider:
        """The ``Microsoft.ContainerRegistry`` runs provider."""
        return self.get(AcrProvider)

    @property
    def registries(self) -> RegistriesProvider:
        """The ``Microsoft.ContainerRegistry`` registry management provider."""
        return self.get(RegistriesProvider)

    @property
    def resources(self) -> ResourcesProvider:
        """The ``Microsoft.Resources`` provider (groups, registration; ARM's checks)."""
        return self.get(ResourcesProvider)

    @property
    def storage(self) -> StorageProvider:
        """The ``Microsoft.Storage`` provider."""
        return self.get(StorageProvider)

    @property
    def identities(self) -> ManagedIdentityProvider:
        """The ``Microsoft.ManagedIdentity`` provider."""
        return self.get(ManagedIdentityProvider)

    @property
    def role_assignments(self) -> RoleAssignmentsProvider:
        """The ``Microsoft.Authorization`` role assignments provider."""
        return self.get(RoleAssignmentsProvider)

    @property
    def emulator(self) -> DockerRuntime:
        """The Docker runtime (emulator mode, while running)."""
        if self.aci.runtime is None:
            raise RuntimeError("the fake ARM server is not running in emulator mode")
        return self.aci.runtime

    def start(self, port: int = 0) -> Self:
        """Start listening (and, in emulator mode, create the emulator's network).

        :param port: TCP port on 127.0.0.1; 0 picks a free one.
        :return: ``self``.
        """
        super().start(port)
        if self._emulate is None:
            return self
        try:
            runtime = DockerRuntime(self.lock, self._emulate)
            self.aci.runtime = runtime
            if self._listen_for_containers:
                self.container_url = self.also_listen(runtime.gateway).replace(
                    runtime.gateway, "host.docker.internal"
                )
                port = int(self.url.rsplit(":", 1)[1])
                runtime.forward(port, "host.docker.internal", port)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop listening, then remove every container the emulator created."""
        super().stop()
        runtime, self.aci.runtime = self.aci.runtime, None
        if runtime is not None:
            runtime.close()
