"""Emergency lockdown from the window (Ctrl+Shift+L) and from ``its-vault lockdown`` through the
app's agent socket: every grant revoked, every secret overdue, the clipboard emptied whatever
it held, the window locked."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from its_desktop.agent.grants import Grant, add_to_settings, load_grants
from its_desktop.client import AgentClient
from its_desktop.core.rotation import RotationStatus
from its_desktop.core.schedule import build_schedule
from its_desktop.core.secrets import utcnow
from its_desktop.core.vault.api import Vault
from its_desktop.ui.window import LOCKDOWN_SHORTCUT, MainWindow
from tests.conftest import PASSWORD

SECRETS = {"brokers/ibkr/api_key": "IBKR-VALUE-5521", "db/main/password": "DB-VALUE-8812"}



@pytest.fixture
def window(qtbot, unlocked_controller):
    vault = unlocked_controller.vault
    for name, value in SECRETS.items():
        vault.set(name, value)
    vault.change_settings(lambda s: add_to_settings(s, Grant.new("brokers/*", sys.executable, None)))
    win = MainWindow(unlocked_controller)
    qtbot.addWidget(win)
    win.show()
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow)
    unlocked_controller.unlocked.emit()
    assert win.agent.server is not None and win.lockdown_action.isEnabled()
    # A secret copied by the app, then something the user copied from elsewhere (a leaked key?).
    win.clipboard.copy(SECRETS["db/main/password"])
    QGuiApplication.clipboard().setText("copied from elsewhere")
    return win


def after_lockdown(window: MainWindow) -> None:
    """What every lockdown leaves: checked on the vault file, opened again."""
    assert window.controller.vault is None and window.stack.currentWidget() is window.unlock_page
    assert window.agent.server is None and not window.lockdown_action.isEnabled()
    assert QGuiApplication.clipboard().text() == "", "cleared whatever it held"
    with Vault.open(window.controller.path, PASSWORD) as vault:
        assert load_grants(vault.settings()) == []
        schedule = build_schedule(vault.summaries(), utcnow())
        assert {e.name: e.status for e in schedule} == dict.fromkeys(SECRETS, RotationStatus.OVERDUE)
        assert ("lockdown", "ok") in [(r.event.op, r.event.outcome) for r in vault.audit_records()]
    said = window.statusBar().currentMessage()
    assert said == window.tray.last_message and "vault is locked and the clipboard cleared" in said
    assert not any(value in said for value in SECRETS.values())


def test_the_lockdown_button_asks_then_locks_everything_down(qtbot, window):
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    box = window.lockdown_box
    assert LOCKDOWN_SHORTCUT == "Ctrl+Shift+L" and box is not None and box.isVisible()
    details = box.informativeText()
    assert "grant" in details and "rotate now" in details and "clipboard" in details and "locks" in details
    qtbot.mouseClick(next(b for b in box.buttons() if b.accessibleName() == "Cancel"), Qt.MouseButton.LeftButton)
    assert window.controller.vault is not None and window.lockdown_box is None, "Cancel changes nothing"
    assert QGuiApplication.clipboard().text() == "copied from elsewhere"

    window.lockdown_action.trigger()  # the Vault menu's entry
    box = window.lockdown_box
    qtbot.mouseClick(next(b for b in box.buttons() if b.accessibleName() == "Lock down"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.controller.vault is None, timeout=10_000)
    after_lockdown(window)
    assert "1 agent grant revoked, 2 secrets marked rotate now" in window.statusBar().currentMessage()


def test_its_vault_lockdown_through_the_agent_locks_the_window_and_clears_the_clipboard(qtbot, window):
    with AgentClient(window.agent.server.socket_path, timeout=10) as client:
        reply = client.lockdown()  # what `its-vault lockdown` sends
    assert reply["done"] and reply["grants_revoked"] == 1 and reply["secrets_marked"] == 2
    qtbot.waitUntil(lambda: window.controller.vault is None, timeout=10_000)
    after_lockdown(window)
    assert "its-vault lockdown" in window.statusBar().currentMessage()
