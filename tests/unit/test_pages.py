"""How an API list cuts a page (`hub.api.common.cursor_after`, `page_of`), as a property:
following `next_cursor` from the first page gives every row once, in order, and the last
page says so."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.api.common import bounded_int, cursor_after, encode_cursor, page_of
from hub.api.problems import Problem


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 10_000), unique=True), st.integers(1, 7))
def test_following_the_cursors_gives_every_row_once(rows: list[int], limit: int) -> None:
    rows.sort()
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        after = cursor_after(cursor, bounded_int)
        found = [r for r in rows if after is None or r > after][:limit + 1]  # a use case's read
        page, cursor = page_of(found, limit, lambda r: (r,))
        assert len(page) <= limit
        seen += page
        pages += 1
        if cursor is None:
            break
    assert seen == rows
    assert pages == max(1, -(-len(rows) // limit))  # no empty page after a full one


def test_an_empty_cursor_is_the_first_page_and_parts_come_back_typed() -> None:
    assert cursor_after("", int) is None
    assert cursor_after(None, int) is None
    assert cursor_after(encode_cursor(7), int) == 7
    assert cursor_after(encode_cursor(7, "x"), int, str) == (7, "x")


def test_a_cursor_of_another_shape_is_refused() -> None:
    with pytest.raises(Problem):
        cursor_after(encode_cursor(7, 8), int)
