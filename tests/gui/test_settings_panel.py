"""Settings: saved as the user changes them, applied to quick unlock; KDF calibration; tray."""

from __future__ import annotations

import json
from datetime import timedelta

from PySide6.QtCore import Qt

from its_desktop.core.crypto import Argon2Params
from its_desktop.core.rotation import RotationPolicy
from its_desktop.ui.panels.settings import SettingsPanel
from its_desktop.ui.settings import AppSettings
from its_desktop.ui.tray import Tray, pending_rotations
from tests.conftest import PASSWORD


def test_changes_are_saved_and_applied(qtbot, unlocked_controller, tmp_path):
    panel = SettingsPanel(unlocked_controller)
    qtbot.addWidget(panel)
    panel.show()
    panel.auto_lock.setValue(12)
    qtbot.mouseClick(panel.lock_on_sleep, Qt.MouseButton.LeftButton)
    panel.quick_unlock.setValue(2.0)
    saved = json.loads((tmp_path / "settings.json").read_text())
    assert saved["auto_lock_minutes"] == 12 and saved["lock_on_sleep"] is False and saved["quick_unlock_hours"] == 2.0
    assert unlocked_controller.session.policy.window_seconds == 7200
    assert AppSettings.load().auto_lock_minutes == 12


def test_kdf_calibration_and_apply(qtbot, unlocked_controller, monkeypatch):
    panel = SettingsPanel(unlocked_controller)
    qtbot.addWidget(panel)
    panel.show()
    unlocked_controller.unlocked.emit()
    assert "8 MiB" in panel.kdf_label.text()
    monkeypatch.setattr("its_desktop.ui.panels.settings.calibrate_argon2", lambda target: Argon2Params(9 * 1024, 2, 1))
    qtbot.mouseClick(panel.calibrate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(panel.apply_kdf_button.isEnabled, timeout=10_000)
    monkeypatch.setattr("its_desktop.ui.panels.settings.QInputDialog.getText", lambda *a, **k: (PASSWORD, True))
    qtbot.mouseClick(panel.apply_kdf_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.kdf_status.text() == "Applied.", timeout=10_000)
    assert "9 MiB, 2 passes" in panel.kdf_label.text()
    unlocked_controller.lock(quick=False)
    assert panel.kdf_label.text() == ""


def test_tray_counts_due_rotations(qtbot, unlocked_controller):
    from PySide6.QtWidgets import QWidget

    vault = unlocked_controller.vault
    vault.set("old", "v", rotation=RotationPolicy(30))
    vault.set("fresh", "v", rotation=RotationPolicy(365))
    base = vault.peek("old").value_updated
    unlocked_controller.clock = lambda: base + timedelta(days=31)
    assert pending_rotations(vault, unlocked_controller.clock()) == "Rotation: 1 overdue."
    host = QWidget()
    qtbot.addWidget(host)
    tray = Tray(unlocked_controller, host, host.windowIcon())
    unlocked_controller.unlocked.emit()
    assert tray.lock_action.isEnabled()
    qtbot.waitUntil(lambda: tray.last_message == "Rotation: 1 overdue.", timeout=5_000)
    unlocked_controller.lock()
    assert not tray.lock_action.isEnabled()
