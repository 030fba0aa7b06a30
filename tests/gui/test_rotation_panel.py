"""The rotation schedule panel, driven as a user would, with the clock moved by hand: the
schedule, its filter and timeline, and "Rotate now" through the real engine (generated and
manual rotators), off the GUI thread."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QHelpEvent
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QToolTip, QWidget

from its_desktop.core.passwords import ALPHABETS, ValuePolicy
from its_desktop.core.rotation import RotationPolicy, RotationStatus
from its_desktop.rotators.base import STEPS, StepFailed
from its_desktop.rotators.generated import GeneratedRotator
from its_desktop.ui.dialogs.rotate_manual import ManualRotationDialog
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
    assert shown == ["db/main/password", "password", "manual", "never",
                     (NOW + timedelta(days=5)).astimezone().date().isoformat(), 5, "Due soon", 0]
    assert panel.model.headerData(Column.ROTATOR, Qt.Orientation.Horizontal) == "Rotator"
    assert panel.summary.text() == "1 expired · 1 overdue · 1 due soon · 3 ok"


def test_a_rotate_now_request_shows_on_its_row(qtbot, panel, unlocked_controller):
    name = "exchanges/binance/secret"
    unlocked_controller.vault.request_rotation([name], detail="test")
    unlocked_controller.notify_changed()
    assert status(panel, name) is RotationStatus.OVERDUE, "due at once"
    row = panel.model.row_of(name)
    assert panel.model.index(row, Column.STATUS).data() == "Overdue · rotate now"
    assert "rotate now was requested" in panel.model.index(row, Column.STATUS).data(Qt.ItemDataRole.ToolTipRole)


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
    qtbot.mouseClick(panel.mark_button, Qt.MouseButton.LeftButton)
    assert set(seen) == {"rowsMoved", "dataChanged"}
    assert status(panel, "ssh/gateway") is RotationStatus.OK
    assert names(panel)[-1] == "ssh/gateway", "due in a year now: the end of the schedule"
    assert panel.selected().name == "ssh/gateway", "the selection follows the row"
    row = panel.model.row_of("ssh/gateway")
    assert panel.model.index(row, Column.COUNT).data() == 1
    assert panel.model.index(row, Column.LAST_ROTATED).data() == NOW.astimezone().date().isoformat()
    assert unlocked_controller.vault.peek("ssh/gateway").value == "old value of ssh/gateway"


def cell(panel: RotationPanel, name: str, column: Column, role=Qt.ItemDataRole.DisplayRole):
    return panel.model.index(panel.model.row_of(name), column).data(role)


def shown_texts(panel: RotationPanel) -> str:
    """Every text the panel shows in a widget, and its model's cells and tooltips."""
    texts = [w.text() for w in panel.findChildren(QLabel)] + [w.text() for w in panel.findChildren(QLineEdit)]
    texts += [str(panel.model.index(r, c).data(role)) for r in range(panel.model.rowCount()) for c in Column
              for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole)]
    return "\n".join(texts)


def wait_idle(qtbot, panel: RotationPanel) -> None:
    qtbot.waitUntil(lambda: panel.rotating is None, timeout=10_000)


