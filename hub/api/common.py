"""Pieces every API blueprint uses: the blueprint class, fields, pagination cursors, ETags,
the caller, and CSV downloads (the portal's too)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import flask_smorest
from flask import Response, current_app, request
from marshmallow import Schema, ValidationError, fields, pre_load, validate

from hub.adapters.spreadsheet import csv_text
from hub.api.bodies import BodyParser
from hub.api.problems import Problem
from hub.db import MAX_ID, db, iso_utc
from hub.errors import ConcurrentChange

MAX_LIMIT = 500
# What `encode_cursor` writes: unpadded URL-safe base64.
CURSOR_PATTERN = "^[A-Za-z0-9_-]{0,2000}$"

T = TypeVar("T")


class Blueprint(flask_smorest.Blueprint):
    """Every API blueprint: its schemas read JSON bodies through the app's JSON provider,
    parsed once and under the limits of `hub.api.bodies`."""

    ARGUMENTS_PARSER = BodyParser()


class Timestamp(fields.DateTime):
    """An ISO 8601 UTC timestamp ending in Z; values already rendered pass through."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return iso_utc(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        try:
            return moment.astimezone(UTC)
        except OverflowError:  # e.g. year 1 at +05:00 has no UTC equivalent
            raise ValidationError("Out of the range of dates the hub handles.") from None


def _nul_fields(data: Any, prefix: str = "") -> list[str]:
    if isinstance(data, str):
        return [prefix or "_schema"] if "\x00" in data else []
    if isinstance(data, dict):
        return [f for k, v in data.items() for f in _nul_fields(v, f"{prefix}.{k}" if prefix
                                                                     else str(k))]
    if isinstance(data, list):
        return [f for item in data for f in _nul_fields(item, prefix)]
    return []


class Input(Schema):
    """Base of every request schema: refuses NUL characters, which no database stores."""

    @pre_load
    def _refuse_nul(self, data: Any, **kwargs: Any) -> Any:
        if hasattr(data, "to_dict"):  # query strings arrive as a MultiDict
            data = data.to_dict()
        bad = _nul_fields(data)
        if bad:
            raise ValidationError({name: ["Must not contain NUL (\\u0000) characters."]
                                   for name in bad})
        return data


class PageArgs(Input):
    limit = fields.Integer(
        load_default=50,
        validate=validate.Range(1, MAX_LIMIT),
        metadata={"description": f"Items per page, 1 to {MAX_LIMIT} (default 50)."},
    )
    cursor = fields.String(
        load_default=None,
        metadata={"description": "The `next_cursor` of the previous page, as it was given "
                                 "(absent or empty: the first page); a cursor is made by its "
                                 "list and refused (400) by another.",
                  "pattern": CURSOR_PATTERN},
    )


def encode_cursor(*parts: Any) -> str:
    raw = json.dumps([str(p) for p in parts], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def aware_datetime(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    try:
        return moment.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("out of range") from error


def bounded_int(value: str) -> int:
    """A cursor's integer part, refused (ValueError) outside what a database id can be."""
    number = int(value)
    if not 0 <= number <= MAX_ID:
        raise ValueError("out of range")
    return number


def decode_cursor(cursor: str, *converters: Callable[[str], Any]) -> list[Any]:
    """The parts of a cursor made by `encode_cursor`, each passed through its converter
    (e.g. `uuid.UUID`), or a 400 problem: a tampered cursor is bad input, never a 500."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if isinstance(parts, list) and len(parts) == len(converters) and all(
            isinstance(p, str) for p in parts
        ):
            return [convert(part) for convert, part in zip(converters, parts, strict=True)]
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise Problem(
        400, "Invalid cursor",
        "This cursor was not made by this list. Start again without `cursor`, then pass the "
        "`next_cursor` of each page.",
        errors={"cursor": ["Not a cursor of this list."]},
    )


def cursor_after(cursor: str | None, *converters: Callable[[str], Any]) -> Any:
    """Where a page starts: None for the first page (no cursor, or an empty one), else the
    cursor's parts through `decode_cursor` (400 `invalid-cursor` when tampered): the part
    itself for a one-part cursor, a tuple of them for more."""
    if not cursor:
        return None
    parts = decode_cursor(cursor, *converters)
    return parts[0] if len(parts) == 1 else tuple(parts)


def page_of(found: Sequence[T], limit: int, position: Callable[[T], Sequence[Any]]
            ) -> tuple[list[T], str | None]:
    """The page in `found` and the cursor of the next one.

    `found` is read with `limit + 1`: the extra row only tells that another page follows.
    The next cursor is `position` of the page's last row (what `cursor_after` decodes for
    the next read), None on the last page."""
    page = list(found[:limit])
    next_cursor = encode_cursor(*position(page[-1])) if len(found) > limit else None
    return page, next_cursor


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version() -> int | None:
    """The version named by `If-Match`, None when absent or `*`."""
    value = request.headers.get("If-Match")
    if value is None or value.strip() == "*":
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    if not (tag.isascii() and tag.isdigit() and len(tag) <= 18):
        raise Problem(
            400, "Invalid If-Match",
            'If-Match must be the ETag the hub sent for this object, for example If-Match: "3".',
        )
    return int(tag)


def pseudonym_key() -> bytes:
    return current_app.config["HUB_SETTINGS"].secret_key.encode()


def retrying(work: Callable[[], T]) -> T:
    """Run a write again when it lost a race (the retry then sees the winner's change)."""
    for _ in range(3):
        try:
            return work()
        except ConcurrentChange:
            db.session.rollback()
    return work()


def csv_download(filename: str, titles: Sequence[str], rows: Iterable[Sequence[Any]]
                 ) -> Response:
    """A CSV file to download, from the API or the portal: `csv_text` (a byte-order mark for
    Excel, typed text never read as a formula) as an attachment named `filename`."""
    return Response(csv_text(titles, rows), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})
