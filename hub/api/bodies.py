"""JSON bodies parsed once, by whoever reads them, under the hub's limits.

Python's parser fails in ways the views do not expect: nesting a few thousand brackets deep
exhausts its recursion, an integer literal longer than 4,300 digits is a ValueError, and an
escaped lone surrogate (`"\\ud800"`) becomes a string no encoder accepts, which fails later in a
blind index or the database.  Each is a client's mistake, answered with a 400 problem.

The limits live in the app's JSON provider (`app.json`, set by `hub.api.app`): every
`request.get_json()` goes through it, and so do the API's schemas, whose argument parser
(`BodyParser`, the parser of `hub.api.common.Blueprint`) reads the body with `get_json` too.
Flask caches the document on the request: a body read by the idempotency fingerprint and by
the view is parsed once.  The refusals are `Problem`s, not ValueErrors, so that even
`get_json(silent=True)` (the signed inbound webhook) answers them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import flask
from flask.json.provider import DefaultJSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from hub.api.problems import Problem

# Deeper than any body of the API (a directory entry is about four levels), far below the
# parser's recursion limit.
MAX_DEPTH = 32
# Longer than any number of the API; short enough to convert in no time.
MAX_INTEGER_DIGITS = 100
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


def parse_json(raw: str | bytes) -> Any:
    """The document in `raw`, or a 400 problem saying what is wrong with it."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
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


class LimitedJSONProvider(DefaultJSONProvider):
    """The app's JSON: documents read under the limits above (`parse_json`)."""

    ensure_ascii = False  # accents as they are: "Montréal", not "Montr\u00e9al"

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return parse_json(s)


class BodyParser(FlaskParser):
    """webargs' parser for Flask, reading JSON bodies with `request.get_json` (so through
    `LimitedJSONProvider`, and once per request) instead of its own `json.loads`."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req) or not req.get_data(cache=True):
            return core.missing  # no body: the schema's defaults, as webargs does
        return req.get_json(force=True)
