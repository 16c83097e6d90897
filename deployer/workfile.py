"""The workload file edited in place: values set, the user's comments, order and layout kept.

``deployer scale`` writes a new size and ``deployer init`` writes the names it chose. Both go
through :func:`set_values`, a ruamel.yaml round trip: a key that exists keeps its place and
its comment; a new key goes where the schema orders it (before the first later field the
file has), so ``registry:`` lands among the ``deployment`` settings, not after a trailing
comment.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Mapping, Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from deployer.errors import WorkloadFileError

FieldPath = tuple[str, ...]


def _yaml() -> YAML:
    yaml = YAML()  # round trip
    yaml.preserve_quotes = True
    # The layout of the examples and of `deployer schema`'s documentation.
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def set_values(
    text: str,
    values: Mapping[FieldPath, Any],
    *,
    source: str = "<workload>",
    order: Mapping[FieldPath, Sequence[str]] | None = None,
) -> str:
    """Set values in a workload file's text, keeping everything else as it was.

    Args:
        text (str): The YAML text.
        values (Mapping[FieldPath, Any]): ``("deployment", "registry") -> value``; the
            parent mappings must exist.
        source (str): The file name for messages. Default: ``<workload>``.
        order (Mapping[FieldPath, Sequence[str]] | None): Per parent mapping, the order of
            its fields (the schema's); a new key goes before the first later field present.
            Default: new keys go last.

    Returns:
        str: The new text.

    Raises:
        WorkloadFileError: When the text is not YAML or a parent is missing.
    """
    yaml = _yaml()
    try:
        data = yaml.load(text)
    except YAMLError as exc:
        raise WorkloadFileError([f"{source}: not valid YAML: {exc}"]) from None
    for path, value in values.items():
        parent = data
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, CommentedMap) else None
        if not isinstance(parent, CommentedMap):
            where = ".".join(path[:-1])
            raise WorkloadFileError([f"{source}: {where}: is not a mapping in the file"])
        _set(parent, path[-1], value, (order or {}).get(path[:-1], ()))
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _set(mapping: CommentedMap, key: str, value: Any, order: Sequence[str]) -> None:
    if key in mapping:
        mapping[key] = value
        return
    keys = list(mapping)
    later = order[order.index(key) + 1 :] if key in order else ()
    position = next((keys.index(k) for k in later if k in keys), None)
    if position is not None:
        mapping.insert(position, key, value)
        return
    _append(mapping, key, value)


def _append(mapping: CommentedMap, key: str, value: Any) -> None:
    """Add a key at the end of a mapping, before the blank lines and comments that followed
    its last key (ruamel keeps those with the last key, so a plain append lands after them)."""
    keys = list(mapping)
    mapping[key] = value
    if not keys:
        return
    entry = mapping.ca.items.get(keys[-1])
    token = entry[2] if entry and len(entry) > 2 else None
    if token is None:
        return
    first, newline, rest = token.value.partition("\n")
    if not rest:
        return
    token.value = first + newline
    moved = copy.copy(token)
    moved.value = newline + rest  # an empty end-of-line comment, then what followed
    mapping.ca.items[key] = [None, None, moved, None]
