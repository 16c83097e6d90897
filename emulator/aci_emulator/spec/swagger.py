"""Swagger 2.0 (Azure REST spec) loading, routing and request validation.

The fake ARM server validates every request against the operation it matches in a
published Azure REST spec, so a deployer typo (``cpuu``, ``restartPolicy: "Sometime"``)
fails the same test that would have failed against Azure, with a message naming the
JSON path and the rule.

Nothing here knows about a particular resource provider: a :class:`SwaggerSpec` is
built from any spec file (ACI today, ACR later) and answers three questions:

* which operation does ``METHOD /path`` match, with which path parameters
  (:meth:`SwaggerSpec.match`);
* are the path and query parameters valid (:meth:`SwaggerSpec.check_parameters`);
* is the body valid against the operation's body schema
  (:meth:`SwaggerSpec.validate_body`).

Conversion rules from Swagger definitions to JSON Schema (draft 2020-12):

* ``#/definitions/X`` becomes ``#/$defs/X``;
* ``allOf`` is merged into one object (properties and required lists unioned), so
  objects can be *closed* (``additionalProperties: false``) without JSON Schema's
  ``allOf`` pitfall of rejecting the other branch's properties;
* read-only properties are dropped from ``required`` (clients never send them) but
  stay allowed, as ARM ignores them on input;
* a definition with a ``discriminator`` accepts exactly its known subtypes
  (``x-ms-discriminator-value`` or the subtype's name) and validates the body as the
  subtype it names;
* enums are compared case-insensitively, as ARM does (``"public"`` is accepted for
  ``"Public"``);
* ``int32``/``int64`` become range checks; ``date-time`` and ``uuid`` are checked.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

SPECS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "azure-specs"
"""Where the shared, read-only Azure REST specs live (``<repo>/../shared/azure-specs``)."""

_HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head")
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_CI_ENUM = "x-enum-ci"


class SpecNotFoundError(FileNotFoundError):
    """The Azure REST spec file the fake server needs is missing."""


@dataclass(frozen=True)
class Problem:
    """One reason a request was rejected.

    :param path: JSON path of the offending value, e.g. ``$.properties.osType``;
        for path and query parameters, the parameter's name.
    :param rule: the rule that failed, e.g. ``required``, ``enum``,
        ``additionalProperties``, ``type``, ``pattern``.
    :param message: human-readable explanation that names the path and the rule.
    """

    path: str
    rule: str
    message: str

    def detail(self, code: str = "InvalidRequestContent") -> dict[str, str]:
        """Render as an entry of an ARM error body's ``details`` list.

        :param code: ARM error code for the entry.
        :return: ``{"code", "target", "message"}``.
        """
        return {"code": code, "target": self.path, "message": self.message}


@dataclass(frozen=True)
class Operation:
    """One operation of a Swagger spec, ready for routing.

    :param operation_id: the spec's ``operationId``, e.g. ``ContainerGroups_Get``.
    :param method: upper-case HTTP method.
    :param template: the path template as written in the spec.
    :param regex: compiled, case-insensitive regex matching concrete paths; its named
        groups are the path parameters in template order.
    :param parameters: resolved Swagger parameter objects (path, query, body, header).
    :param long_running: the spec marks it ``x-ms-long-running-operation``.
    """

    operation_id: str
    method: str
    template: str
    regex: re.Pattern[str]
    parameters: tuple[Mapping[str, Any], ...]
    long_running: bool

    @property
    def body_parameter(self) -> Mapping[str, Any] | None:
        """The ``in: body`` parameter, if the operation takes a body."""
        return next((p for p in self.parameters if p.get("in") == "body"), None)

    @property
    def path_parameter_names(self) -> tuple[str, ...]:
        """Names of the path parameters, in template order."""
        return tuple(re.findall(r"{([^}]+)}", self.template))


@dataclass
class SwaggerSpec:
    """A loaded Swagger 2.0 spec with routing and validation helpers.

    Build one with :meth:`load`; instances are cached per file, since converting the
    definitions takes a few milliseconds and every server start would redo it.

    :param path: the spec file.
    :param document: the parsed Swagger document.
    :param api_version: ``info.version`` of the spec, which every request's
        ``api-version`` query parameter must equal.
    :param operations: every operation in the spec.
    :param schema_defs: all definitions converted to JSON Schema, keyed by name.
    """

    path: Path
    document: Mapping[str, Any]
    api_version: str
    operations: tuple[Operation, ...]
    schema_defs: dict[str, Any]
    _validators: dict[str, Validator] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: Path | str) -> SwaggerSpec:
        """Load and convert a spec file (cached per resolved path).

        :param path: a Swagger 2.0 JSON file, e.g. ``SPECS_DIR /
            "containerinstance-2023-05-01.json"``.
        :return: the loaded spec.
        :raises SpecNotFoundError: the file does not exist; the message says where the
            specs are expected.
        """
        return _load_cached(Path(path).resolve())

    def operation(self, operation_id: str) -> Operation:
        """Look an operation up by ``operationId``.

        :param operation_id: e.g. ``ContainerGroups_CreateOrUpdate``.
        :return: the operation.
        :raises KeyError: the spec has no such operation.
        """
        for op in self.operations:
            if op.operation_id == operation_id:
                return op
        raise KeyError(f"{self.path.name} has no operation {operation_id!r}")

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """Find the operation serving ``method path``.

        Matching is case-insensitive, as ARM's is. Literal templates win over
        templates with more parameters, so ``.../containerGroups/{name}`` never
        shadows a literal sibling.

        :param method: HTTP method, any case.
        :param path: URL path, already percent-decoded per segment is not required:
            parameters are decoded after matching.
        :return: the operation and its decoded path parameters, or ``None``.
        """
        from urllib.parse import unquote

        candidates = []
        for op in self.operations:
            if op.method != method.upper():
                continue
            m = op.regex.fullmatch(path.rstrip("/") or "/")
            if m:
                candidates.append((len(op.path_parameter_names), op, m))
        if not candidates:
            return None
        candidates.sort(key=lambda c: c[0])
        _, op, m = candidates[0]
        return op, {k: unquote(v) for k, v in m.groupdict().items()}

    def check_parameters(
        self, operation: Operation, path_params: Mapping[str, str], query: Mapping[str, str]
    ) -> list[Problem]:
        """Check path and query parameters against the operation's declarations.

        ``api-version`` is checked by the server (it answers with ARM's dedicated
        error codes), so it is skipped here.

        :param operation: the matched operation.
        :param path_params: decoded path parameters from :meth:`match`.
        :param query: query parameters (first value of each).
        :return: problems found, empty when the parameters are valid.
        """
        problems: list[Problem] = []
        lowered_query = {k.lower(): v for k, v in query.items()}
        for param in operation.parameters:
            name = str(param.get("name", ""))
            where = param.get("in")
            if name == "api-version" or where not in ("path", "query"):
                continue
            if where == "path":
                raw: str | None = path_params.get(name)
            else:
                raw = lowered_query.get(name.lower())
            if raw is None:
                if param.get("required"):
                    problems.append(
                        Problem(name, "required", f"{where} parameter '{name}' is required")
                    )
                continue
            problems.extend(_check_scalar_parameter(param, raw))
        return problems

    def validate_body(self, operation: Operation | str, body: Any) -> list[Problem]:
        """Validate a parsed JSON body against the operation's body schema.

        :param operation: the operation or its ``operationId``.
        :param body: the parsed JSON body; ``None`` means no body was sent.
        :return: problems found, empty when the body is valid (or the operation takes
            no body and none was sent).
        """
        op = self.operation(operation) if isinstance(operation, str) else operation
        param = op.body_parameter
        if param is None:
            return []
        if body is None:
            if param.get("required"):
                return [Problem("$", "required", "$: a request body is required (rule: required)")]
            return []
        validator = self._validator_for(op, param)
        problems = [p for error in validator.iter_errors(body) for p in _problems_from(error)]
        # Deterministic order keeps messages stable for tests and humans.
        return sorted(set(problems), key=lambda p: (p.path, p.rule, p.message))

    def _validator_for(self, op: Operation, param: Mapping[str, Any]) -> Validator:
        cached = self._validators.get(op.operation_id)
        if cached is None:
            root = _convert(param.get("schema", {}), self.document.get("definitions", {}))
            root["$defs"] = self.schema_defs
            cached = _VALIDATOR_CLASS(root, format_checker=_FORMATS)
            self._validators[op.operation_id] = cached
        return cached


@cache
def _load_cached(path: Path) -> SwaggerSpec:
    if not path.is_file():
        raise SpecNotFoundError(
            f"Azure REST spec {path} not found: the fake ARM server validates requests "
            f"against it; restore {path.parent} (see SOURCES.md there)"
        )
    document = json.loads(path.read_text(encoding="utf-8"))
    definitions: Mapping[str, Any] = document.get("definitions", {})
    shared_params: Mapping[str, Any] = document.get("parameters", {})
    operations: list[Operation] = []
    for template, item in document.get("paths", {}).items():
        common = [_resolve_param(p, shared_params) for p in item.get("parameters", [])]
        for method in _HTTP_METHODS:
            raw_op = item.get(method)
            if raw_op is None:
                continue
            own = [_resolve_param(p, shared_params) for p in raw_op.get("parameters", [])]
            params = common + own
            operations.append(
                Operation(
                    operation_id=raw_op["operationId"],
                    method=method.upper(),
                    template=template,
                    regex=_template_regex(template),
                    parameters=tuple(params),
                    long_running=bool(raw_op.get("x-ms-long-running-operation")),
                )
            )
    schema_defs = {name: _convert_definition(name, definitions) for name in definitions}
    return SwaggerSpec(
        path=path,
        document=document,
        api_version=str(document["info"]["version"]),
        operations=tuple(operations),
        schema_defs=schema_defs,
    )


def _resolve_param(param: Mapping[str, Any], shared: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = param.get("$ref")
    if ref is None:
        return param
    return dict(shared[ref.rsplit("/", 1)[-1]])


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"({[^}]+})", template.rstrip("/"))
    pattern = "".join(
        f"(?P<{_group_name(p[1:-1])}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts
    )
    return re.compile(pattern, re.IGNORECASE)


def _group_name(param_name: str) -> str:
    # Regex group names must be identifiers; ARM parameter names already are.
    if not param_name.isidentifier():
        raise ValueError(f"path parameter {param_name!r} is not a valid identifier")
    return param_name


def _check_scalar_parameter(param: Mapping[str, Any], raw: str) -> list[Problem]:
    name = str(param["name"])
    kind = param.get("type", "string")
    problems: list[Problem] = []

    def bad(rule: str, why: str) -> None:
        problems.append(Problem(name, rule, f"parameter '{name}' = {raw!r} {why} (rule: {rule})"))

    if kind == "integer":
        try:
            value = int(raw)
        except ValueError:
            bad("type", "is not an integer")
            return problems
        if "minimum" in param and value < param["minimum"]:
            bad("minimum", f"is below {param['minimum']}")
        if "maximum" in param and value > param["maximum"]:
            bad("maximum", f"is above {param['maximum']}")
    elif kind == "boolean":
        if raw.lower() not in ("true", "false"):
            bad("type", "is not a boolean (true or false)")
    else:
        if "pattern" in param and not re.search(param["pattern"], raw):
            bad("pattern", f"does not match {param['pattern']!r}")
        if "minLength" in param and len(raw) < param["minLength"]:
            bad("minLength", f"is shorter than {param['minLength']} characters")
        if "maxLength" in param and len(raw) > param["maxLength"]:
            bad("maxLength", f"is longer than {param['maxLength']} characters")
        enum = param.get("enum")
        if enum and raw.lower() not in {str(e).lower() for e in enum}:
            bad("enum", f"is not one of {enum}")
    return problems


# --- Swagger -> JSON Schema -------------------------------------------------------


def _ref_name(ref: str) -> str:
    if not ref.startswith("#/definitions/"):
        raise ValueError(f"only local #/definitions refs are supported, got {ref!r}")
    return ref.removeprefix("#/definitions/")


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
                parent = _ref_name(part["$ref"])
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
    return seen


def _convert_definition(name: str, definitions: Mapping[str, Any]) -> dict[str, Any]:
    definition = definitions[name]
    discriminator = definition.get("discriminator")
    if not discriminator:
        return _convert(definition, definitions)
    subtypes = _subtypes(name, definitions)
    # A polymorphic base accepts only its concrete subtypes, each validated closed.
    branches: list[dict[str, Any]] = [
        {
            "if": {"properties": {discriminator: {"const": value}}, "required": [discriminator]},
            "then": _convert(
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


def _convert(
    schema: Mapping[str, Any],
    definitions: Mapping[str, Any],
    discriminator_value: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Convert one Swagger schema object (not following $refs, which stay refs)."""
    if "$ref" in schema and "allOf" not in schema:
        return {"$ref": "#/$defs/" + _ref_name(schema["$ref"])}

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
        # Case-insensitive match, as ARM does; the keyword is ours (see _VALIDATOR_CLASS).
        out[_CI_ENUM] = list(merged["enum"])
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
        out["items"] = _convert(merged["items"], definitions)

    if kind == "object":
        props: Mapping[str, Any] = merged.get("properties", {})
        out["properties"] = {k: _convert(v, definitions) for k, v in props.items()}
        if discriminator_value is not None:
            prop, value = discriminator_value
            out["properties"][prop] = {"type": "string", "const": value}
        required = [r for r in merged.get("required", []) if not props.get(r, {}).get("readOnly")]
        if required:
            out["required"] = sorted(set(required))
        additional = merged.get("additionalProperties")
        if isinstance(additional, Mapping):
            out["additionalProperties"] = _convert(additional, definitions)
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
        resolved = definitions[_ref_name(part["$ref"])] if "$ref" in part else part
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


