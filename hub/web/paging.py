"""Keyset paging for the portal's long lists (inbox, sent referrals, stalled handoffs): each
page starts after the last row of the previous one, so page 500 costs what page 1 costs, and
rows added meanwhile shift nothing.  The position travels in the `after` query parameter,
encoded like the API's cursors (a tampered one is a 400 page, never a 500)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from flask import request, url_for

from hub.api.common import decode_cursor, encode_cursor

PAGE_SIZE = 100
Row = TypeVar("Row")


def position(*converters: Callable[[str], Any]) -> list[Any] | None:
    """Where the requested page starts: the sort key of the previous page's last row."""
    cursor = request.args.get("after")
    return decode_cursor(cursor, *converters) if cursor else None


def cut(rows: Sequence[Row], key: Callable[[Row], tuple[Any, ...]], size: int = PAGE_SIZE
        ) -> tuple[list[Row], str | None]:
    """The page (`rows` were read with `size + 1`) and the link to the next one, if any."""
    page = list(rows[:size])
    if len(rows) <= size:
        return page, None
    values = {name: value for name, value in request.args.items() if name != "after"}
    return page, url_for(request.endpoint or "", **(request.view_args or {}), **values,
                         after=encode_cursor(*key(page[-1])))


def first_page() -> str | None:
    """The link back to the first page, when this is not it."""
    if "after" not in request.args:
        return None
    values = {name: value for name, value in request.args.items() if name != "after"}
    return url_for(request.endpoint or "", **(request.view_args or {}), **values)
