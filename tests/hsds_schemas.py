"""Validation against the HSDS 3.0 schemas kept under tests/data/hsds (see its README)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

SCHEMAS = Path(__file__).parent / "data" / "hsds"


def _registry() -> Registry:
    resources = []
    for path in SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def hsds_errors(organization: dict[str, Any]) -> list[str]:
    """Every way `organization` departs from HSDS 3.0's organization schema."""
    schema = json.loads((SCHEMAS / "organization.json").read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema, registry=_registry(), format_checker=FormatChecker())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(organization)]
