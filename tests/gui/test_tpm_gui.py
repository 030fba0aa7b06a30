"""The TPM slot in the app against a real swtpm: enrolled from the MFA panel with a PIN typed
twice, then the unlock page opens the vault with the TPM and the PIN alone."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from its_desktop.ui.panels.mfa import MfaPanel, SlotColumn
from tests.gui.test_window import _create_vault
from tests.integration.swtpm import swtpm  # noqa: F401 (fixture)

PIN = "gui-tpm-pin-uniq-5521"
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def tpm_window(qtbot, window, swtpm, monkeypatch):
    monkeypatch.setenv("ITS_TPM_TCTI", swtpm.tcti)
    _create_vault(qtbot, window)
    return window


def _enroll_from_the_mfa_panel(qtbot, window) -> None:
    panel = next(p for p in window.panels if isinstance(p, MfaPanel))
    window.tabs.setCurrentWidget(panel)
    qtbot.mouseClick(panel.add_tpm_button, LEFT)
    dialog = panel.key_dialog
    assert dialog is not None and dialog.isVisible() and not dialog.password.isVisible()
    qtbot.keyClicks(dialog.pin, PIN)
    qtbot.keyClicks(dialog.pin_again, PIN + "x")
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), LEFT)
    assert dialog.isVisible() and "differ" in dialog.problem.text()
    qtbot.keyClicks(dialog.pin_again, PIN)
    qtbot.keyClick(dialog.pin_again, Qt.Key.Key_Return)
    assert dialog.pin.text() == "" and dialog.pin_again.text() == ""  # wiped on close

    def kinds() -> list[str]:
        return [panel.slots.index(r, SlotColumn.KIND).data() for r in range(panel.slots.rowCount())]

    qtbot.waitUntil(lambda: any("TPM" in kind for kind in kinds()), timeout=20_000)
    assert "Enrolled this workstation's TPM" in panel.status.text()


def test_enrol_the_tpm_then_unlock_with_the_pin_alone(qtbot, tpm_window):
    window = tpm_window
    _enroll_from_the_mfa_panel(qtbot, window)
    window.controller.lock(quick=False)
    page = window.unlock_page
    index = page.factor.findData("tpm2")
    assert page.factor.isVisible() and index >= 0
    page.factor.setCurrentIndex(index)
    assert page.pin.isVisible() and not page.password.isEnabled()

    qtbot.keyClicks(page.pin, "wrong-pin-0000")
    qtbot.keyClick(page.pin, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "wrong tpm pin" in page.status.text().lower(), timeout=20_000)
    assert window.controller.vault is None

    page.pin.clear()
    qtbot.keyClicks(page.pin, PIN)
    qtbot.keyClick(page.pin, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.tabs, timeout=20_000)
    assert window.controller.vault is not None and page.pin.text() == ""
    window.controller.lock(quick=False)
    assert page.factor.currentData() == "tpm2", "the unlock page keeps the factor the user chose"
