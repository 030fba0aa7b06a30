"""The next 90 days of due rotations, painted: a day axis with week ticks and month labels,
today at the left, one marker per secret (stacked when several fall on the same day), and the
overdue and expired ones stacked in a "late" column before today.

The same layout serves painting, tooltips and clicks (``markers()``), so what the user
points at is exactly what was drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QWidget

from ...core.schedule import ScheduleEntry
from ..models.rotation_model import describe, paint_status_shape
from .tooltips import show_tooltip_at

HORIZON_DAYS = 90
MARKER = 12.0  # marker size in pixels
LATE_WIDTH = 48.0  # the column for overdue and expired markers, left of today
MARGIN = 8.0


@dataclass(frozen=True)
class Marker:
    rect: QRectF
    entry: ScheduleEntry


class RotationTimeline(QWidget):
    """``set_entries(entries, now)`` shows a schedule; ``entry_clicked(name)`` says which
    marker was clicked (the topmost one under the cursor)."""

    entry_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Rotation timeline")
        self.setAccessibleDescription("Due rotations over the next 90 days")
        self._entries: list[ScheduleEntry] = []
        self._now: datetime | None = None

    def set_entries(self, entries: list[ScheduleEntry], now: datetime) -> None:
        self._entries = [e for e in entries if e.days_left < HORIZON_DAYS]
        self._now = now
        late = sum(e.days_left < 0 for e in self._entries)
        self.setAccessibleDescription(
            f"{len(self._entries) - late} rotations due in the next {HORIZON_DAYS} days, {late} late")
        self.update()

    def clear(self) -> None:
        self._entries, self._now = [], None
        self.setAccessibleDescription("Due rotations over the next 90 days")
        self.update()

    def entries(self) -> list[ScheduleEntry]:
        return list(self._entries)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(640, 150)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(320, 110)

    # -- layout ----------------------------------------------------------------------------------

    def _axis(self) -> tuple[float, float, float]:
        """Left end (today), right end and height of the day axis."""
        line = self.fontMetrics().height()
        return LATE_WIDTH + MARGIN, self.width() - MARGIN, self.height() - 2 * line - MARGIN

    def day_x(self, day: int) -> float:
        """The left edge of the slot of the day ``day`` days from now."""
        left, right, _ = self._axis()
        return left + (right - left) * day / HORIZON_DAYS

    def markers(self) -> list[Marker]:
        """Where each entry is drawn, bottom of each stack first (so the last hit is on top)."""
        left, right, axis_y = self._axis()
        day_width = (right - left) / HORIZON_DAYS
        stacks: dict[int, list[ScheduleEntry]] = {}
        for entry in self._entries:
            stacks.setdefault(max(entry.days_left, -1), []).append(entry)
        result = []
        for day, stack in stacks.items():
            centre = LATE_WIDTH / 2 if day < 0 else left + (day + 0.5) * day_width
            # Stacks taller than the widget are squeezed so every marker stays visible.
            step = max(0.0, min(MARKER + 2, (axis_y - MARGIN - MARKER) / max(1, len(stack) - 1)))
            for level, entry in enumerate(stack):
                top = axis_y - 3 - MARKER - level * step
                result.append(Marker(QRectF(centre - MARKER / 2, top, MARKER, MARKER), entry))
        return result

    def entries_at(self, pos: QPointF) -> list[ScheduleEntry]:
        """The entries whose marker is under ``pos`` (a little slack for small markers)."""
        return [m.entry for m in self.markers() if m.rect.adjusted(-2, -2, 2, 2).contains(pos)]

    def marker_rect(self, name: str) -> QRectF | None:
        return next((m.rect for m in self.markers() if m.entry.name == name), None)

    # -- painting --------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().color(QPalette.ColorRole.Base))
        if self._now is not None:
            self._paint_axis(painter, self._now)
            for marker in self.markers():
                paint_status_shape(painter, marker.rect, marker.entry.status)
        painter.end()

    def _paint_axis(self, painter: QPainter, now: datetime) -> None:
        text = self.palette().color(QPalette.ColorRole.Text)
        left, right, axis_y = self._axis()
        line = self.fontMetrics().height()
        painter.setPen(QPen(text, 1))
        painter.drawLine(QPointF(left, axis_y), QPointF(right, axis_y))
        for day in range(HORIZON_DAYS + 1):
            x = self.day_x(day)
            date = (now + timedelta(days=day)).astimezone().date()
            tall = 6 if date.weekday() == 0 else 2  # a week tick on Mondays
            painter.drawLine(QPointF(x, axis_y), QPointF(x, axis_y + tall))
            if date.day == 1 and day < HORIZON_DAYS:
                label = date.strftime("%b %Y" if date.month == 1 else "%b")
                painter.drawLine(QPointF(x, axis_y), QPointF(x, axis_y + 10))
                painter.drawText(QPointF(x + 2, axis_y + line), label)
        painter.drawText(QRectF(0, axis_y + 2, LATE_WIDTH, line), Qt.AlignmentFlag.AlignCenter, "Late")
        highlight = self.palette().color(QPalette.ColorRole.Highlight)
        painter.setPen(QPen(highlight, 2))
        painter.drawLine(QPointF(left, MARGIN), QPointF(left, axis_y + 10))
        painter.drawText(QPointF(left + 2, axis_y + 2 * line), "Today")

    # -- interaction -----------------------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        return show_tooltip_at(self, event, self.tooltip_at) or super().event(event)

    def tooltip_at(self, pos: QPointF) -> str:
        return "\n".join(describe(e) for e in self.entries_at(pos))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        hits = self.entries_at(event.position())
        if event.button() == Qt.MouseButton.LeftButton and hits:
            self.entry_clicked.emit(hits[-1].name)
            event.accept()
            return
        super().mousePressEvent(event)
