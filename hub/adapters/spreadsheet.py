"""Spreadsheets as counsellors keep them: CSV (comma or semicolon, UTF-8 or Windows-1252, as
Excel writes them in Québec) and XLSX (first sheet), read as (line number, row) pairs with the
header row's titles as keys; and written back, for exports and tests.

Cells keep their types from XLSX (an Excel date is a `datetime`); from CSV they are strings.
Empty cells are None either way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

Row = dict[str, Any]


class UnreadableGrid(Exception):
    """The file is not a CSV or XLSX grid with a header row."""


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")  # never fails; odd letters are better than no import


def read_csv(path: Path) -> Iterator[tuple[int, Row]]:
    text = _decode(path.read_bytes())
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise UnreadableGrid("The file has no header row.")
    titles = [h.strip() for h in header]
    start = reader.line_num + 1
    for cells in reader:
        # line_num is the line a record ends on; a quoted cell may span several lines.
        line, start = start, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        yield line, {t: _cell(c) for t, c in zip(titles, cells, strict=False) if t}


def read_xlsx(path: Path) -> Iterator[tuple[int, Row]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, KeyError, OSError, ValueError) as error:
        raise UnreadableGrid(f"Not an XLSX workbook: {error}") from error
    try:
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        header = next(rows, None)
        if not header or not any(h for h in header):
            raise UnreadableGrid("The first sheet has no header row.")
        titles = [str(h).strip() if h is not None else "" for h in header]
        for line, cells in enumerate(rows, start=2):
            values = [_cell(c) for c in cells]
            if all(v is None for v in values):
                continue
            yield line, {t: v for t, v in zip(titles, values, strict=False) if t}
    finally:
        workbook.close()


def read_grid(path: Path) -> Iterator[tuple[int, Row]]:
    """The rows of a CSV or XLSX file, by extension, each with its line number in the file."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return read_xlsx(path)
    if suffix in (".csv", ".txt"):
        return read_csv(path)
    raise UnreadableGrid(f"Unknown file type {suffix!r}: give a .csv or .xlsx file.")


def write_grid(path: Path, titles: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Write a header and rows as CSV (UTF-8 with BOM, so Excel reads the accents) or XLSX."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet()
        sheet.append(list(titles))
        for row in rows:
            sheet.append(list(row))
        workbook.save(path)
        return
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(titles)
        writer.writerows(["" if v is None else v for v in row] for row in rows)


# A cell starting with one of these is a formula to a spreadsheet: typed text (an incident's
# circumstances) must not run as one when the export is opened.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(titles: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV download's text: a byte-order mark (Excel then reads the accents), a header row,
    the rows; text that a spreadsheet would take for a formula is quoted with an apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(titles)
    for row in rows:
        writer.writerow(["" if value is None
                         else "'" + value if isinstance(value, str)
                         and value.startswith(_FORMULA_STARTS) else value
                         for value in row])
    return "\ufeff" + out.getvalue()
