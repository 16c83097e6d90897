"""Swagger 2.0 (Azure REST spec) loading, routing and request checks.

The fake ARM server validates every request against the operation it matches in a
published Azure REST spec, so a deployer typo (``cpuu``, ``restartPolicy: "Sometime"``)
fails the same test that would have failed against Azure, with a message naming the
JSON path and the rule.

Nothing here knows about a particular resource provider: a :class:`SwaggerSpec` is
built from any spec file and answers three questions:

* which operation does ``METHOD /path`` match, with which path parameters
  (:meth:`SwaggerSpec.match`);
* are the path and query parameters valid (:meth:`SwaggerSpec.check_parameters`);
* is the body valid against the operation's body schema
  (:meth:`SwaggerSpec.validate_body`).

The conversion of its definitions to JSON Schema is :mod:`.schema`; ``$ref`` s are
resolved by :mod:`.refs`; the validator and its messages are :mod:`.validation`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema.protocols import Validator

from .refs import SpecDocuments
from .schema import Converter
from .validation import FORMATS, VALIDATOR_CLASS, Problem, problems_from

SPECS_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "azure-specs"
"""Where the shared, read-only Azure REST specs live (``<repo>/../shared/azure-specs``)."""

SPECS_ENV = "ACI_EMULATOR_SPECS"
"""Environment variable naming the Azure REST specs directory (default: SPECS_DIR)."""

_HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head")


def specs_dir() -> Path:
    """The Azure REST specs directory: ``$ACI_EMULATOR_SPECS``, else :data:`SPECS_DIR`.

    :return: its path (it may not exist).
    """
    return Path(os.environ.get(SPECS_ENV) or SPECS_DIR)


class SpecNotFoundError(FileNotFoundError):
    """The Azure REST spec file the fake server needs is missing."""


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
    :param body_file: the file its body parameter is defined in (the body schema's refs are
        relative to it); the spec's own file when there is no body.
    """

    operation_id: str
    method: str
    template: str
    regex: re.Pattern[str]
    parameters: tuple[Mapping[str, Any], ...]
    long_running: bool
    body_file: str = ""

    @property
    def literal_length(self) -> int:
        """Characters of the template outside its parameters: the more, the more specific."""
        return len(re.sub(r"{[^}]+}", "", self.template))

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
    :param schema_defs: all definitions converted to JSON Schema, keyed by name (those of
        shared files as ``<file>|<name>``, see :mod:`.refs`).
    :param converter: converts body schemas on demand, adding what they reach to
        ``schema_defs``.
    """

    path: Path
    document: Mapping[str, Any]
    api_version: str
    operations: tuple[Operation, ...]
    schema_defs: dict[str, Any]
    converter: Converter = field(repr=False)
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

        Matching is case-insensitive, as ARM's is. The template with the most literal
        text wins (then the one with fewer parameters), so ``.../containerGroups/{name}``
        never shadows a literal sibling and ``/{scope}/providers/...`` (a scope spans
        segments) never shadows a path of its own.

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
        candidates.sort(key=lambda c: (-c[1].literal_length, c[0]))
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
        problems = [p for error in validator.iter_errors(body) for p in problems_from(error)]
        # Deterministic order keeps messages stable for tests and humans.
        return sorted(set(problems), key=lambda p: (p.path, p.rule, p.message))

    def _validator_for(self, op: Operation, param: Mapping[str, Any]) -> Validator:
        cached = self._validators.get(op.operation_id)
        if cached is None:
            root = self.converter.convert(param.get("schema", {}), op.body_file)
            root["$defs"] = self.schema_defs
            cached = VALIDATOR_CLASS(root, format_checker=FORMATS)
            self._validators[op.operation_id] = cached
        return cached


@cache
def _load_cached(path: Path) -> SwaggerSpec:
    if not path.is_file():
        raise SpecNotFoundError(
            f"Azure REST spec {path} not found: the fake ARM server validates requests "
            f"against it; restore {path.parent} (see SOURCES.md there)"
        )
    documents = SpecDocuments(path)
    document = documents.document(path.name)
    operations: list[Operation] = []
    for template, item in document.get("paths", {}).items():
        if not re.sub(r"{[^}]+}|/", "", template):
            # "/{roleAssignmentId}" (a whole resource id): it matches every path, so it cannot
            # be routed; clients reach the same resources through their scope-and-name paths.
            continue
        common = [documents.parameter(p, path.name) for p in item.get("parameters", [])]
        for method in _HTTP_METHODS:
            raw_op = item.get(method)
            if raw_op is None:
                continue
            own = [documents.parameter(p, path.name) for p in raw_op.get("parameters", [])]
            resolved = common + own
            params = tuple(p for p, _ in resolved)
            body_file = next((f for p, f in resolved if p.get("in") == "body"), path.name)
            operations.append(
                Operation(
                    operation_id=raw_op["operationId"],
                    method=method.upper(),
                    template=template,
                    regex=_template_regex(template, params),
                    parameters=params,
                    long_running=bool(raw_op.get("x-ms-long-running-operation")),
                    body_file=body_file,
                )
            )
    converter = Converter(documents)
    schema_defs = converter.convert_all()
    return SwaggerSpec(
        path=path,
        document=document,
        api_version=str(document["info"]["version"]),
        operations=tuple(operations),
        schema_defs=schema_defs,
        converter=converter,
    )


def _template_regex(template: str, parameters: tuple[Mapping[str, Any], ...]) -> re.Pattern[str]:
    """The regex of a path template. A leading parameter the spec does not URL-encode
    (``/{scope}/providers/...``, ``x-ms-skip-url-encoding``) is a scope: it spans segments."""
    spanning = {
        p["name"]
        for p in parameters
        if p.get("in") == "path"
        and p.get("x-ms-skip-url-encoding")
        and template.startswith("/{" + str(p["name"]) + "}")
    }
    parts = re.split(r"({[^}]+})", template.rstrip("/"))
    pattern = "".join(
        (f"(?P<{_group_name(p[1:-1])}>{'.+' if p[1:-1] in spanning else '[^/]+'})")
        if p.startswith("{")
        else re.escape(p)
        for p in parts
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
