"""A fake Azure Resource Manager server for testing the deployer with the real SDK.

Typical use (see README.md in this folder)::

    with FakeArm() as arm:
        client = aci_client(arm)
        client.container_groups.begin_create_or_update("rg", "cg", group).result()
        assert arm.calls(method="PUT")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self

from .aci import ACI_SPEC_FILE, ACI_SPEC_NAME, AciProvider, ContainerGroupState
from .acr import ACR_SPEC_FILE, ACR_SPEC_NAME, AcrProvider, FakeRegistry
from .client import LoopbackHttpPolicy, aci_client, is_loopback_url
from .emulator import DockerRuntime, EmulatorSettings
from .server import (
    FAKE_SUBSCRIPTION_ID,
    FAKE_TOKEN,
    ArmRequest,
    ArmResponse,
    AsyncOperation,
    Call,
    FakeArmServer,
    FakeCredential,
    Faults,
    ResourceProvider,
    arm_error,
)
from .spec import SPECS_DIR, Problem, SpecNotFoundError, SwaggerSpec

SPECS_ENV = "ACI_EMULATOR_SPECS"
"""Environment variable naming the Azure REST specs directory (default: SPECS_DIR)."""


class FakeArm(FakeArmServer):
    """The fake ARM server with every provider this package implements.

    Providers are attributes: ``arm.aci`` (Microsoft.ContainerInstance) and
    ``arm.acr`` (Microsoft.ContainerRegistry runs; give it ``arm.acr.storage`` and
    ``arm.acr.registry`` before scheduling runs).

    In emulator mode (``emulate``), container groups become real containers on the
    local Docker engine (see :mod:`tests.fakearm.emulator`); :attr:`emulator` is the
    runtime while the server runs.

    :param specs_dir: the Azure REST specs; default ``$ACI_EMULATOR_SPECS``, else
        ``../shared/azure-specs`` next to the repository.
    :param emulate: ``True`` or :class:`EmulatorSettings` to run groups on Docker.
    :param listen_for_containers: in emulator mode, also listen on the emulator
        network's gateway so groups reach the server (see :attr:`container_url`).
    :param kwargs: passed to :class:`FakeArmServer` (``token``, ``subscription_id``).
    """

    def __init__(
        self,
        *,
        specs_dir: Path | str | None = None,
        emulate: bool | EmulatorSettings = False,
        listen_for_containers: bool = False,
        **kwargs: Any,
    ) -> None:
        specs = Path(specs_dir or os.environ.get(SPECS_ENV) or SPECS_DIR)
        self.aci = AciProvider(spec_file=specs / ACI_SPEC_NAME)
        self.acr = AcrProvider(spec_file=specs / ACR_SPEC_NAME)
        super().__init__([self.aci, self.acr], **kwargs)
        self._emulate = (
            (emulate if isinstance(emulate, EmulatorSettings) else EmulatorSettings())
            if emulate
            else None
        )
        self._listen_for_containers = listen_for_containers
        self.container_url: str | None = None

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


__all__ = [
    "ACI_SPEC_FILE",
    "ACR_SPEC_FILE",
    "FAKE_SUBSCRIPTION_ID",
    "FAKE_TOKEN",
    "SPECS_DIR",
    "AciProvider",
    "AcrProvider",
    "ArmRequest",
    "ArmResponse",
    "AsyncOperation",
    "Call",
    "ContainerGroupState",
    "DockerRuntime",
    "EmulatorSettings",
    "FakeArm",
    "FakeArmServer",
    "FakeCredential",
    "FakeRegistry",
    "Faults",
    "LoopbackHttpPolicy",
    "Problem",
    "ResourceProvider",
    "SpecNotFoundError",
    "SwaggerSpec",
    "aci_client",
    "arm_error",
    "is_loopback_url",
]
