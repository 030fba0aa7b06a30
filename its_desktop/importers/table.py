"""CSV files as a header and numbered rows, for the 1Password and the generic CSV importers.

RFC 4180 as spreadsheets and exporters write it: quoted cells may span lines (a row is
numbered by the line it starts on), a row whose quotes do not close, or whose cell count
differs from the header's, is a problem of that row and reading goes on with the next one.
The separator is the one the header line uses most of ``,``, ``;`` and tab (spreadsheets in
many locales save with ``;``). Nothing of a cell is ever repeated in a problem.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from ..core.errors import InvalidInput
from .base import ImportIssue, decode_text

SEPARATORS = (",", ";", "\t")


@dataclass(frozen=True)
class Row:
    line: int
    cells: dict[str, str] = field(repr=False)  # header (as written, stripped) -> cell


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[Row, ...]
    issues: tuple[ImportIssue, ...]

    def column(self, *names: str) -> str | None:
        """The header that matches one of ``names``, ignoring case and spaces: exporters
        and versions disagree on ``URL``/``Url``/``url``."""
        wanted = [_key(n) for n in names]
        for want in wanted:
            for header in self.header:
                if _key(header) == want:
                    return header
        return None


def _key(text: str) -> str:
    return "".join(text.lower().split())


def read_table(data: bytes, source: str) -> Table:
    text = decode_text(data, source)
    first_line = text.split("\n", 1)[0]
    separator = max(SEPARATORS, key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator, strict=True)
    header: list[str] | None = None
    rows, issues = [], []
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:  # csv's messages describe the syntax, not the content
            if header is None:
                raise InvalidInput(f"{source}: line {start}: the header is malformed CSV ({error})") from None
            issues.append(ImportIssue(start, f"malformed CSV ({error})"))
            continue
        if header is None:
            header = [cell.strip() for cell in cells]
            if not any(header):
                raise InvalidInput(f"{source}: the first line must be a header naming the columns")
            named = [_key(h) for h in header if h]
            if len(set(named)) != len(named):
                raise InvalidInput(f"{source}: the header names a column twice")
            continue
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        if len(cells) != len(header):
            issues.append(ImportIssue(start, f"{len(cells)} cells where the header has {len(header)}"))
            continue
        rows.append(Row(start, dict(zip(header, cells))))
    if header is None:
        raise InvalidInput(f"{source}: empty file")
    return Table(tuple(header), tuple(rows), tuple(issues))
