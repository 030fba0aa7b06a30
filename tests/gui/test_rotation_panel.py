"""The rotation schedule panel, driven as a user would, with the clock moved by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip, QWidget

from its_desktop.core.rotation import RotationPolicy, RotationStatus
from its_desktop.ui.models.rotation_model import STATUS_COLORS, STATUS_ROLE, Column
from its_desktop.ui.panels.rotation import RotationPanel

NOW = datetime(2030, 3, 10, 12, 0, tzinfo=timezone.utc)
# name, type, rotate every (days), expires in (days), age (days) -> due in, status at NOW
SECRETS = [
    ("ssh/gateway", "ssh_key", 365, None, 400),                # -35 overdue
    ("exchanges/kraken/api_key", "api_key", None, -1, 100),    # -1 expired
    ("db/main/password", "password", 30, None, 25),            # +5 due soon
    ("brokers/ibkr/api_key", "api_key", 90, None, 80),         # +10 ok
    ("exchanges/okx/api_key", "api_key", None, 20, 1),         # +20 ok (expires)
    ("exchanges/binance/secret", "api_key", 60, None, 0),      # +60 ok
    ("notes/runbook", "note", None, None, 3),                  # not scheduled
]
ORDER = [s[0] for s in SECRETS[:6]]


class Clock:
    """The injected clock: tests move time by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: float) -> None:
        self.now += timedelta(days=days)


@pytest.fixture
def clock(unlocked_controller) -> Clock:
    clock = Clock(NOW)
    vault = unlocked_controller.vault
    for name, kind, every, expires, age in SECRETS:
        vault.clock = lambda age=age: NOW - timedelta(days=age)
        vault.set(name, f"old value of {name}", type=kind, rotation=RotationPolicy(every) if every else None,
                  expires_at=NOW + timedelta(days=expires) if expires is not None else None)
    # The vault stamps rotations with its own clock: it must be the panel's for these tests.
    vault.clock = unlocked_controller.clock = clock
    return clock


@pytest.fixture
def panel(qtbot, unlocked_controller, clock) -> RotationPanel:
    panel = RotationPanel(unlocked_controller)
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    qtbot.waitExposed(panel)
    unlocked_controller.unlocked.emit()
    return panel


def names(panel: RotationPanel) -> list[str]:
    """The names the table shows, top to bottom (after the filter)."""
    return [panel.proxy.index(row, Column.NAME).data() for row in range(panel.proxy.rowCount())]


def status(panel: RotationPanel, name: str) -> RotationStatus:
    index = panel.model.index(panel.model.row_of(name), Column.STATUS)
    assert not index.data(Qt.ItemDataRole.DecorationRole).isNull(), "an icon, not colour alone"
    shown = RotationStatus(index.data(STATUS_ROLE))
    assert index.data(Qt.ItemDataRole.ForegroundRole).color() == QColor(STATUS_COLORS[shown])
    return shown


def click_row(qtbot, panel: RotationPanel, name: str) -> None:
    row = names(panel).index(name)
    rect = panel.table.visualRect(panel.proxy.index(row, Column.NAME))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.selected().name == name


def test_scheduled_secrets_appear_soonest_first_with_their_status(panel):
    assert names(panel) == ORDER
    assert [status(panel, n) for n in ORDER] == [
        RotationStatus.OVERDUE, RotationStatus.EXPIRED, RotationStatus.DUE_SOON, *[RotationStatus.OK] * 3]
    row = panel.model.row_of("db/main/password")
    shown = [panel.model.index(row, c).data() for c in Column]
    assert shown == ["db/main/password", "password", "never",
                     (NOW + timedelta(days=5)).astimezone().date().isoformat(), 5, "Due soon", 0]
    assert panel.summary.text() == "1 expired · 1 overdue · 1 due soon · 3 ok"


