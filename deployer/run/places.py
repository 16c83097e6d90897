"""Where each run started here lives: its storage account and Azure scope.

``deployer run status|results|cancel RUN`` and ``run list`` take a run id, not a workload file.
After ``deployer init`` the storage account and the scope are in the workload file only, so
``run`` remembers them per run id in the state directory, and the other run commands find the
run again without flags or environment variables. Names only, never a key or a token.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from blast_client.config import ConfigError, load_storage_config

from deployer.defaults import state_dir
from deployer.settings import Settings


@dataclass(frozen=True)
class RunPlace:
    """A run's storage account and Azure scope, as ``run`` resolved them."""

    run_id: str
    deployment: str
    storage_account: str
    subscription: str | None
    resource_group: str | None

    def settings(self) -> Settings:
        """Settings that open the run's storage and list its groups."""
        return Settings(
            deployment=self.deployment,
            location="",
            registry="",
            image_tag="",
            storage_account=self.storage_account,
            subscription=self.subscription,
            resource_group=self.resource_group,
        )


def _folder() -> Path:
    path = state_dir() / "runs"
    path.mkdir(exist_ok=True, mode=0o700)
    return path


def remember(run_id: str, settings: Settings) -> None:
    """Record where ``run_id`` lives, when its storage is a named account (not a connection
    string from the environment, which the other commands read from there too)."""
    if not settings.storage_account:
        return
    place = RunPlace(
        run_id,
        settings.deployment,
        settings.storage_account,
        settings.subscription,
        settings.resource_group,
    )
    path = _folder() / f"{run_id}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(place)), encoding="utf-8")
    tmp.replace(path)


def _read(path: Path) -> RunPlace | None:
    try:
        return RunPlace(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None  # not one of ours, or half-written by an older version


def recall(run_id: str) -> RunPlace | None:
    """Where ``run_id`` lives, if a run started here recorded it."""
    return _read(_folder() / f"{run_id}.json")


def latest() -> RunPlace | None:
    """The place of the run started here last (``run list`` without other settings)."""
    paths = sorted(_folder().glob("r*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    return next((place for place in map(_read, paths) if place is not None), None)


def storage_in_env() -> bool:
    """The environment names a storage account (it then wins over what a run recorded)."""
    try:
        load_storage_config()
    except ConfigError:
        return False
    return True
