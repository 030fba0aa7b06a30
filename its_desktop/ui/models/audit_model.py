"""The audit log as a table, newest first, filled lazily however long the log is.

Rows hold the raw (encrypted-name) lines read backwards from the end of the log; a row is
decoded, its name decrypted, only when a view asks for it. Without a filter the next page is a
64 KiB read on the GUI thread (no parsing); with one, pages are scanned off the GUI thread in
bounded steps and inserted as they arrive, and a new filter drops the steps still in flight.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import PurePath
from typing import Any, Callable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal

from ...core.audit import AuditFilter, AuditReader, LineMatch
from ...core.errors import AuditTampered

PAGE = 256  # rows per fetch: a few screens
FIRST_STEP = 128 * 1024  # bytes the first background filter step reads (~500 records): rows soon
LAST_STEP = 4 * 1024 * 1024  # steps double up to this (~15,000 records): few round trips

Index = QModelIndex | QPersistentModelIndex
Submit = Callable[[Callable[[], Any], Callable[[Any], None], Callable[[BaseException], None]], object]


class Column(IntEnum):
    TIME = 0
    OPERATION = 1
    OUTCOME = 2
    SECRET = 3
    ACTOR = 4
    PROGRAM = 5
    DETAIL = 6


HEADERS = ("Time", "Operation", "Outcome", "Secret", "Actor", "Program", "Detail")
MALFORMED = ("", "?", "malformed", "", "", "", "this line is not a valid record", "")


class AuditModel(QAbstractTableModel):
    """Audit records, newest first. ``load`` starts a view of a log through a filter,
    ``refresh`` puts newly appended records on top, ``clear`` forgets everything."""

    searching = Signal(bool)  # a filtered scan is running in the background
    failed = Signal(str)

    def __init__(self, submit: Submit | None = None, parent: QObject | None = None) -> None:
        """``submit(work, on_done, on_error)`` runs filtered scans off the GUI thread
        (``Runner.submit``); without it they run inline."""
        super().__init__(parent)
        self._submit = submit
        self._reader: AuditReader | None = None
        self._filter = AuditFilter()
        self._match: LineMatch | None = None
        self._rows: list[bytes | tuple[str, ...]] = []
        self._top = 0  # offset just past the newest line seen: new records start here
        self._tail: bytes | None = None  # the line that ends at _top, to tell appends from rewrites
        self._cursor = 0  # offset where the older, unread lines end (0: none left)
        self._wanted = 0  # rows the view asked for so far
        self._busy = False
        self._step = FIRST_STEP
        self._generation = 0  # bumped by load and clear: late scan results are dropped

    # -- feeding ------------------------------------------------------------------------------

    @property
    def filter(self) -> AuditFilter:
        return self._filter

    @property
    def is_searching(self) -> bool:
        return self._busy

    @property
    def complete(self) -> bool:
        """Every matching record of the log is in the model."""
        return self._cursor == 0 and not self._busy

    def load(self, reader: AuditReader, flt: AuditFilter | None = None) -> None:
        """Show ``reader``'s log through ``flt`` from its newest record."""
        flt = flt or AuditFilter()
        match = reader.matcher(flt)
        self._restart()
        self._reader, self._filter, self._match = reader, flt, match
        self._top = self._cursor = reader.end()
        self._tail = reader.line_before(self._top)
        self._wanted = PAGE
        self._pump()

    def refresh(self) -> None:
        """Insert the records appended since the last look at the top; start over if the log
        was cut short or rewritten underneath."""
        reader = self._reader
        if reader is None:
            return
        if reader.end() < self._top or reader.line_before(self._top) != self._tail:
            self.load(reader, self._filter)
            return
        lines, top = reader.newer(self._top)
        if not lines:
            return
        self._top, self._tail = top, lines[-1]
        fresh = [line for line in reversed(lines) if self._match is None or self._match(line)]
        if fresh:
            self.beginInsertRows(QModelIndex(), 0, len(fresh) - 1)
            self._rows[0:0] = fresh
            self.endInsertRows()

    def clear(self) -> None:
        self._restart()
        self._filter = AuditFilter()

    def _restart(self) -> None:
        """Drop the rows and any scan in flight (nothing to fetch while the rows go)."""
        self._generation += 1
        self._set_busy(False)
        self._reader, self._match, self._tail = None, None, None
        self._top = self._cursor = self._wanted = 0
        self._step = FIRST_STEP
        if self._rows:
            self.beginRemoveRows(QModelIndex(), 0, len(self._rows) - 1)
            self._rows = []
            self.endRemoveRows()

    def _pump(self) -> None:
        """Read older lines until the view has what it asked for."""
        reader = self._reader
        if reader is None or self._busy or self._cursor == 0 or len(self._rows) >= self._wanted:
            return
        cursor, match, limit = self._cursor, self._match, self._wanted - len(self._rows)
        if match is None or self._submit is None:
            lines, self._cursor = reader.page(cursor, match, limit)
            self._append(lines)
            return
        generation, budget = self._generation, self._step
        self._step = min(2 * budget, LAST_STEP)
        self._set_busy(True)
        self._submit(lambda: reader.page(cursor, match, limit, budget),
                     lambda result: self._scanned(generation, result),
                     lambda error: self._scan_failed(generation, error))

    def _scanned(self, generation: int, result: tuple[list[bytes], int]) -> None:
        if generation != self._generation:
            return  # the filter changed, or the vault locked, while this step ran
        lines, self._cursor = result
        self._set_busy(False)
        self._append(lines)
        self._pump()

    def _scan_failed(self, generation: int, error: BaseException) -> None:
        if generation == self._generation:
            self._cursor = 0
            self._set_busy(False)
            self.failed.emit(f"reading the audit log failed: {type(error).__name__}")

    def _append(self, lines: list[bytes]) -> None:
        if lines:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(lines) - 1)
            self._rows.extend(lines)
            self.endInsertRows()

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.searching.emit(busy)

    def _cells(self, row: int) -> tuple[str, ...]:
        """A row's texts, decoded (and its name decrypted) the first time it is shown."""
        entry = self._rows[row]
        if isinstance(entry, tuple):
            return entry
        assert self._reader is not None
        try:
            e = self._reader.decode(entry).event
            cells = (e.time.astimezone().strftime("%Y-%m-%d %H:%M:%S"), e.op, e.outcome, e.name or "",
                     f"{e.actor.kind}:{e.actor.pid}", PurePath(e.actor.exe).name, e.detail or "", e.actor.exe)
        except AuditTampered:
            cells = MALFORMED
        self._rows[row] = cells
        return cells

    # -- Qt's model interface -------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt override)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt override)
        return 0 if parent.isValid() else len(Column)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._cells(index.row())[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole and index.column() in (Column.PROGRAM, Column.DETAIL):
            cells = self._cells(index.row())
            return cells[-1] if index.column() == Column.PROGRAM else cells[Column.DETAIL] or None
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 (Qt override)
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal and 0 <= section < len(HEADERS):
            return HEADERS[section]
        return None

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: N802 (Qt override)
        return not parent.isValid() and self._reader is not None and self._cursor > 0 and not self._busy

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: N802 (Qt override)
        if not parent.isValid():
            self._wanted = len(self._rows) + PAGE
            self._pump()
