"""Keyset paging for the portal's long lists (inbox, sent referrals, stalled handoffs, an
endpoint's deliveries, an organization's users): each page starts after the last row of the
previous one, so page 500 costs what page 1 costs, and rows added meanwhile shift nothing.
The position travels in the `after` query parameter (`before` to go back, in `window`),
encoded like the API's cursors (a tampered one is a 400 page, never a 500)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flask import request, url_for
from sqlalchemy import ColumnElement, Select, tuple_
from sqlalchemy.orm import QueryableAttribute

from hub.api.common import decode_cursor, encode_cursor
from hub.db import db

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
    values: dict[str, Any] = {name: value for name, value in request.args.items()
                              if name != "after"}
    return page, url_for(request.endpoint or "", **(request.view_args or {}), **values,
                         after=encode_cursor(*key(page[-1])))


def first_page() -> str | None:
    """The link back to the first page, when this is not it."""
    if "after" not in request.args:
        return None
    values: dict[str, Any] = {name: value for name, value in request.args.items()
                              if name != "after"}
    return url_for(request.endpoint or "", **(request.view_args or {}), **values)


@dataclass
class Window(Generic[Row]):
    """A page of a list read both ways: its rows, and the links to the rows before them
    (`earlier`) and after them (`later`) in the list's order, when there are any."""

    rows: list[Row]
    earlier: str | None
    later: str | None


def window(query: Select[Row], key: Sequence[ColumnElement[Any] | QueryableAttribute[Any]],
           converters: Sequence[Callable[[str], Any]], row_key: Callable[[Row], tuple[Any, ...]],
           *, descending: bool, size: int = PAGE_SIZE,
           view: tuple[str, dict[str, Any]] | None = None) -> Window[Row]:
    """A page of `query` in keyset order along `key` (every column ascending, or every one
    descending), moving forward with `after` or back with `before`; each costs one indexed
    read of `size + 1` rows, wherever it is in the list.

    Going back reads the rows before the position in the opposite order, then turns them
    round, so "newer" after "older" shows exactly the page seen before.  The links lead to
    `view` (endpoint, its arguments), by default the page requested: a form's answer that
    shows the list again names the list's own page.
    """
    endpoint, view_args = view or (request.endpoint or "", request.view_args or {})
    after = position(*converters)
    cursor = request.args.get("before")
    before = decode_cursor(cursor, *converters) if cursor else None
    columns = tuple_(*key)
    backwards = before is not None
    if before is not None:  # backwards
        query = query.where(columns > tuple_(*before) if descending
                            else columns < tuple_(*before))
    elif after is not None:
        query = query.where(columns < tuple_(*after) if descending
                            else columns > tuple_(*after))
    forward_desc = descending != backwards
    found = list(db.session.scalars(query.order_by(
        *(c.desc() if forward_desc else c.asc() for c in key)).limit(size + 1)))
    more = len(found) > size
    rows = found[:size]
    if backwards:
        rows.reverse()
    earlier_more, later_more = (more, True) if backwards else (after is not None, more)

    def link(**at: tuple[Any, ...]) -> str:
        values: dict[str, Any] = {name: value for name, value in request.args.items()
                                  if name not in ("after", "before")}
        values.update({name: encode_cursor(*parts) for name, parts in at.items()})
        return url_for(endpoint, **view_args, **values)

    return Window(rows,
                  earlier=link(before=row_key(rows[0])) if rows and earlier_more
                  else (link() if not rows and (after or before) else None),
                  later=link(after=row_key(rows[-1])) if rows and later_more else None)
