"""How the emulator maps ACI onto Docker (:class:`EmulatorSettings`), and the error it
answers for what it cannot run (:class:`EmulatorError`)."""

from __future__ import annotations

from dataclasses import dataclass

# Waits while a stopped container gets its first restart; doubles up to the maximum.
_DEFAULT_RESTART_DELAY = 0.5
_DEFAULT_RESTART_DELAY_MAX = 10.0


class EmulatorError(Exception):
    """A request the emulator cannot serve (an image missing locally, a volume type).

    :param code: ARM error code to answer with.
    :param message: one line for the client.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class EmulatorSettings:
    """How the emulator maps ACI onto Docker.

    :param image_prefix: local image prefix that references map to (``IMAGE_PREFIX``).
    :param image_tag: when set, every mapped reference uses this tag (``TAG``).
    :param sandbox_image: image of the per-group sandbox; default
        ``<image_prefix>/base:<image_tag or latest>``.
    :param restart_delay: seconds before the first restart of a stopped container.
    :param restart_delay_max: cap of the doubling restart backoff.
    :param registry: strict mode: ``host:port`` of a real registry (Debian's
        ``docker-registry``, :class:`~aci_emulator.registry.LocalRegistry`) that every
        container's exact reference is pulled from, as ACI pulls; None: local-image mode.
    :param registry_hosts: the login servers that registry stands for (the workload's, the
        fake ACR's); an image of any other registry is inaccessible.
    :param identity_login: strict mode: the registry user a managed identity pulls as (the
        identity the body names is accepted, as ACR accepts an identity with AcrPull).
    """

    image_prefix: str = "aci-research"
    image_tag: str | None = None
    sandbox_image: str | None = None
    restart_delay: float = _DEFAULT_RESTART_DELAY
    restart_delay_max: float = _DEFAULT_RESTART_DELAY_MAX
    registry: str | None = None
    registry_hosts: tuple[str, ...] = ()
    identity_login: tuple[str, str] | None = None

    @property
    def sandbox(self) -> str:
        """The sandbox image to run."""
        return self.sandbox_image or f"{self.image_prefix}/base:{self.image_tag or 'latest'}"