def _enum_ci(
    validator: Validator, enums: list[Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if isinstance(instance, str):
        if instance.lower() in {str(e).lower() for e in enums}:
            return
    elif instance in enums:
        return
    yield ValidationError(f"{instance!r} is not one of {enums} (compared case-insensitively)")


def _is_datetime(value: object) -> bool:
    if isinstance(value, str):
        dt.datetime.fromisoformat(value)
    return True


def _is_uuid(value: object) -> bool:
    if isinstance(value, str):
        uuid.UUID(value)
    return True


_VALIDATOR_CLASS: type[Validator] = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {_CI_ENUM: _enum_ci}
)
_FORMATS = FormatChecker(formats=())
_FORMATS.checks("date-time", raises=ValueError)(_is_datetime)
_FORMATS.checks("uuid", raises=ValueError)(_is_uuid)


def _problems_from(error: ValidationError) -> list[Problem]:
    path = error.json_path
    rule = "enum" if error.validator == _CI_ENUM else str(error.validator)
    if rule == "additionalProperties" and isinstance(error.instance, Mapping):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        known = sorted(schema.get("properties", {}))
        extras = [k for k in error.instance if k not in known]
        return [
            Problem(
                f"{path}.{extra}",
                rule,
                f"{path}.{extra}: unknown property {extra!r} (rule: additionalProperties; "
                f"known properties here: {', '.join(known) or 'none'})",
            )
            for extra in extras
        ]
    if rule == "required" and isinstance(error.instance, Mapping):
        required = error.validator_value if isinstance(error.validator_value, list) else []
        missing = [r for r in required if r not in error.instance]
        return [
            Problem(
                f"{path}.{name}",
                rule,
                f"{path}.{name}: required property is missing (rule: required)",
            )
            for name in missing
        ]
    return [Problem(path, rule, f"{path}: {error.message} (rule: {rule})")]


def deep_copy_json(value: Any) -> Any:
    """Copy a JSON-like value so stored state never aliases a request or response.

    :param value: any JSON-compatible value.
    :return: an independent deep copy.
    """
    return copy.deepcopy(value)