def test_a_row_goes_due_soon_then_overdue_as_the_clock_moves(qtbot, panel, clock):
    name = "brokers/ibkr/api_key"
    assert status(panel, name) is RotationStatus.OK
    assert panel.timer.isActive()
    panel.timer.setInterval(1)  # a timer tick re-reads the schedule at the clock's time
    clock.advance(4)
    qtbot.waitUntil(lambda: status(panel, name) is RotationStatus.DUE_SOON)
    clock.advance(7)
    qtbot.waitUntil(lambda: status(panel, name) is RotationStatus.OVERDUE)
    assert panel.model.index(panel.model.row_of(name), Column.DAYS_LEFT).data() == -1
    clock.advance(10)
    qtbot.waitUntil(lambda: status(panel, "exchanges/okx/api_key") is RotationStatus.EXPIRED)


def test_filter_by_status(qtbot, panel):
    panel.filter.setFocus()
    seen = {}
    for _ in range(4):
        qtbot.keyClick(panel.filter, Qt.Key.Key_Down)
        seen[panel.filter.currentText()] = names(panel)
    assert seen == {
        "Due soon": ["db/main/password"], "Overdue": ["ssh/gateway"],
        "Expired": ["exchanges/kraken/api_key"],
        "OK": ["brokers/ibkr/api_key", "exchanges/okx/api_key", "exchanges/binance/secret"],
    }
    qtbot.keyClick(panel.filter, Qt.Key.Key_Home)
    assert names(panel) == ORDER


def test_mark_rotated_moves_the_row_without_rebuilding(qtbot, panel, qtmodeltester, unlocked_controller):
    qtmodeltester.check(panel.model)
    qtmodeltester.check(panel.proxy)
    seen: list[str] = []
    for signal in ("modelReset", "rowsRemoved", "rowsInserted", "rowsMoved", "dataChanged"):
        getattr(panel.model, signal).connect(lambda *_, s=signal: seen.append(s))
    click_row(qtbot, panel, "ssh/gateway")
    assert not panel.rotate_button.isEnabled(), "an SSH key is re-issued elsewhere, not generated"
    qtbot.mouseClick(panel.mark_button, Qt.MouseButton.LeftButton)
    assert set(seen) == {"rowsMoved", "dataChanged"}
    assert status(panel, "ssh/gateway") is RotationStatus.OK
    assert names(panel)[-1] == "ssh/gateway", "due in a year now: the end of the schedule"
    assert panel.selected().name == "ssh/gateway", "the selection follows the row"
    row = panel.model.row_of("ssh/gateway")
    assert panel.model.index(row, Column.COUNT).data() == 1
    assert panel.model.index(row, Column.LAST_ROTATED).data() == NOW.astimezone().date().isoformat()
    assert unlocked_controller.vault.peek("ssh/gateway").value == "old value of ssh/gateway"


