"""Shared state of a CLI invocation: configuration and lazily built storage clients."""

from __future__ import annotations

from dataclasses import dataclass, field

from blast_worker.config import StorageConfig, load_storage_config
from blast_worker.joblog import JobLog
from blast_worker.storage import Storage


@dataclass
class Context:
    """Lazily connects to storage so that ``--help`` and usage errors need no config.

    Attributes:
        output: "text" or "json".
    """

    output: str = "text"
    _cfg: StorageConfig | None = field(default=None, repr=False)
    _storage: Storage | None = field(default=None, repr=False)

    @property
    def cfg(self) -> StorageConfig:
        """The storage configuration (raises ConfigError when the environment is incomplete)."""
        if self._cfg is None:
            self._cfg = load_storage_config()
        return self._cfg

    @property
    def storage(self) -> Storage:
        """Storage clients built from the environment."""
        if self._storage is None:
            self._storage = Storage(self.cfg)
        return self._storage

    @property
    def joblog(self) -> JobLog:
        """The job log."""
        return JobLog(self.storage.table)
