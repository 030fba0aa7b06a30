"""A per-day bar chart, painted: one bar per day, stacked from two parts (unlocks that worked
and those that failed; agent reads granted and denied), the busiest day at full height.

The second part is hatched as well as coloured, so it does not rely on colour alone. As in the
rotation timeline, one layout (``bars()``) serves painting and tooltips, so what the user
points at is exactly what was drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QWidget

from .tooltips import show_tooltip_at

MARGIN = 6.0
GAP = 0.2  # of a day's slot, between bars
SECOND_COLOR = "#c62828"


@dataclass(frozen=True)
class DayBar:
    """One day's bar: the whole of it and its second (failed, denied) part on top."""

    rect: QRectF
    second: QRectF
    day: date
    first_count: int
    second_count: int


class DailyBars(QWidget):
    """``set_days(days, counts)`` shows one bar per day (``counts``: (first, second) pairs);
    ``labels`` name the two parts ("ok", "failed")."""

    def __init__(self, title: str, labels: tuple[str, str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.labels = labels
        self._days: list[date] = []
        self._counts: list[tuple[int, int]] = []
        self.setAccessibleName(title)
        self.setAccessibleDescription(f"{title}: nothing to show")

    def set_days(self, days: list[date], counts: list[tuple[int, int]]) -> None:
        if len(days) != len(counts):
            raise ValueError("one count pair per day")
        self._days, self._counts = list(days), list(counts)
        first, second = sum(c[0] for c in counts), sum(c[1] for c in counts)
        self.setAccessibleDescription(f"{self.title} over {len(days)} days: {first} {self.labels[0]}, "
                                      f"{second} {self.labels[1]}")
        self.update()

    def clear(self) -> None:
        self._days, self._counts = [], []
        self.setAccessibleDescription(f"{self.title}: nothing to show")
        self.update()

    def counts(self) -> list[tuple[int, int]]:
        return list(self._counts)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(480, 140)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(200, 90)

    # -- layout ----------------------------------------------------------------------------------

    def _plot(self) -> QRectF:
        """The area the bars stand in: a title line above, a date line below."""
        line = self.fontMetrics().height()
        return QRectF(MARGIN, MARGIN + line + 2, max(1.0, self.width() - 2 * MARGIN),
                      max(1.0, self.height() - 2 * MARGIN - 2 * line - 4))

    def bars(self) -> list[DayBar]:
        """Where each day's bar is, oldest day at the left (an empty day has a zero-height bar)."""
        if not self._days:
            return []
        plot = self._plot()
        top = max((a + b for a, b in self._counts), default=0) or 1
        slot = plot.width() / len(self._days)
        result = []
        for i, (day, (first, second)) in enumerate(zip(self._days, self._counts)):
            height = plot.height() * (first + second) / top
            x = plot.left() + i * slot + slot * GAP / 2
            rect = QRectF(x, plot.bottom() - height, max(1.0, slot * (1 - GAP)), height)
            second_height = plot.height() * second / top
            result.append(DayBar(rect, QRectF(rect.left(), rect.top(), rect.width(), second_height),
                                 day, first, second))
        return result

    def bar_at(self, pos: QPointF) -> DayBar | None:
        """The day whose slot (the full height of the plot) holds ``pos``."""
        plot = self._plot()
        for bar in self.bars():
            if bar.rect.left() <= pos.x() <= bar.rect.right() and plot.top() <= pos.y() <= plot.bottom() + 2:
                return bar
        return None

    # -- painting --------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        text = palette.color(QPalette.ColorRole.Text)
        line = self.fontMetrics().height()
        plot = self._plot()
        painter.setPen(QPen(text, 1))
        painter.drawText(QRectF(MARGIN, MARGIN, self.width() - 2 * MARGIN, line),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self._heading())
        painter.drawLine(QPointF(plot.left(), plot.bottom()), QPointF(plot.right(), plot.bottom()))
        first_brush = QBrush(palette.color(QPalette.ColorRole.Highlight))
        second_brush = QBrush(QColor(SECOND_COLOR), Qt.BrushStyle.BDiagPattern)
        painter.setPen(Qt.PenStyle.NoPen)
        for bar in self.bars():
            painter.fillRect(bar.rect, first_brush)
            if bar.second_count:
                painter.fillRect(bar.second, QBrush(palette.color(QPalette.ColorRole.Base)))
                painter.fillRect(bar.second, second_brush)
                painter.setPen(QPen(QColor(SECOND_COLOR), 1))
                painter.drawRect(bar.second)
                painter.setPen(Qt.PenStyle.NoPen)
        if self._days:
            painter.setPen(QPen(text, 1))
            below = QRectF(plot.left(), plot.bottom() + 2, plot.width(), line)
            painter.drawText(below, Qt.AlignmentFlag.AlignLeft, self._days[0].strftime("%b %d"))
            painter.drawText(below, Qt.AlignmentFlag.AlignRight, self._days[-1].strftime("%b %d"))
        painter.end()

    def _heading(self) -> str:
        if not self._counts:
            return self.title
        first, second = sum(c[0] for c in self._counts), sum(c[1] for c in self._counts)
        return f"{self.title}: {first} {self.labels[0]}, {second} {self.labels[1]}"

    # -- interaction -----------------------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        return show_tooltip_at(self, event, self.tooltip_at) or super().event(event)

    def tooltip_at(self, pos: QPointF) -> str:
        bar = self.bar_at(pos)
        if bar is None:
            return ""
        return (f"{bar.day.strftime('%a %Y-%m-%d')}: {bar.first_count} {self.labels[0]}, "
                f"{bar.second_count} {self.labels[1]}")
