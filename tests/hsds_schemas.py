"""Validation against the HSDS 3.0 schemas kept under tests/data/hsds (see its README).

Two checks: the schemas as the specification writes them (which allow any extra property),
and a strict reading of them that also refuses a property the specification does not name
unless it is an `x_` extension, so a misspelt HSDS field cannot slip through as "extra"."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

SCHEMAS = Path(__file__).parent / "data" / "hsds"


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    strict = copy.deepcopy(schema)
    strict["patternProperties"] = {"^x_": {}}
    strict["additionalProperties"] = False
    return strict


def _validator(strict: bool) -> Draft202012Validator:
    schemas = {path.name: json.loads(path.read_text(encoding="utf-8"))
               for path in SCHEMAS.glob("*.json")}
    if strict:
        schemas = {name: _strict(schema) for name, schema in schemas.items()}
    registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values())
    return Draft202012Validator(schemas["organization.json"], registry=registry,
                                format_checker=FormatChecker())


def hsds_errors(organization: dict[str, Any]) -> list[str]:
    """Every way `organization` departs from HSDS 3.0's organization schema, or names a
    property HSDS does not define (outside `x_` extensions)."""
    errors = []
    for strict in (False, True):
        errors += [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                   for e in _validator(strict).iter_errors(organization)]
    return list(dict.fromkeys(errors))
