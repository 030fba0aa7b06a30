"""The rotation schedule as a table model, and how a status looks wherever it is shown.

Rows are ``ScheduleEntry`` objects (names and dates, never a value) with the secret's
``RotationInfo`` (its rotator, a "rotate now" request, a rotation left half-done). ``set_entries``
brings the rows to a new schedule with row inserts, removals, moves and ``dataChanged``, never a
reset, so the view keeps its selection and scroll position when a rotation moves a row down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any, Mapping

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QPointF,
    QRectF,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPen, QPixmap, QPolygonF

from ...core.rotation import RotationStatus
from ...core.schedule import ScheduleEntry, sort_key
from ...core.secrets import SecretSummary
from ...rotators.registry import rotator_name

AnyIndex = QModelIndex | QPersistentModelIndex


class Column(IntEnum):
    NAME = 0
    TYPE = 1
    ROTATOR = 2
    LAST_ROTATED = 3
    DUE = 4
    DAYS_LEFT = 5
    STATUS = 6
    COUNT = 7


HEADERS = {
    Column.NAME: "Name", Column.TYPE: "Type", Column.ROTATOR: "Rotator", Column.LAST_ROTATED: "Last rotated",
    Column.DUE: "Due", Column.DAYS_LEFT: "Days left", Column.STATUS: "Status", Column.COUNT: "Rotations",
}
# The row's status as its plain value ("due-soon"): Qt hands a str-based enum back as a str.
STATUS_ROLE = Qt.ItemDataRole.UserRole + 1

# Colour is never the only cue: each status also has its own shape and word.
STATUS_LABELS = {
    RotationStatus.OK: "OK", RotationStatus.DUE_SOON: "Due soon",
    RotationStatus.OVERDUE: "Overdue", RotationStatus.EXPIRED: "Expired",
}
STATUS_COLORS = {
    RotationStatus.OK: "#2e7d32", RotationStatus.DUE_SOON: "#b26a00",
    RotationStatus.OVERDUE: "#c62828", RotationStatus.EXPIRED: "#6a1b9a",
}
_icons: dict[RotationStatus, QIcon] = {}


def status_color(status: RotationStatus) -> QColor:
    return QColor(STATUS_COLORS[status])


def paint_status_shape(painter: QPainter, rect: QRectF, status: RotationStatus) -> None:
    """A circle (ok), triangle (due soon), diamond (overdue) or crossed square (expired), so
    the statuses differ in shape as well as colour."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QBrush(status_color(status)))
    painter.setPen(QPen(status_color(status).darker(160), 1))
    r = rect.adjusted(1, 1, -1, -1)
    c = r.center()
    if status is RotationStatus.OK:
        painter.drawEllipse(r)
    elif status is RotationStatus.DUE_SOON:
        painter.drawPolygon(QPolygonF([QPointF(c.x(), r.top()), r.bottomRight(), r.bottomLeft()]))
    elif status is RotationStatus.OVERDUE:
        painter.drawPolygon(QPolygonF([QPointF(c.x(), r.top()), QPointF(r.right(), c.y()),
                                       QPointF(c.x(), r.bottom()), QPointF(r.left(), c.y())]))
    else:
        painter.drawRect(r)
        painter.setPen(QPen(QColor("white"), max(1.0, r.width() / 8)))
        inner = r.adjusted(r.width() / 4, r.height() / 4, -r.width() / 4, -r.height() / 4)
        painter.drawLine(inner.topLeft(), inner.bottomRight())
        painter.drawLine(inner.topRight(), inner.bottomLeft())
    painter.restore()


def status_icon(status: RotationStatus) -> QIcon:
    """The status's shape as an icon (made once, on first use: pixmaps need a GUI app)."""
    if status not in _icons:
        pixmap = QPixmap(16, 16)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        paint_status_shape(painter, QRectF(1, 1, 14, 14), status)
        painter.end()
        _icons[status] = QIcon(pixmap)
    return _icons[status]


def local_date(moment: datetime | None) -> str:
    """A date as the user's calendar shows it (the vault stores UTC)."""
    return "never" if moment is None else moment.astimezone().date().isoformat()


def describe(entry: ScheduleEntry) -> str:
    """One line for tooltips: the status, which deadline, and when."""
    what = "expires" if entry.due == entry.expires_at else "rotation due"
    days = entry.days_left
    when = "today" if days == 0 else (f"in {days} day{'s' * (days != 1)}" if days > 0
                                      else f"{-days} day{'s' * (days != -1)} ago")
    return f"{entry.name}: {STATUS_LABELS[entry.status]} ({what} {local_date(entry.due)}, {when})"


@dataclass(frozen=True)
class RotationInfo:
    """How a scheduled secret is rotated, beyond its dates: what the schedule alone does not
    say, and what the panel needs to pick the right "Rotate now"."""

    rotator: str
    requested: datetime | None = None  # "rotate now" (e.g. by an emergency lockdown)
    pending_since: datetime | None = None  # a rotation started then and has not finished

    @classmethod
    def of(cls, summary: SecretSummary) -> RotationInfo:
        def when(text: str | None) -> datetime | None:
            return None if text is None else datetime.fromisoformat(text)

        return cls(rotator_name(summary), when(summary.rotate_requested), when(summary.pending_since))


