"""The dashboard: count tiles (secrets, what needs rotating, unlocks and agent reads), secrets by
type, unlocks and agent reads per day as bar charts, and each remote's last sync.

The numbers are ``services.stats.vault_stats``, the same as ``its-vault stats``. They are
computed on the controller's runner, since the audit walk reads the last N days of the log;
a result that arrives after a lock (or after a newer refresh started) is dropped. Counts,
types, dates and remote names only: no secret name or value is ever shown here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import VaultError
from ...services.stats import DEFAULT_DAYS, VaultStats, vault_stats
from ..controller import VaultController
from ..widgets.bars import DailyBars
from ..widgets.tables import row_table
from .base import Panel

log = logging.getLogger(__name__)
AnyIndex = QModelIndex | QPersistentModelIndex
DAY_CHOICES = (7, 30, 90)
TYPE_LABELS = {"api_key": "API key", "password": "Password", "database": "Database", "certificate": "Certificate",
               "ssh_key": "SSH key", "totp": "One-time code", "note": "Note", "generic": "Generic"}
# key, caption, tooltip
TILES = (
    ("total", "Secrets", "Secrets in the vault"),
    ("due_soon", "Due soon", "Rotations or expiries coming up within their notice period"),
    ("overdue", "Overdue", "Rotations past their due date"),
    ("expired", "Expired", "Secrets past their expiry date"),
    ("rotate_requested", "Rotate now", "Secrets marked to be rotated at once (e.g. by an emergency lockdown)"),
    ("rotation_pending", "Half-done", "Rotations started and not finished: resume or abandon them"),
    ("unlocks", "Unlocks", "Unlocks in the window (failed ones in brackets)"),
    ("agent_reads", "Agent reads", "Values the agent sent to programs in the window (denied ones in brackets)"),
)


@dataclass(frozen=True)
class Row:
    key: str
    cells: tuple[str, ...]


class RowsModel(QAbstractTableModel):
    """A small read-only table of keyed rows, kept in the caller's order. ``set_rows`` brings
    it to new rows with removals, inserts and ``dataChanged`` (never a reset), so a refresh
    that changes one count repaints one cell; rows kept must stay in the same relative order
    (both callers sort by a fixed key)."""

    def __init__(self, headers: tuple[str, ...], parent: Any = None) -> None:
        super().__init__(parent)
        self.headers = headers
        self._rows: list[Row] = []

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.headers)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._rows[index.row()].cells[index.column()]
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(self.headers):
            return self.headers[section]
        return None

    def keys(self) -> list[str]:
        return [r.key for r in self._rows]

    def set_rows(self, rows: list[Row]) -> None:
        wanted = {r.key for r in rows}
        for i in range(len(self._rows) - 1, -1, -1):
            if self._rows[i].key not in wanted:
                self.beginRemoveRows(QModelIndex(), i, i)
                del self._rows[i]
                self.endRemoveRows()
        for i, row in enumerate(rows):
            if i < len(self._rows) and self._rows[i].key == row.key:
                if self._rows[i] != row:
                    self._rows[i] = row
                    self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.headers) - 1))
            else:
                self.beginInsertRows(QModelIndex(), i, i)
                self._rows.insert(i, row)
                self.endInsertRows()

    def clear(self) -> None:
        self.set_rows([])


class Tile(QFrame):
    """A big number over its caption."""

    def __init__(self, key: str, caption: str, tooltip: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName(f"tile-{key}")
        self.value = QLabel()
        self.value.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = QFont(self.value.font())
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        self.value.setFont(font)
        self.caption = QLabel(caption)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setToolTip(tooltip)
        self.value.setAccessibleName(caption)
        layout = QVBoxLayout(self)
        layout.addWidget(self.value)
        layout.addWidget(self.caption)

    def show_value(self, text: str, alarm: bool = False) -> None:
        self.value.setText(text)
        self.value.setStyleSheet("QLabel { color: #c62828; }" if alarm else "")

    def clear(self) -> None:
        self.value.clear()
        self.value.setStyleSheet("")


class DashboardPanel(Panel):
    title = "Dashboard"

    def __init__(self, controller: VaultController, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self._generation = 0  # bumped at lock and at every refresh: only the newest result is shown
        self._running = self._again = False
        self.stats: VaultStats | None = None

        self.tiles = {key: Tile(key, caption, tip) for key, caption, tip in TILES}
        self.days_choice = QComboBox()
        self.days_choice.setAccessibleName("Days of activity")
        for days in DAY_CHOICES:
            self.days_choice.addItem(f"Last {days} days", days)
        self.days_choice.setCurrentIndex(DAY_CHOICES.index(DEFAULT_DAYS))
        self.days_choice.currentIndexChanged.connect(lambda _i: self.populate())
        self.status = QLabel()
        self.status.setAccessibleName("Dashboard status")
        self.types_model = RowsModel(("Type", "Secrets"), self)
        self.types_view = row_table(self.types_model, "Secrets by type", 0)
        self.remotes_model = RowsModel(("Remote", "Type", "Last sync", "Synced secrets"), self)
        self.remotes_view = row_table(self.remotes_model, "Remotes", 2)
        self.unlock_bars = DailyBars("Unlocks per day", ("ok", "failed"))
        self.read_bars = DailyBars("Agent reads per day", ("granted", "denied"))

        grid = QGridLayout()
        for i, tile in enumerate(self.tiles.values()):
            grid.addWidget(tile, i // 4, i % 4)
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.days_choice)
        charts = QVBoxLayout()
        charts.addWidget(self.unlock_bars)
        charts.addWidget(self.read_bars)
        tables = QSplitter(Qt.Orientation.Horizontal)
        tables.addWidget(self.types_view)
        tables.addWidget(self.remotes_view)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(grid)
        layout.addLayout(charts, 1)
        layout.addWidget(tables)

    @property
    def days(self) -> int:
        return int(self.days_choice.currentData() or DEFAULT_DAYS)

    @property
    def busy(self) -> bool:
        return self._running

    # -- filling and emptying ---------------------------------------------------------------------

    def populate(self) -> None:
        """Work the numbers out again off the GUI thread; one refresh at a time (a change
        during one asks for another when it ends)."""
        vault = self.controller.vault
        if vault is None:
            return
        if self._running:
            self._again = True
            return
        self._running, self._again = True, False
        self._generation += 1
        generation, now, days = self._generation, self.controller.clock(), self.days
        if self.stats is None:
            self.status.setText("Counting…")
        self.controller.runner.submit(lambda: vault_stats(vault, now, days),
                                      lambda stats: self._done(generation, stats),
                                      lambda error: self._failed(generation, error))

    def _done(self, generation: int, stats: VaultStats) -> None:
        if generation != self._generation:
            return  # locked meanwhile
        self._running = False
        self.show_stats(stats)
        if self._again:
            self.populate()

    def _failed(self, generation: int, error: BaseException) -> None:
        if generation != self._generation:
            return
        self._running = False
        if isinstance(error, VaultError):
            self.status.setText(str(error))
        else:
            log.error("the dashboard could not be worked out: %s", type(error).__name__)
            self.status.setText("The numbers could not be worked out (details in the log)")
        if self._again:
            self.populate()

    def show_stats(self, stats: VaultStats) -> None:
        self.stats = stats
        s, total = stats.schedule, stats.totals()
        values = {"total": (str(stats.total), False), "due_soon": (str(s.due_soon), False),
                  "overdue": (str(s.overdue), s.overdue > 0), "expired": (str(s.expired), s.expired > 0),
                  "rotate_requested": (str(s.rotate_requested), s.rotate_requested > 0),
                  "rotation_pending": (str(s.rotation_pending), s.rotation_pending > 0),
                  "unlocks": (_with_bad(total.unlocks_ok, total.unlocks_failed), total.unlocks_failed > 0),
                  "agent_reads": (_with_bad(total.agent_reads_granted, total.agent_reads_denied), False)}
        for key, (text, alarm) in values.items():
            self.tiles[key].show_value(text, alarm)
        self.types_model.set_rows([Row(t.value, (TYPE_LABELS.get(t.value, t.value), str(n)))
                                   for t, n in stats.by_type.items() if n])
        self.remotes_model.set_rows([Row(r.name, (r.name, r.type, _when(r.last_sync), str(r.tracked)))
                                     for r in stats.remotes])
        days = [d.day for d in stats.activity]
        self.unlock_bars.set_days(days, [(d.unlocks_ok, d.unlocks_failed) for d in stats.activity])
        self.read_bars.set_days(days, [(d.agent_reads_granted, d.agent_reads_denied) for d in stats.activity])
        self.status.setText(f"Last {stats.days} days, local time; worked out at "
                            f"{stats.now.astimezone().strftime('%H:%M')}")

    def clear(self) -> None:
        self._generation += 1
        self._running = self._again = False
        self.stats = None
        for tile in self.tiles.values():
            tile.clear()
        self.types_model.clear()
        self.remotes_model.clear()
        self.unlock_bars.clear()
        self.read_bars.clear()
        self.status.clear()


def _with_bad(good: int, bad: int) -> str:
    return f"{good} ({bad})" if bad else str(good)


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else "never"


def add_dashboard_tab(window: Any) -> DashboardPanel:
    """Put the dashboard in ``window``'s tabs (last), deferred like the other panels, and
    fill it now if the vault is already open. For ``ui/window.py``, until it lists the panel
    in ``panel_classes()``."""
    for panel in window.panels:
        if isinstance(panel, DashboardPanel):
            return panel
    panel = DashboardPanel(window.controller)
    panel.deferred = True
    window.panels.append(panel)
    window.tabs.addTab(panel, panel.title)
    if window.controller.vault is not None:
        panel.follow_vault()
    return panel