def test_rotate_now_runs_the_generated_rotator_off_the_gui_thread(qtbot, panel, unlocked_controller):
    vault, name = unlocked_controller.vault, "db/main/password"
    vault.set(name, rotator="generated", value_policy=ValuePolicy(40, "alnum"))
    unlocked_controller.notify_changed()
    assert cell(panel, name, Column.ROTATOR) == "generated"
    click_row(qtbot, panel, name)
    assert "generated" in panel.rotate_button.toolTip()
    qtbot.mouseClick(panel.rotate_button, Qt.MouseButton.LeftButton)
    box = panel.confirm_box
    assert box is not None and box.isVisible() and name in box.text() and "generated" in box.text()
    qtbot.mouseClick(next(b for b in box.buttons() if b.accessibleName() == "Cancel"), Qt.MouseButton.LeftButton)
    assert panel.rotating is None and vault.peek(name).value == f"old value of {name}"

    steps: list[str] = []
    panel.step_started.connect(lambda _name, step: steps.append(step))  # on the worker thread
    qtbot.mouseClick(panel.rotate_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(next(b for b in panel.confirm_box.buttons() if b.text() == "Rotate"), Qt.MouseButton.LeftButton)
    assert panel.rotating == name and not panel.rotate_button.isEnabled() and panel.progress.isVisible()
    wait_idle(qtbot, panel)
    assert steps == list(STEPS)
    secret = vault.peek(name)
    assert len(secret.value) == 40 and set(secret.value) <= set("".join(ALPHABETS["alnum"]))
    assert [v.value for v in secret.history] == [f"old value of {name}"]
    assert secret.rotation_count == 1 and secret.pending is None
    ops = [r.event.op for r in vault.audit_records() if r.event.name == name]
    assert ops[-4:] == ["rotate-create", "rotate-set", "rotate-test", "rotate-finish"]
    qtbot.waitUntil(lambda: status(panel, name) is RotationStatus.OK)
    assert cell(panel, name, Column.COUNT) == 1 and cell(panel, name, Column.STATUS) == "OK"
    assert panel.selected().name == name, "the selection follows the row"
    assert "Rotated 'db/main/password' with generated: version 2" in panel.message.text()
    assert not panel.progress.isVisible() and panel.rotate_button.isEnabled()
    assert secret.value not in shown_texts(panel), "the new value is never shown by the panel"


def tick(qtbot, box) -> None:
    """Click a check box on its indicator (a stretched box's centre may be empty space)."""
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(4, box.height() // 2))


def open_manual(qtbot, panel: RotationPanel, name: str) -> ManualRotationDialog:
    click_row(qtbot, panel, name)
    qtbot.mouseClick(panel.rotate_button, Qt.MouseButton.LeftButton)
    dialog = panel.manual_dialog
    assert dialog is not None and dialog.isVisible() and panel.confirm_box is None
    return dialog


def test_manual_rotation_guides_takes_the_value_twice_and_commits_it_once_confirmed(qtbot, panel, unlocked_controller):
    vault, name = unlocked_controller.vault, "brokers/ibkr/api_key"
    vault.set(name, fields={"url": "https://broker.example/keys"}, rotator="manual")
    dialog = open_manual(qtbot, panel, name)
    assert "https://broker.example/keys" in dialog.guidance.text() and name in dialog.guidance.text()
    assert dialog.value.echoMode() == QLineEdit.EchoMode.Password and not dialog.discard_button.isVisible()
    interactive = [w for w in dialog.findChildren(QWidget) if w.focusPolicy() != Qt.FocusPolicy.NoFocus
                   and w.isVisibleTo(dialog)]
    assert [type(w).__name__ for w in interactive if not w.accessibleName()] == []

    qtbot.keyClicks(dialog.value, "NEWKEY-4471")
    qtbot.keyClicks(dialog.repeat, "NEWKEY-4472")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "differ" in dialog.status.text() and dialog.repeat.text() == ""
    qtbot.keyClicks(dialog.repeat, "NEWKEY-4471")
    tick(qtbot, dialog.show_box)
    assert dialog.value.echoMode() == dialog.repeat.echoMode() == QLineEdit.EchoMode.Normal
    tick(qtbot, dialog.confirmed)
    assert dialog.ok_button.text() == "Rotate"
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible() and dialog.value.text() == dialog.repeat.text() == "", "typed values are wiped"
    wait_idle(qtbot, panel)
    secret = vault.peek(name)
    assert secret.value == "NEWKEY-4471" and secret.pending is None and secret.rotation_count == 1
    assert f"old value of {name}" in [v.value for v in secret.history]
    assert "Rotated 'brokers/ibkr/api_key' with manual" in panel.message.text()
    assert panel.manual_dialog is None and "NEWKEY-4471" not in shown_texts(panel)


def test_an_unconfirmed_manual_rotation_stays_pending_and_asks_only_for_the_confirmation(
        qtbot, panel, unlocked_controller):
    vault, name = unlocked_controller.vault, "exchanges/okx/api_key"
    dialog = open_manual(qtbot, panel, name)  # no rotator named: manual
    qtbot.keyClicks(dialog.value, "OKX-NEW-9910")
    qtbot.keyClicks(dialog.repeat, "OKX-NEW-9910")
    assert dialog.ok_button.text() == "Save as pending"
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, panel)
    secret = vault.peek(name)
    assert secret.value == f"old value of {name}", "the current value stays in use"
    assert secret.pending is not None and secret.pending.value == "OKX-NEW-9910"
    assert "saved as pending" in panel.message.text() and "current one stays in use" in panel.message.text()
    qtbot.waitUntil(lambda: cell(panel, name, Column.STATUS) == "Overdue · half-done")
    assert "half-done" in cell(panel, name, Column.STATUS, Qt.ItemDataRole.ToolTipRole)
    assert "1 half-done" in panel.summary.text()
    assert panel.rotate_button.text() == "&Resume rotation…"

    dialog = open_manual(qtbot, panel, name)
    assert not dialog.value.isVisibleTo(dialog) and not dialog.repeat.isVisibleTo(dialog), "nothing to type again"
    assert dialog.pending_note.isVisibleTo(dialog) and dialog.discard_button.isVisibleTo(dialog)
    assert not dialog.ok_button.isEnabled(), "a pending value has nothing to do but be confirmed"
    tick(qtbot, dialog.confirmed)
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, panel)
    secret = vault.peek(name)
    assert secret.value == "OKX-NEW-9910" and secret.pending is None
    assert f"old value of {name}" in [v.value for v in secret.history]
    assert "(resumed)" in panel.message.text()
    qtbot.waitUntil(lambda: cell(panel, name, Column.STATUS) == "OK")


