"""Validation against the official FHIR R4 JSON schema kept under tests/data/fhir (see its
README): the R4 (4.0) definition of every resource, with its value sets for statuses and no
element it does not name."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft6Validator

SCHEMA = Path(__file__).parent / "data" / "fhir" / "fhir.schema.json"


@cache
def _validators() -> dict[str, Draft6Validator]:
    """One validator per resource type: validating against the schema's root `oneOf` of every
    resource would bury the one relevant error under a hundred others."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    root = {key: value for key, value in schema.items() if key not in ("oneOf", "discriminator")}
    validators = {}
    for name in schema["discriminator"]["mapping"]:
        validators[name] = Draft6Validator({**root, "$ref": f"#/definitions/{name}"})
    return validators


def fhir_r4_errors(resource: dict[str, Any]) -> list[str]:
    """Every way `resource` (a Bundle's entries included) departs from FHIR R4."""
    validators = _validators()
    kind = resource.get("resourceType")
    if kind not in validators:
        return [f"resourceType: {kind!r} is not an R4 resource"]
    errors = [f"{kind}/{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validators[kind].iter_errors(resource)]
    for n, entry in enumerate(resource.get("entry") or [] if kind == "Bundle" else []):
        inner = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(inner, dict):  # the Bundle's schema checks entries only loosely
            errors += [f"entry/{n}/{message}" for message in fhir_r4_errors(inner)]
    return errors