def status_text(entry: ScheduleEntry, info: RotationInfo | None) -> str:
    """The status word, with what else is going on: "Overdue · half-done", "Overdue · rotate now"."""
    text = STATUS_LABELS[entry.status]
    if info is not None and info.pending_since is not None:
        return f"{text} · half-done"
    if info is not None and info.requested is not None:
        return f"{text} · rotate now"
    return text


def describe_with(entry: ScheduleEntry, info: RotationInfo | None) -> str:
    """``describe`` and, in words, the request or the rotation left half-done."""
    text = describe(entry)
    if info is None:
        return text
    text += f"; rotated by {info.rotator}"
    if info.requested is not None:
        text += f"; rotate now was requested on {local_date(info.requested)}"
    if info.pending_since is not None:
        text += (f"; a rotation started {local_date(info.pending_since)} is half-done: its new value is pending "
                 "and the current one is still in use (Rotate now resumes it)")
    return text


class RotationModel(QAbstractTableModel):
    """Scheduled secrets, soonest deadline first."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._entries: list[ScheduleEntry] = []
        self._infos: dict[str, RotationInfo] = {}

    # -- Qt overrides -----------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._entries)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(Column):
            return HEADERS[Column(section)]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self.checkIndex(index, QAbstractTableModel.CheckIndexOption.IndexIsValid):
            return None
        entry, column = self._entries[index.row()], Column(index.column())
        info = self._infos.get(entry.name)
        if role == Qt.ItemDataRole.DisplayRole:
            return _display(entry, info, column)
        if role == STATUS_ROLE:
            return entry.status.value
        if role == Qt.ItemDataRole.ToolTipRole:
            return describe_with(entry, info)
        if column is Column.STATUS:
            if role == Qt.ItemDataRole.DecorationRole:
                return status_icon(entry.status)
            if role == Qt.ItemDataRole.ForegroundRole:
                return QBrush(status_color(entry.status))
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (Column.DAYS_LEFT, Column.COUNT):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    # -- reading ------------------------------------------------------------------------------------

    def entry(self, row: int) -> ScheduleEntry:
        return self._entries[row]

    def entries(self) -> list[ScheduleEntry]:
        return list(self._entries)

    def info(self, row: int) -> RotationInfo | None:
        return self._infos.get(self._entries[row].name)

    def row_of(self, name: str) -> int:
        """The row showing ``name``, or -1."""
        return next((row for row, e in enumerate(self._entries) if e.name == name), -1)

    # -- changing -----------------------------------------------------------------------------------

    def set_entries(self, entries: list[ScheduleEntry], infos: Mapping[str, RotationInfo] | None = None) -> None:
        """Become ``entries`` (sorted here, whatever the caller passed) with their ``infos``
        by name, with the smallest changes: drop the names that left, then walk the target
        order moving, updating or inserting each row in place."""
        target = sorted(entries, key=sort_key)
        old_infos, self._infos = self._infos, {e.name: infos[e.name] for e in target if infos and e.name in infos}
        wanted = {e.name for e in target}
        for row in reversed(range(len(self._entries))):
            if self._entries[row].name not in wanted:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._entries[row]
                self.endRemoveRows()
        for row, entry in enumerate(target):
            found = self.row_of(entry.name)
            if found == -1:
                self.beginInsertRows(QModelIndex(), row, row)
                self._entries.insert(row, entry)
                self.endInsertRows()
                continue
            if found != row:  # always further down: the rows above are already in place
                self.beginMoveRows(QModelIndex(), found, found, QModelIndex(), row)
                self._entries.insert(row, self._entries.pop(found))
                self.endMoveRows()
            if self._entries[row] != entry or old_infos.get(entry.name) != self._infos.get(entry.name):
                self._entries[row] = entry
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(Column) - 1))

    def clear(self) -> None:
        """Forget every row (on lock)."""
        if self._entries:
            self.beginRemoveRows(QModelIndex(), 0, len(self._entries) - 1)
            self._entries.clear()
            self.endRemoveRows()
        self._infos = {}


def _display(entry: ScheduleEntry, info: RotationInfo | None, column: Column) -> Any:
    if column is Column.NAME:
        return entry.name
    if column is Column.TYPE:
        return entry.type.value.replace("_", " ")
    if column is Column.ROTATOR:
        return info.rotator if info is not None else ""
    if column is Column.LAST_ROTATED:
        return local_date(entry.last_rotated)
    if column is Column.DUE:
        return local_date(entry.due)
    if column is Column.DAYS_LEFT:
        return entry.days_left
    if column is Column.STATUS:
        return status_text(entry, info)
    return entry.rotation_count


class StatusFilter(QSortFilterProxyModel):
    """Shows the rows of one status, or all of them (``None``)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._status: RotationStatus | None = None

    @property
    def status(self) -> RotationStatus | None:
        return self._status

    def set_status(self, status: RotationStatus | None) -> None:
        if not hasattr(self, "endFilterChange"):  # Qt before 6.10
            self._status = status
            self.invalidateRowsFilter()
            return
        self.beginFilterChange()
        self._status = status
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:  # noqa: N802
        if self._status is None:
            return True
        index = self.sourceModel().index(source_row, Column.STATUS, source_parent)
        return index.data(STATUS_ROLE) == self._status.value
