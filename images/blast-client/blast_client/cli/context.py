"""Shared state of a CLI invocation: the output format and a lazily built client."""

from __future__ import annotations

from dataclasses import dataclass, field

from blast_client.client import BlastClient


@dataclass
class Context:
    """Connects to storage on first use, so that ``--help`` and usage errors need no config.

    Attributes:
        output: "text" or "json".
    """

    output: str = "text"
    _client: BlastClient | None = field(default=None, repr=False)

    @property
    def client(self) -> BlastClient:
        """The client, configured from the environment (raises ConfigError if incomplete)."""
        if self._client is None:
            self._client = BlastClient.from_env()
        return self._client
