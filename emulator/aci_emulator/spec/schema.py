"""Swagger 2.0 schemas to JSON Schema (draft 2020-12), with ARM's rules.

* ``#/definitions/X`` becomes ``#/$defs/X`` (:mod:`.refs` resolves refs);
* ``allOf`` is merged into one object (properties and required lists unioned), so
  objects can be *closed* (``additionalProperties: false``) without JSON Schema's
  ``allOf`` pitfall of rejecting the other branch's properties;
* read-only properties are dropped from ``required`` (clients never send them) but
  stay allowed, as ARM ignores them on input;
* a definition with a ``discriminator`` accepts exactly its known subtypes
  (``x-ms-discriminator-value`` or the subtype's name) and validates the body as the
  subtype it names;
* enums are compared case-insensitively, as ARM does (``"public"`` is accepted for
  ``"Public"``): they become the :data:`CI_ENUM` keyword of :mod:`.validation`;
* ``int32``/``int64`` become range checks; ``date-time`` and ``uuid`` are checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .refs import SpecDocuments, Target, pointer_to

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
CI_ENUM = "x-enum-ci"
"""The keyword for a case-insensitive enum (checked by :mod:`.validation`'s validator)."""

_COPIED = (
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "uniqueItems",
    "exclusiveMinimum",
    "exclusiveMaximum",
)


class Converter:
    """Converts the definitions a spec reaches, each once, into :attr:`defs`.

    Every schema is converted in the context of the file it is written in, since its refs
    are relative to that file (a common-types definition's ``#/definitions/X`` is the
    common types' ``X``). A ref to a definition not yet converted converts it too, so
    :attr:`defs` always holds everything the converted schemas point at.

    :param documents: the spec and the documents its refs reach.
    """

    def __init__(self, documents: SpecDocuments) -> None:
        self.documents = documents
        self.defs: dict[str, Any] = {}

    def convert_all(self) -> dict[str, Any]:
        """Convert every definition of the spec itself (and whatever they reach).

        :return: :attr:`defs`.
        """
        root = self.documents.root_file
        for name in self.documents.document(root).get("definitions", {}):
            self._define(Target(root, "definitions", name, self._definitions(root)[name]))
        return self.defs

    def _definitions(self, file: str) -> Mapping[str, Any]:
        definitions: Mapping[str, Any] = self.documents.document(file).get("definitions", {})
        return definitions

    def _define(self, target: Target) -> str:
        key = self.documents.key(target.file, target.name)
        if key not in self.defs:
            self.defs[key] = {}  # a placeholder first: definitions may be recursive
            self.defs[key] = self._convert_definition(target)
        return key

    def ref(self, ref: str, file: str) -> dict[str, Any]:
        """A JSON Schema ``$ref`` to the definition a Swagger ref names (converted on demand).

        :param ref: the Swagger ref.
        :param file: the file it appears in.
        :return: ``{"$ref": "#/$defs/<key>"}``.
        """
        return {"$ref": pointer_to(self._define(self.documents.resolve(ref, file)))}

    def _subtypes(self, base: Target) -> dict[str, str]:
        """Discriminator value -> definition name, for every (transitive) subtype of base
        among the definitions of base's file."""
        definitions = self._definitions(base.file)
        found: dict[str, str] = {}
        for name, definition in definitions.items():
            if name != base.name and base.name in self._ancestors(name, base.file):
                found[str(definition.get("x-ms-discriminator-value", name))] = name
        return found

    def _ancestors(self, name: str, file: str) -> set[str]:
        seen: set[str] = set()
        stack = [name]
        while stack:
            for part in self._definitions(file)[stack.pop()].get("allOf", []):
                if "$ref" in part:
                    parent = self.documents.resolve(part["$ref"], file)
                    if parent.file == file and parent.name not in seen:
                        seen.add(parent.name)
                        stack.append(parent.name)
        return seen

    def _convert_definition(self, target: Target) -> dict[str, Any]:
        definition = target.value
        discriminator = definition.get("discriminator")
        if not discriminator:
            return self.convert(definition, target.file)
        subtypes = self._subtypes(target)
        definitions = self._definitions(target.file)
        # A polymorphic base accepts only its concrete subtypes, each validated closed.
        branches: list[dict[str, Any]] = [
            {
                "if": {
                    "properties": {discriminator: {"const": value}},
                    "required": [discriminator],
                },
                "then": self.convert(
                    definitions[sub], target.file, discriminator_value=(discriminator, value)
                ),
            }
            for value, sub in sorted(subtypes.items())
        ]
        return {
            "type": "object",
            "required": [discriminator],
            "properties": {discriminator: {"type": "string", "enum": sorted(subtypes)}},
            "allOf": branches,
        }

    def convert(
        self,
        schema: Mapping[str, Any],
        file: str,
        discriminator_value: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """Convert one Swagger schema object written in ``file`` (refs stay refs).

        :param schema: the Swagger schema.
        :param file: the file it is written in.
        :param discriminator_value: ``(property, value)`` when converting a discriminated
            subtype: that property must equal the value.
        :return: the JSON Schema.
        """
        if "$ref" in schema and "allOf" not in schema:
            return self.ref(schema["$ref"], file)

        merged = self._merge_all_of(schema, file)
        out: dict[str, Any] = {}
        kind = merged.flat.get("type")
        if kind is None and (merged.has_properties or "additionalProperties" in merged.flat):
            kind = "object"
        nullable = bool(merged.flat.get("x-nullable"))
        if kind is not None:
            json_kind: Any = kind
            if nullable:
                json_kind = [kind, "null"]
            out["type"] = json_kind

        if "enum" in merged.flat:
            # Case-insensitive match, as ARM does; the keyword is ours (validation.VALIDATOR_CLASS).
            out[CI_ENUM] = list(merged.flat["enum"])
        for key in _COPIED:
            if key in merged.flat:
                out[key] = merged.flat[key]
        fmt = merged.flat.get("format")
        if fmt in _INT_RANGES:
            low, high = _INT_RANGES[fmt]
            out.setdefault("minimum", low)
            out.setdefault("maximum", high)
        elif fmt in ("date-time", "uuid"):
            out["format"] = fmt

        if kind == "array" and "items" in merged.flat:
            out["items"] = self.convert(merged.flat["items"], merged.flat_file.get("items", file))

        if kind == "object":
            out["properties"] = dict(merged.properties)
            if discriminator_value is not None:
                prop, value = discriminator_value
                out["properties"][prop] = {"type": "string", "const": value}
            required = [r for r in merged.required if r not in merged.read_only]
            if required:
                out["required"] = sorted(set(required))
            additional = merged.flat.get("additionalProperties")
            if isinstance(additional, Mapping):
                out["additionalProperties"] = self.convert(
                    additional, merged.flat_file.get("additionalProperties", file)
                )
            elif additional is True or (not merged.properties and additional is None):
                # A bare "type: object" is a free-form bag in Swagger; keep it open.
                out["additionalProperties"] = True
            else:
                # Closed, so unknown properties (deployer typos) are errors.
                out["additionalProperties"] = False
        return out

    def _merge_all_of(self, schema: Mapping[str, Any], file: str) -> _Merged:
        """Flatten ``allOf`` (and a ``$ref`` beside it) into one schema; properties are
        converted in the file each comes from."""
        merged = _Merged()
        parts: list[Mapping[str, Any]] = list(schema.get("allOf", []))
        if "$ref" in schema:
            parts.append({"$ref": schema["$ref"]})
        for part in parts:
            if "$ref" in part:
                target = self.documents.resolve(part["$ref"], file)
                inner = self._merge_all_of(target.value, target.file)
            else:
                inner = self._merge_all_of(part, file)
            merged.absorb(inner, parents=True)
        own = _Merged()
        for key, value in schema.items():
            if key not in ("allOf", "$ref", "properties", "required"):
                own.flat[key] = value
                own.flat_file[key] = file
        for name, prop in schema.get("properties", {}).items():
            own.properties[name] = self.convert(prop, file)
            if prop.get("readOnly"):
                own.read_only.add(name)
        own.required = list(schema.get("required", []))
        merged.absorb(own, parents=False)
        merged.has_properties = bool(parts) or "properties" in schema
        if parts:
            merged.flat.setdefault("type", "object")
        return merged


class _Merged:
    """A schema with its ``allOf`` flattened: other keywords, converted properties."""

    def __init__(self) -> None:
        self.flat: dict[str, Any] = {}
        self.flat_file: dict[str, str] = {}
        self.properties: dict[str, Any] = {}
        self.required: list[str] = []
        self.read_only: set[str] = set()
        self.has_properties = False

    def absorb(self, other: _Merged, *, parents: bool) -> None:
        """Add another part: its properties override, its other keywords fill gaps
        (a parent's description or discriminator is not inherited)."""
        self.properties.update(other.properties)
        self.required.extend(other.required)
        self.read_only = (self.read_only - set(other.properties)) | other.read_only
        for key, value in other.flat.items():
            if parents and key in ("discriminator", "description"):
                continue
            if parents:
                if key not in self.flat:
                    self.flat[key] = value
                    self.flat_file[key] = other.flat_file.get(key, "")
            else:
                self.flat[key] = value
                self.flat_file[key] = other.flat_file.get(key, "")


# --- validator with case-insensitive enums and readable errors ----------------------
