"""``$ref`` resolution in Azure REST specs: the one place that knows where a ref points.

A spec refers to its own definitions (``#/definitions/X``) and shared parameters
(``#/parameters/X``), and, for most providers, to shared files as well
(``../common-types/resource-management/v5/types.json#/definitions/Resource``,
``./common-types.json#/parameters/ScopeParameter``). The specs directory is flat: each file
is named after its upstream path (``SOURCES.md`` beside the specs maps the refs), and
:func:`document_file` applies that mapping. The number of ``../`` is ignored, as SOURCES.md
says (the storage spec has one too few for its new folder).

:class:`SpecDocuments` loads the documents a spec reaches and names each definition with one
key: its plain name in the spec itself, ``<file>|<name>`` in a shared file, so a spec's own
``Resource`` never clashes with the common types' ``Resource``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class UnsupportedRefError(ValueError):
    """A ``$ref`` this loader cannot follow (no file of the specs directory maps to it)."""


def split_ref(ref: str) -> tuple[str, str]:
    """A ref's document and JSON pointer.

    :param ref: e.g. ``#/definitions/Container`` or ``../types.json#/definitions/Resource``.
    :return: ``(document, pointer)``; the document is ``""`` for a local ref.
    """
    document, _, pointer = ref.partition("#")
    return document, pointer


_COMMON_TYPES = re.compile(r"common-types/resource-management/(v\d+)/([\w.-]+\.json)$")
_COMMON_FILE = re.compile(r"(common-types-resource-management-v\d+)-[\w.-]+\.json")
_RP_FILE = re.compile(r"([a-z]+)-[\w-]+?-(\d{4}-\d{2}-\d{2}(?:-preview)?)\.json")


def document_file(ref_document: str, referrer: str) -> str:
    """The file of the specs directory a ref's document part names (SOURCES.md, "External
    ``$ref`` s").

    :param ref_document: the part before ``#``, e.g.
        ``../../../../../common-types/resource-management/v5/types.json`` or
        ``./common-types.json``; ``""`` is the referrer itself.
    :param referrer: the file (name in the specs directory) the ref appears in.
    :return: e.g. ``common-types-resource-management-v5-types.json``.
    :raises UnsupportedRefError: nothing in the flat folder stands for it.
    """
    if not ref_document:
        return referrer
    common = _COMMON_TYPES.search(ref_document)
    if common:
        return f"common-types-resource-management-{common[1]}-{common[2]}"
    sibling = ref_document.removeprefix("./")
    if ref_document.startswith("./") and "/" not in sibling and sibling.endswith(".json"):
        # A file beside the referrer upstream; here it carries the referrer's prefix (and,
        # for a provider's own files, its api-version): authorization-common-types-2022-04-01.
        if m := _COMMON_FILE.fullmatch(referrer):
            return f"{m[1]}-{sibling}"
        if m := _RP_FILE.fullmatch(referrer):
            return f"{m[1]}-{sibling.removesuffix('.json')}-{m[2]}.json"
    raise UnsupportedRefError(
        f"cannot follow $ref document {ref_document!r} from {referrer}: no file of the specs "
        "directory stands for it (SOURCES.md maps the shared files)"
    )


@dataclass(frozen=True)
class Target:
    """What a ref points at.

    :param file: the file (in the specs directory) holding it.
    :param section: ``definitions`` or ``parameters``.
    :param name: its name in that section (as stored, after a case-insensitive fallback).
    :param value: the object itself.
    """

    file: str
    section: str
    name: str
    value: Mapping[str, Any]


@dataclass
class SpecDocuments:
    """A spec and every document its refs reach, loaded on demand.

    :param root: the spec file.
    """

    root: Path
    _documents: dict[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def root_file(self) -> str:
        """The spec's own file name."""
        return self.root.name

    def document(self, file: str) -> Mapping[str, Any]:
        """A document of the specs directory, parsed once.

        :param file: its file name.
        :return: the parsed JSON.
        :raises UnsupportedRefError: the file is not in the specs directory.
        """
        found = self._documents.get(file)
        if found is None:
            path = self.root.parent / file
            if not path.is_file():
                raise UnsupportedRefError(
                    f"{file} (reached by a $ref of {self.root_file}) is not in {path.parent}; "
                    "SOURCES.md there lists the files"
                )
            found = json.loads(path.read_text(encoding="utf-8"))
            self._documents[file] = found
        return found

    def resolve(self, ref: str, referrer: str) -> Target:
        """Follow a ref made in ``referrer``.

        A definition name that does not exist exactly is looked up case-insensitively
        (SOURCES.md's known quirk: ``managedidentity`` refs ``systemData``, v4 defines
        ``SystemData``).

        :param ref: e.g. ``#/definitions/X`` or ``../v5/types.json#/parameters/Y``.
        :param referrer: the file the ref appears in.
        :return: the target.
        :raises UnsupportedRefError: the ref is not ``#/definitions/...`` or
            ``#/parameters/...``, or its document or name is missing.
        """
        document, pointer = split_ref(ref)
        file = document_file(document, referrer)
        parts = pointer.strip("/").split("/", 1)
        if len(parts) != 2 or parts[0] not in ("definitions", "parameters"):
            raise UnsupportedRefError(
                f"only #/definitions and #/parameters refs are supported, got {ref!r}"
            )
        section, name = parts
        entries: Mapping[str, Any] = self.document(file).get(section, {})
        if name not in entries:
            folded = [k for k in entries if k.lower() == name.lower()]
            if len(folded) != 1:
                raise UnsupportedRefError(
                    f"{ref!r} (from {referrer}): {file} has no {section} {name!r}"
                )
            name = folded[0]
        return Target(file, section, name, entries[name])

    def key(self, file: str, name: str) -> str:
        """A definition's key among the converted definitions (``$defs``).

        :param file: the file holding it.
        :param name: its name there.
        :return: ``name`` for the spec's own definitions, else ``<file>|<name>``.
        """
        return name if file == self.root_file else f"{file}|{name}"

    def parameter(self, param: Mapping[str, Any], referrer: str) -> tuple[Mapping[str, Any], str]:
        """A parameter object, following a ``$ref`` to shared parameters (of any file).

        :param param: an operation's parameter entry (inline or ``{"$ref": ...}``).
        :param referrer: the file the entry appears in.
        :return: the parameter object and the file it is defined in (its ``schema`` refs
            are relative to that file).
        """
        ref = param.get("$ref")
        if ref is None:
            return param, referrer
        target = self.resolve(ref, referrer)
        return dict(target.value), target.file


def pointer_to(key: str) -> str:
    """The JSON pointer of a converted definition.

    :param key: a :meth:`SpecDocuments.key`.
    :return: ``#/$defs/<key>`` with ``~`` and ``/`` escaped.
    """
    return "#/$defs/" + key.replace("~", "~0").replace("/", "~1")