def test_rotate_now_asks_then_generates_and_keeps_the_old_value(qtbot, panel, unlocked_controller):
    vault, name = unlocked_controller.vault, "db/main/password"
    click_row(qtbot, panel, name)
    qtbot.mouseClick(panel.rotate_button, Qt.MouseButton.LeftButton)
    box = panel.confirm_box
    assert box is not None and box.isVisible() and name in box.text()
    qtbot.mouseClick(next(b for b in box.buttons() if b.accessibleName() == "Cancel"), Qt.MouseButton.LeftButton)
    assert vault.peek(name).value == f"old value of {name}"

    qtbot.mouseClick(panel.rotate_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(next(b for b in panel.confirm_box.buttons() if b.text() == "Rotate"), Qt.MouseButton.LeftButton)
    secret = vault.peek(name)
    assert secret.value != f"old value of {name}" and len(secret.value) >= 32
    assert f"old value of {name}" in [v.value for v in secret.history]
    assert secret.rotation_count == 1
    assert [r.event.op for r in vault.audit_records() if r.event.name == name][-1] == "rotate"
    assert status(panel, name) is RotationStatus.OK
    assert secret.value not in panel.message.text(), "the new value is never shown by the panel"


def test_timeline_paints_and_its_markers_select_rows(qtbot, panel):
    timeline = panel.timeline
    assert timeline.sizeHint().isValid()
    image = timeline.grab().toImage()
    assert not image.isNull()
    for name in ("ssh/gateway", "db/main/password", "exchanges/binance/secret"):
        rect = timeline.marker_rect(name)
        assert rect is not None and timeline.rect().contains(rect.toRect())
        centre = rect.center().toPoint()
        pixel = image.pixelColor(centre * image.devicePixelRatio())
        assert pixel == QColor(STATUS_COLORS[status(panel, name)]), name
    late = [timeline.marker_rect(n).center().x() for n in ("ssh/gateway", "exchanges/kraken/api_key")]
    assert late[0] == late[1] < timeline.day_x(0), "overdue and expired are stacked left of today"
    assert timeline.marker_rect("notes/runbook") is None

    panel.filter.setCurrentIndex(panel.filter.findText("Expired"))  # the clicked row is hidden: shown again
    centre = timeline.marker_rect("brokers/ibkr/api_key").center()
    qtbot.mouseClick(timeline, Qt.MouseButton.LeftButton, pos=centre.toPoint())
    assert panel.selected().name == "brokers/ibkr/api_key" and panel.filter.currentText() == "All"
    qtbot.mouseClick(timeline, Qt.MouseButton.LeftButton, pos=QPoint(timeline.width() - 3, 3))
    assert panel.selected().name == "brokers/ibkr/api_key", "a click on no marker changes nothing"


@pytest.mark.qt_log_ignore("This plugin does not support raise", extend=True)  # the offscreen platform
def test_timeline_tooltip_names_the_secrets_under_the_cursor(qtbot, panel):
    timeline = panel.timeline
    pos = timeline.marker_rect("ssh/gateway").center()
    assert "ssh/gateway" in timeline.tooltip_at(pos) and "exchanges/kraken/api_key" in timeline.tooltip_at(
        timeline.marker_rect("exchanges/kraken/api_key").center())
    help_event = QHelpEvent(QEvent.Type.ToolTip, pos.toPoint(), timeline.mapToGlobal(pos.toPoint()))
    QApplication.sendEvent(timeline, help_event)
    qtbot.waitUntil(lambda: "ssh/gateway: Overdue (rotation due" in QToolTip.text())
    assert timeline.tooltip_at(QPointF(timeline.width() - 3, 3)) == ""


def test_lock_empties_the_model_and_the_timeline(qtbot, panel, unlocked_controller):
    click_row(qtbot, panel, "db/main/password")
    qtbot.mouseClick(panel.rotate_button, Qt.MouseButton.LeftButton)
    box = panel.confirm_box
    marker = panel.timeline.marker_rect("db/main/password").center().toPoint()
    unlocked_controller.lock()
    assert not box.isVisible() and panel.confirm_box is None, "a pending confirmation goes with the lock"
    assert panel.model.rowCount() == 0 and panel.proxy.rowCount() == 0
    assert panel.timeline.entries() == []
    assert not panel.timer.isActive() and panel.summary.text() == ""
    assert not panel.mark_button.isEnabled() and not panel.rotate_button.isEnabled()
    image = panel.timeline.grab().toImage()
    assert image.pixelColor(marker * image.devicePixelRatio()) != QColor(STATUS_COLORS[RotationStatus.DUE_SOON])


def test_every_interactive_widget_has_an_accessible_name(panel):
    interactive = [w for w in panel.findChildren(QWidget)
                   if w.focusPolicy() != Qt.FocusPolicy.NoFocus and w.isVisibleTo(panel)]
    assert {panel.filter, panel.table, panel.mark_button, panel.rotate_button} <= set(interactive)
    assert [type(w).__name__ for w in [*interactive, panel.timeline] if not w.accessibleName()] == []

