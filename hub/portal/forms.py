"""Reading a posted form with the API's own schemas, so a field is valid in the portal exactly
when it is valid in the API; field errors come back as "check this field" in the user's
language (the schemas' messages are written for developers, in English)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError
from werkzeug.datastructures import MultiDict

LIST_FIELDS = ("needs", "organization_ids")


def load(schema: Schema, form: MultiDict[str, str],
         lists: tuple[str, ...] = LIST_FIELDS) -> tuple[dict[str, Any] | None, set[str]]:
    """The schema's data from the form (empty fields left out), or the names of the bad fields."""
    raw: dict[str, Any] = {}
    for name in schema.fields:
        if name in lists:
            values = [v.strip() for v in form.getlist(name) if v.strip()]
            if values:
                raw[name] = values
        elif name in form and form[name].strip():
            raw[name] = form[name].strip()
    try:
        return schema.load(raw), set()
    except ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {}
        return None, {str(name).split(".")[0] for name in messages}


def lines(text: str | None) -> list[str]:
    """One need per line of a text area."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]
