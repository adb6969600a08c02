"""Spreadsheets as counsellors keep them: CSV (comma or semicolon, UTF-8 or Windows-1252, as
Excel writes them in Québec) and XLSX (first sheet), read as (line number, row) pairs with the
header row's titles as keys; and written back, for exports and tests.

Cells keep their types from XLSX (an Excel date is a `datetime`); from CSV they are strings.
Empty cells are None either way.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
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


# A grid may open with a title line or two ("Grille des partenaires — 2025") above its header:
# the header is the first row that `is_header` accepts (by default, one with at least two
# different titles; the directory's import asks for titles it knows), looked for this far down.
HEADER_SEARCH_ROWS = 10

HeaderTest = Callable[[Sequence[Any]], bool]


def _is_header(cells: Sequence[Any]) -> bool:
    return len({str(c).strip() for c in cells if c is not None and str(c).strip()}) >= 2


def read_csv(path: Path, is_header: HeaderTest = _is_header) -> Iterator[tuple[int, Row]]:
    text = _decode(path.read_bytes())
    first_lines = text.split("\n", HEADER_SEARCH_ROWS)[:HEADER_SEARCH_ROWS]
    semicolons = max(line.count(";") for line in first_lines)
    commas = max(line.count(",") for line in first_lines)
    delimiter = ";" if semicolons > commas else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = None
    for _ in range(HEADER_SEARCH_ROWS):
        header = next(reader, None)
        if header is None or is_header(header):
            break
    if not header or not is_header(header):
        raise UnreadableGrid("The file has no header row (a row naming the columns, such as "
                             "Organisme;Région;Services).")
    titles = [h.strip() for h in header]
    start = reader.line_num + 1
    for cells in reader:
        # line_num is the line a record ends on; a quoted cell may span several lines.
        line, start = start, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        yield line, {t: _cell(c) for t, c in zip(titles, cells, strict=False) if t}


_MERGE_CELL = re.compile(rb'<(?:\w+:)?mergeCell\b[^>]*\bref="([A-Z]+\d+:[A-Z]+\d+)"')


def _merged_ranges(path: Path, worksheet: Any) -> list[tuple[int, int, int, int]]:
    """The sheet's merged cells as (min_col, min_row, max_col, max_row).  Read from the
    sheet's XML: openpyxl's read-only mode, which keeps a large grid fast, does not give them."""
    from openpyxl.utils.cell import range_boundaries

    sheet_path = getattr(worksheet, "_worksheet_path", None)
    if sheet_path is None:
        return []
    with zipfile.ZipFile(path) as archive:
        xml = archive.read(sheet_path.lstrip("/"))
    ranges = []
    for ref in _MERGE_CELL.findall(xml):
        min_col, min_row, max_col, max_row = range_boundaries(ref.decode())
        ranges.append((min_col or 1, min_row or 1, max_col or 1, max_row or 1))
    return ranges


def read_xlsx(path: Path, is_header: HeaderTest = _is_header) -> Iterator[tuple[int, Row]]:
    """The first sheet's rows.  A merged cell (a region written once beside the rows of its
    organizations, as counsellors do) gives its value to every row it spans."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, KeyError, OSError, ValueError,
            zipfile.BadZipFile) as error:
        raise UnreadableGrid(f"Not an XLSX workbook: {error}") from error
    try:
        sheet = workbook.worksheets[0]
        merged = _merged_ranges(path, sheet)
        # (row, column) of each cell a merge covers → the merge's top-left cell.
        spanned = {(row, col): (top, left)
                   for left, top, right, bottom in merged
                   for row in range(top, bottom + 1) for col in range(left, right + 1)
                   if (row, col) != (top, left)}
        top_lefts = {(top, left) for left, top, _, _ in merged}
        top_left_values: dict[tuple[int, int], Any] = {}
        titles: list[str] | None = None
        for line, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            values = [_cell(c) for c in cells]
            for col, value in enumerate(values, start=1):
                if (line, col) in spanned:
                    values[col - 1] = top_left_values.get(spanned[(line, col)])
                elif (line, col) in top_lefts:
                    top_left_values[(line, col)] = value
            if titles is None:
                # Before the header, a merged title row spans the columns with one text.
                if is_header(cells):
                    titles = [str(h).strip() if h is not None else "" for h in cells]
                elif line >= HEADER_SEARCH_ROWS:
                    break
                continue
            if all(v is None for v in values):
                continue
            yield line, {t: v for t, v in zip(titles, values, strict=False) if t}
        if titles is None:
            raise UnreadableGrid("The first sheet has no header row (a row naming the "
                                 "columns, such as Organisme, Région, Services).")
    finally:
        workbook.close()


def read_grid(path: Path, is_header: HeaderTest = _is_header) -> Iterator[tuple[int, Row]]:
    """The rows of a CSV or XLSX file, by extension, each with its line number in the file."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return read_xlsx(path, is_header)
    if suffix in (".csv", ".txt"):
        return read_csv(path, is_header)
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