def test_a_pending_manual_value_can_be_discarded(qtbot, panel, unlocked_controller):
    vault, name = unlocked_controller.vault, "exchanges/okx/api_key"
    dialog = open_manual(qtbot, panel, name)
    qtbot.keyClicks(dialog.value, "WRONG-KEY-1")
    qtbot.keyClicks(dialog.repeat, "WRONG-KEY-1")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, panel)
    assert vault.peek(name).pending is not None
    dialog = open_manual(qtbot, panel, name)
    qtbot.mouseClick(dialog.discard_button, Qt.MouseButton.LeftButton)
    secret = vault.peek(name)
    assert secret.pending is None and secret.value == f"old value of {name}"
    assert "Dropped the pending value" in panel.message.text()
    qtbot.waitUntil(lambda: cell(panel, name, Column.STATUS) == "OK")


def test_a_failed_step_is_one_line_naming_the_step_and_keeps_a_working_value(
        qtbot, panel, unlocked_controller, monkeypatch):
    def refuse(self, ctx, new):
        raise StepFailed("the exchange refused the new key")

    monkeypatch.setattr(GeneratedRotator, "test", refuse)
    vault, name = unlocked_controller.vault, "exchanges/binance/secret"
    vault.set(name, rotator="generated")
    unlocked_controller.notify_changed()
    click_row(qtbot, panel, name)
    qtbot.mouseClick(panel.rotate_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(next(b for b in panel.confirm_box.buttons() if b.text() == "Rotate"), Qt.MouseButton.LeftButton)
    wait_idle(qtbot, panel)
    text = panel.message.text()
    assert "failed at step 'test': the exchange refused the new key" in text and "\n" not in text
    secret = vault.peek(name)
    assert secret.value == f"old value of {name}" and secret.pending is not None
    assert secret.pending.value not in shown_texts(panel)
    qtbot.waitUntil(lambda: cell(panel, name, Column.STATUS).endswith("half-done"))
    assert [(r.event.op, r.event.outcome) for r in vault.audit_records() if r.event.name == name][-1] == \
        ("rotate-test", "failed")


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
    dialog = open_manual(qtbot, panel, "db/main/password")
    qtbot.keyClicks(dialog.value, "TYPED-BEFORE-LOCK")
    marker = panel.timeline.marker_rect("db/main/password").center().toPoint()
    unlocked_controller.lock()
    assert not dialog.isVisible() and panel.manual_dialog is None, "a pending question goes with the lock"
    assert dialog.value.text() == "" and dialog.parent() is None, "what was typed, and the guidance, are gone"
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



def test_the_rotator_and_value_policy_chosen_in_the_editor_drive_rotate_now(qtbot, panel, unlocked_controller):
    from its_desktop.ui.clipboard import shared_clipboard
    from its_desktop.ui.dialogs.secret_editor import BY_HAND, SecretAccess, SecretEditor

    vault, name = unlocked_controller.vault, "exchanges/binance/secret"
    editor = SecretEditor(unlocked_controller, SecretAccess(unlocked_controller, shared_clipboard(), panel))
    qtbot.addWidget(editor)
    editor.show()
    editor.load(name)
    assert editor.rotator.currentText() == BY_HAND and editor.rotator.accessibleName() == "Rotator"
    assert not editor.policy_alphabet.isEnabled(), "a person's value has no policy"
    editor.rotator.setCurrentIndex(editor.rotator.findText("generated"))
    assert editor.policy_alphabet.isEnabled() and not editor.policy_length.isEnabled(), "the rotator's default"
    editor.policy_alphabet.setCurrentIndex(editor.policy_alphabet.findText("hex"))
    editor.policy_length.setValue(24)
    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    secret = vault.peek(name)
    assert secret.rotator == "generated" and secret.value_policy == ValuePolicy(24, "hex")
    assert secret.rotation is not None and secret.rotation.every_days == 60, "the period is kept"
    editor.load(name)
    assert (editor.rotator.currentText(), editor.policy_alphabet.currentText(), editor.policy_length.value()) == \
        ("generated", "hex", 24)

    unlocked_controller.notify_changed()
    click_row(qtbot, panel, name)
    qtbot.mouseClick(panel.rotate_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(next(b for b in panel.confirm_box.buttons() if b.text() == "Rotate"), Qt.MouseButton.LeftButton)
    wait_idle(qtbot, panel)
    value = vault.peek(name).value
    assert len(value) == 24 and set(value) <= set("0123456789abcdef")

    editor.rotator.setCurrentIndex(0)  # back to by hand, no policy: both cleared, as the editor shows them
    editor.policy_alphabet.setCurrentIndex(0)
    qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    secret = vault.peek(name)
    assert secret.rotator is None and secret.value_policy is None
