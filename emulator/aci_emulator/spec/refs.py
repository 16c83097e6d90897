"""``$ref`` resolution in Azure REST specs: the one place that knows where a ref points.

Every ref of the specs served today is local to its file: ``#/definitions/X`` (schemas) and
``#/parameters/X`` (shared parameters). The specs of other providers point into shared files
as well (``../common-types/resource-management/v5/types.json#/definitions/Resource``);
``SOURCES.md`` beside the specs maps such a path's tail to a file there. Following them is
one change here: :func:`split_ref` separates the document from the JSON pointer, and every
reader of refs goes through :func:`definition_name` or :func:`resolve_parameter`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class UnsupportedRefError(ValueError):
    """A ``$ref`` this loader cannot follow yet (one into another file)."""


def split_ref(ref: str) -> tuple[str, str]:
    """A ref's document and JSON pointer.

    :param ref: e.g. ``#/definitions/Container`` or ``../types.json#/definitions/Resource``.
    :return: ``(document, pointer)``; the document is ``""`` for a local ref.
    """
    document, _, pointer = ref.partition("#")
    return document, pointer


def _local_name(ref: str, section: str) -> str:
    document, pointer = split_ref(ref)
    prefix = f"/{section}/"
    if document or not pointer.startswith(prefix):
        raise UnsupportedRefError(f"only local #/{section} refs are supported, got {ref!r}")
    return pointer.removeprefix(prefix)


def definition_name(ref: str) -> str:
    """The definition a schema ref names.

    :param ref: ``#/definitions/<name>``.
    :return: ``<name>``, also its key in the converted ``$defs``.
    :raises UnsupportedRefError: the ref points into another file.
    """
    return _local_name(ref, "definitions")


def resolve_parameter(param: Mapping[str, Any], shared: Mapping[str, Any]) -> Mapping[str, Any]:
    """A parameter object, following a ``$ref`` to the spec's shared parameters.

    :param param: an operation's parameter entry (inline or ``{"$ref": ...}``).
    :param shared: the spec's top-level ``parameters``.
    :return: the parameter object.
    """
    ref = param.get("$ref")
    if ref is None:
        return param
    return dict(shared[ref.rsplit("/", 1)[-1]])
