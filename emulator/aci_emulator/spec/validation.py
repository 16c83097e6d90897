"""Body validation: the JSON Schema validator ARM's rules need, and readable problems.

The validator is Draft 2020-12 plus :data:`~.schema.CI_ENUM` (case-insensitive enums) and
the ``date-time`` and ``uuid`` formats. :func:`problems_from` turns its errors into
:class:`Problem` s whose messages name the JSON path and the rule, e.g.
``$.properties.containers[0].properties.resources.requests.cpuu: unknown property 'cpuu'``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from .schema import CI_ENUM


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


VALIDATOR_CLASS: type[Validator] = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {CI_ENUM: _enum_ci}
)
"""Draft 2020-12 with case-insensitive enums."""
FORMATS = FormatChecker(formats=())
FORMATS.checks("date-time", raises=ValueError)(_is_datetime)
FORMATS.checks("uuid", raises=ValueError)(_is_uuid)
"""The formats checked: ``date-time`` and ``uuid``."""


def problems_from(error: ValidationError) -> list[Problem]:
    """The problems one validation error stands for, each naming its JSON path and rule.

    :param error: an error of :data:`VALIDATOR_CLASS`.
    :return: one problem per unknown or missing property, else one.
    """
    path = error.json_path
    rule = "enum" if error.validator == CI_ENUM else str(error.validator)
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
