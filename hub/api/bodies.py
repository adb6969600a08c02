"""JSON bodies checked once, before any view reads them.

Python's parser fails in ways the views do not expect: nesting a few thousand brackets deep
exhausts its recursion, an integer literal longer than 4,300 digits is a ValueError, and an
escaped lone surrogate (`"\\ud800"`) becomes a string no encoder accepts, which fails later in a
blind index or the database.  Each is a client's mistake: this guard answers it with a 400
problem on every JSON route (and the signed inbound webhook, which reads any body as JSON),
so a new endpoint is covered without doing anything.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import request

from hub.api.problems import Problem

# Deeper than any body of the API (a directory entry is about four levels), far below the
# parser's recursion limit.
MAX_DEPTH = 32
# Longer than any number of the API; short enough to convert in no time.
MAX_INTEGER_DIGITS = 100
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_SURROGATE = re.compile("[\ud800-\udfff]")


class _TooManyDigits(ValueError):
    pass


def _integer(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _TooManyDigits
    return int(literal)


def _refuse(title: str, detail: str) -> Problem:
    return Problem(400, title, detail, slug="malformed-json")


def _depth_and_text(document: Any) -> tuple[int, str | None]:
    """How deep `document` nests, and its first string (key or value) holding a lone
    surrogate; iterative, so depth costs no recursion."""
    depth = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return depth, value
        elif isinstance(value, dict):
            depth = max(depth, level)
            stack.extend((key, level) for key in value)
            stack.extend((item, level + 1) for item in value.values())
        elif isinstance(value, list):
            depth = max(depth, level)
            stack.extend((item, level + 1) for item in value)
    return depth, None


def parse_json(raw: bytes) -> Any:
    """The document in `raw`, or a 400 problem saying what is wrong with it."""
    try:
        text = raw.decode("utf-8")
        document = json.loads(text, parse_int=_integer)
    except RecursionError:
        raise _refuse("JSON nested too deeply",
                      f"The body is nested too deeply: at most {MAX_DEPTH} levels of objects "
                      "and arrays.") from None
    except _TooManyDigits:
        raise _refuse("Number too long", f"An integer in the body has more than "
                      f"{MAX_INTEGER_DIGITS} digits.") from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _refuse("Malformed JSON",
                      "The request body is not valid JSON. Check quotes, commas and brackets, "
                      "and that it is UTF-8.") from None
    depth, bad_text = _depth_and_text(document)
    if depth > MAX_DEPTH:
        raise _refuse("JSON nested too deeply",
                      f"The body is nested too deeply ({depth} levels): at most {MAX_DEPTH} "
                      "levels of objects and arrays.")
    if bad_text is not None:
        raise _refuse("Invalid Unicode text",
                      "A string in the body holds a lone surrogate (an escape such as \\ud800 "
                      f"without its pair), which is not Unicode text: {bad_text[:40]!r}. Send "
                      "characters outside the BMP as one escape pair or as UTF-8.")
    return document


def check_json_body() -> None:
    """Before every request: a JSON body the API will read must parse safely (see above).

    Bodies of other types on the API are refused earlier (415); `/webhooks/` reads any body as
    JSON, whatever its Content-Type."""
    if request.method not in BODY_METHODS:
        return
    path = request.path
    json_typed = request.mimetype == "application/json" or request.mimetype.endswith("+json")
    if not (path.startswith("/webhooks/") or (path.startswith("/api/") and json_typed)):
        return
    raw = request.get_data(cache=True)
    if raw.strip():
        parse_json(raw)
