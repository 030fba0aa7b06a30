"""The unlock page and main window, driven as a user would: keys and clicks."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from its_desktop.core.vault.api import Vault
from its_desktop.ui.window import panel_classes

PASSWORD = "gui test password"


def _create_vault(qtbot, window) -> None:
    page = window.unlock_page
    assert page.confirm.isVisible(), "a missing vault offers to create one"
    qtbot.keyClicks(page.password, PASSWORD)
    qtbot.keyClicks(page.confirm, PASSWORD)
    qtbot.mouseClick(page.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.tabs, timeout=20_000)
    box = window.unlock_page.recovery_box
    assert isinstance(box, QMessageBox) and box.isVisible() and "-" in box.text()
    box.accept()


def press(qtbot, window, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """A key press as the user makes it: to the focused widget of the active window."""
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(QApplication.focusWidget() or window, key, modifier)


def test_create_lock_and_unlock_again(qtbot, window):
    _create_vault(qtbot, window)
    assert window.unlock_page.password.text() == "", "the typed password is not kept in the widget"
    press(qtbot, window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.stack.currentWidget() is window.unlock_page
    assert not window.unlock_page.confirm.isVisible()
    qtbot.keyClicks(window.unlock_page.password, PASSWORD)
    qtbot.keyClick(window.unlock_page.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.tabs, timeout=20_000)


def test_wrong_password_says_so_and_stays_locked(qtbot, window):
    _create_vault(qtbot, window)
    window.controller.lock(quick=False)
    qtbot.keyClicks(window.unlock_page.password, "not it")
    qtbot.keyClick(window.unlock_page.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "wrong password" in window.unlock_page.status.text().lower(), timeout=20_000)
    assert window.stack.currentWidget() is window.unlock_page
    assert window.controller.vault is None


def test_quick_unlock_with_an_emulated_key(qtbot, window):
    _create_vault(qtbot, window)
    from its_desktop.factors import hardware
    from its_desktop.factors.base import QuietPrompter

    hardware.enroll(window.controller.vault, hardware.list_keys("fido2")[0], PASSWORD, QuietPrompter(), "fido")
    window.controller.lock(quick=False)
    qtbot.waitUntil(lambda: "ITS Emulated FIDO2 key" in window.unlock_page.plugged_label.text(), timeout=10_000)
    window.unlock_page.factor.setCurrentIndex(window.unlock_page.factor.findData("fido2"))
    qtbot.keyClicks(window.unlock_page.password, PASSWORD)
    qtbot.keyClick(window.unlock_page.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.tabs, timeout=20_000)
    press(qtbot, window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.unlock_page.quick_button.isVisible()
    qtbot.mouseClick(window.unlock_page.quick_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.tabs, timeout=20_000)
    assert window.controller.vault is not None


def test_demo_vault_opens_with_its_password(tmp_path, monkeypatch):
    monkeypatch.setenv("ITS_EMULATED_KEYS", str(tmp_path / "keys.json"))
    from its_desktop.ui.demo import DEMO_PASSWORD, make_demo_vault

    path = make_demo_vault(tmp_path)
    with Vault.open(path, DEMO_PASSWORD) as vault:
        assert len(vault) >= 8
        assert {s.kind for s in vault.slots} >= {"password", "yubikey", "fido2"}


def test_every_panel_has_a_title_and_an_accessible_name(qtbot, window):
    for panel in window.panels:
        assert panel.title and panel.accessibleName() == panel.title
    assert len(window.panels) == len(panel_classes())


def test_a_change_saved_by_another_process_reaches_the_panels(qtbot, unlocked_controller):
    import subprocess
    import sys

    from tests.conftest import PASSWORD as VAULT_PASSWORD

    changes = []
    unlocked_controller.changed.connect(lambda: changes.append(1))
    env = {"ITS_VAULT_PATH": str(unlocked_controller.path), "ITS_MASTER_PASSWORD": VAULT_PASSWORD,
           "PATH": "/usr/bin:/bin", "ITS_LOCK_TIMEOUT": "20"}
    subprocess.run([sys.executable, "-m", "its_desktop.cli.main", "set", "from/cli", "--value-stdin"],
                   input="v", text=True, env=env, check=True, capture_output=True)
    qtbot.waitUntil(lambda: bool(changes), timeout=5_000)
    assert "from/cli" in unlocked_controller.vault.names()


def test_the_vault_menu_tools_are_there_once_the_panels_are(qtbot, window):
    from PySide6.QtWidgets import QMenu

    from its_desktop.ui.dialogs.import_dialog import ImportAction

    window.ensure_panels()
    texts = [a.text().replace("&", "") for menu in window.menuBar().findChildren(QMenu) for a in menu.actions()]
    assert window.findChild(ImportAction) is not None
    assert window.scan_action is not None and window.backup_actions is not None
    assert any("Scan folders" in t for t in texts) and any(t.startswith("Back up") for t in texts)
