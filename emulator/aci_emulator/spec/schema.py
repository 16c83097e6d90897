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

from .refs import definition_name

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
CI_ENUM = "x-enum-ci"
"""The keyword for a case-insensitive enum (checked by :mod:`.validation`'s validator)."""


def _subtypes(base: str, definitions: Mapping[str, Any]) -> dict[str, str]:
    """Discriminator value -> definition name, for every (transitive) subtype of base."""
    found: dict[str, str] = {}
    for name, definition in definitions.items():
        if name == base:
            continue
        if base in _ancestors(name, definitions):
            value = str(definition.get("x-ms-discriminator-value", name))
            found[value] = name
    return found


def _ancestors(name: str, definitions: Mapping[str, Any]) -> set[str]:
    seen: set[str] = set()
    stack = [name]
    while stack:
        for part in definitions[stack.pop()].get("allOf", []):
            if "$ref" in part:
                parent = definition_name(part["$ref"])
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
    return seen


def convert_definition(name: str, definitions: Mapping[str, Any]) -> dict[str, Any]:
    definition = definitions[name]
    discriminator = definition.get("discriminator")
    if not discriminator:
        return convert(definition, definitions)
    subtypes = _subtypes(name, definitions)
    # A polymorphic base accepts only its concrete subtypes, each validated closed.
    branches: list[dict[str, Any]] = [
        {
            "if": {"properties": {discriminator: {"const": value}}, "required": [discriminator]},
            "then": convert(
                definitions[sub], definitions, discriminator_value=(discriminator, value)
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
    schema: Mapping[str, Any],
    definitions: Mapping[str, Any],
    discriminator_value: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Convert one Swagger schema object (not following $refs, which stay refs)."""
    if "$ref" in schema and "allOf" not in schema:
        return {"$ref": "#/$defs/" + definition_name(schema["$ref"])}

    merged = _merge_all_of(schema, definitions)
    out: dict[str, Any] = {}
    kind = merged.get("type")
    if kind is None and ("properties" in merged or "additionalProperties" in merged):
        kind = "object"
    nullable = bool(merged.get("x-nullable"))
    if kind is not None:
        json_kind: Any = kind
        if nullable:
            json_kind = [kind, "null"]
        out["type"] = json_kind

    if "enum" in merged:
        # Case-insensitive match, as ARM does; the keyword is ours (see validation.VALIDATOR_CLASS).
        out[CI_ENUM] = list(merged["enum"])
    for key in (
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
    ):
        if key in merged:
            out[key] = merged[key]
    fmt = merged.get("format")
    if fmt in _INT_RANGES:
        low, high = _INT_RANGES[fmt]
        out.setdefault("minimum", low)
        out.setdefault("maximum", high)
    elif fmt in ("date-time", "uuid"):
        out["format"] = fmt

    if kind == "array" and "items" in merged:
        out["items"] = convert(merged["items"], definitions)

    if kind == "object":
        props: Mapping[str, Any] = merged.get("properties", {})
        out["properties"] = {k: convert(v, definitions) for k, v in props.items()}
        if discriminator_value is not None:
            prop, value = discriminator_value
            out["properties"][prop] = {"type": "string", "const": value}
        required = [r for r in merged.get("required", []) if not props.get(r, {}).get("readOnly")]
        if required:
            out["required"] = sorted(set(required))
        additional = merged.get("additionalProperties")
        if isinstance(additional, Mapping):
            out["additionalProperties"] = convert(additional, definitions)
        elif additional is True or (not props and additional is None):
            # A bare "type: object" is a free-form bag in Swagger; keep it open.
            out["additionalProperties"] = True
        else:
            # Closed, so unknown properties (deployer typos) are errors.
            out["additionalProperties"] = False
    return out


def _merge_all_of(schema: Mapping[str, Any], definitions: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten ``allOf`` (and a ``$ref`` beside it) into a single Swagger schema."""
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k not in ("allOf", "$ref")}
    parts: list[Mapping[str, Any]] = list(schema.get("allOf", []))
    if "$ref" in schema:
        parts.append({"$ref": schema["$ref"]})
    if not parts:
        return merged
    properties: dict[str, Any] = {}
    required: list[str] = []
    for part in parts:
        resolved = definitions[definition_name(part["$ref"])] if "$ref" in part else part
        flat = _merge_all_of(resolved, definitions)
        properties.update(flat.get("properties", {}))
        required.extend(flat.get("required", []))
        for key, value in flat.items():
            if key not in ("properties", "required", "discriminator", "description"):
                merged.setdefault(key, value)
    properties.update(merged.get("properties", {}))
    required.extend(merged.get("required", []))
    merged["properties"] = properties
    merged["required"] = required
    merged.setdefault("type", "object")
    return merged


# --- validator with case-insensitive enums and readable errors ----------------------
