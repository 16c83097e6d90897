"""Azure REST specs: Swagger loading and routing (:mod:`.swagger`), ``$ref`` resolution
(:mod:`.refs`), conversion to JSON Schema (:mod:`.schema`) and body validation
(:mod:`.validation`). Nothing here knows a particular resource provider."""

from .refs import UnsupportedRefError
from .swagger import (
    SPECS_DIR,
    SPECS_ENV,
    Operation,
    SpecNotFoundError,
    SwaggerSpec,
    specs_dir,
)
from .validation import Problem

__all__ = [
    "SPECS_DIR",
    "SPECS_ENV",
    "Operation",
    "Problem",
    "SpecNotFoundError",
    "SwaggerSpec",
    "UnsupportedRefError",
    "specs_dir",
]
