"""Comparing desired and observed groups (pure): what ``up`` creates, updates in place,
recreates, leaves alone or deletes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from deployer.plan.common import secret_volume
from deployer.plan.spec import SECRETS_TAG, GroupSpec


def canonical(spec: GroupSpec) -> dict[str, Any]:
    """Return the fields ``up`` sets, split into those ACI can update in place and
    those that need a recreate. Backends produce the same shape from what they
    observe, so :func:`diff` compares like with like.
    """
    return {
        "recreate": {
            "os": "Linux",
            "restart": spec.restart_policy,
            "ip": [spec.ip, sorted(spec.ports), spec.dns_label] if spec.ip else None,
            "subnet": spec.subnet_id.lower() if spec.subnet_id else None,
            "priority": spec.priority,
            "identity": spec.identity.lower() if spec.identity else None,
            "volumes": sorted(
                [*spec.volumes, *(secret_volume(c.name) for c in spec.containers if c.secret_files)]
            ),
            "containers": {
                c.name: {
                    "cpu": c.resources.cpu,
                    "memory": c.resources.memory,
                    "ports": sorted(c.ports),
                }
                for c in spec.containers
            },
        },
        # Secret files are not compared here (ARM never returns their values): their
        # names and values are in the SECRETS_TAG digest, their volumes in "volumes".
        "update": {
            "tags": dict(spec.tags),
            "registry": [spec.registry.server, spec.registry.identity, spec.registry.username]
            if spec.registry
            else None,
            "containers": {
                c.name: {
                    "image": c.image,
                    "command": list(c.command) if c.command else None,
                    "env": dict(c.env),
                    "probe": list(c.probe) if c.probe else None,
                    "mounts": sorted([m.volume, m.path, m.read_only] for m in c.mounts),
                }
                for c in spec.containers
            },
        },
    }


class Action(StrEnum):
    """What ``up`` does with one group."""

    CREATE = "create"
    UPDATE = "update"
    RECREATE = "recreate"
    UNCHANGED = "unchanged"
    DELETE = "delete"


@dataclass(frozen=True)
class Change:
    """One planned change.

    Args:
        name (str): Group name.
        action (Action): What happens to it.
        spec (GroupSpec | None): The desired group (None for a delete).
        reasons (tuple[str, ...]): The differing fields, ``path: old -> new``.
    """

    name: str
    action: Action
    spec: GroupSpec | None = None
    reasons: tuple[str, ...] = field(default=())


def _differences(old: Any, new: Any, path: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out += _differences(old.get(key), new.get(key), sub)
        return out
    if old == new:
        return []
    if path.startswith("update.tags." + SECRETS_TAG):
        return ["secrets changed"]
    return [f"{path.split('.', 1)[1]}: {_short(old)} -> {_short(new)}"]


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def diff(desired: Sequence[GroupSpec], observed: Mapping[str, Mapping[str, Any]]) -> list[Change]:
    """Compare desired groups with observed ones (name -> canonical form).

    Args:
        desired (Sequence[GroupSpec]): The plan's groups.
        observed (Mapping[str, Mapping[str, Any]]): Existing groups of the
            deployment, by name, in the shape of :func:`canonical`.

    Returns:
        list[Change]: One change per desired group, in order, then one delete per
        observed group the plan no longer has.
    """
    changes = []
    for spec in desired:
        have = observed.get(spec.name)
        if have is None:
            changes.append(Change(spec.name, Action.CREATE, spec))
            continue
        want = canonical(spec)
        recreate = _differences(have.get("recreate"), want["recreate"], "recreate")
        update = _differences(have.get("update"), want["update"], "update")
        if recreate:
            changes.append(Change(spec.name, Action.RECREATE, spec, tuple(recreate + update)))
        elif update:
            changes.append(Change(spec.name, Action.UPDATE, spec, tuple(update)))
        else:
            changes.append(Change(spec.name, Action.UNCHANGED, spec))
    wanted = {s.name for s in desired}
    changes += [Change(name, Action.DELETE) for name in sorted(observed) if name not in wanted]
    return changes
