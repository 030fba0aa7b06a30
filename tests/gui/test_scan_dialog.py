"""Vault ▸ Scan folders for leaked secrets…: scan on the runner, findings without values, replace
the selected vault value with an its:// reference after one confirmation, lock closes it."""

from __future__ import annotations

import stat

import pytest
from PySide6.QtCore import QItemSelectionModel
from PySide6.QtWidgets import QMessageBox

from its_desktop.core.vault.api import Vault
from its_desktop.ui.dialogs.scan_dialog import ACTION_TEXT, Column, FindingsModel, add_scan_action
from its_desktop.ui.window import MainWindow
from tests.conftest import PASSWORD

VALUE = "Kq7Zr2Lm9Xw4Vb8Nc3Td"


@pytest.fixture
def window(qtbot, unlocked_controller):
    unlocked_controller.vault.set("brokers/ibkr/api_key", VALUE)
    win = MainWindow(unlocked_controller)
    qtbot.addWidget(win)
    add_scan_action(win)
    win.show()
    unlocked_controller.unlocked.emit()
    return win


def test_scan_then_replace_the_selected_value(qtbot, qtmodeltester, window, tmp_path):
    project = tmp_path / "bot"
    project.mkdir()
    env = project / ".env"
    env.write_text(f"API_KEY={VALUE}\n")
    env.chmod(0o600)
    (project / "creds.txt").write_text("AKIA" + "Q" * 16 + "\n")
    assert window.scan_action.isEnabled() and window.scan_action.text() == ACTION_TEXT
    assert ACTION_TEXT in [a.text() for a in window.menuBar().actions()[0].menu().actions()]

    window.scan_action.trigger()
    dialog = window.scan_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.add_folder(str(project))
    dialog.scan_button.click()
    qtbot.waitUntil(lambda: not dialog.scanning and dialog.model.rowCount() == 2, timeout=20_000)
    qtmodeltester.check(dialog.model)
    cells = [[dialog.model.index(r, c).data() for c in Column] for r in range(2)]
    assert cells[0][Column.FOUND] == "secret brokers/ibkr/api_key"
    assert cells[1][Column.FOUND] == "AWS access key id (pattern)"
    shown = repr(cells) + dialog.status.text()
    assert VALUE not in shown and "AKIA" not in shown
    assert "files scanned" in dialog.status.text()

    dialog.table.selectRow(1)  # a pattern: nothing to replace it with
    assert not dialog.replace_button.isEnabled()
    dialog.table.selectionModel().select(dialog.model.index(0, 0),
                                         QItemSelectionModel.SelectionFlag.ClearAndSelect
                                         | QItemSelectionModel.SelectionFlag.Rows)
    assert dialog.replace_button.isEnabled()
    dialog.replace_button.click()
    box = dialog.confirm_box
    assert box is not None and box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: dialog.last_fix is not None, timeout=20_000)
    assert env.read_text() == "API_KEY=its://brokers/ibkr/api_key\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert dialog.model.index(0, Column.STATUS).data() == "replaced with its:// reference"
    assert not dialog.replace_button.isEnabled()

    window.controller.lock(quick=False)
    assert window.scan_dialog is None or not window.scan_dialog.isVisible()
    assert not window.scan_action.isEnabled()
    with Vault.open(window.controller.path, PASSWORD) as vault:
        ops = [(r.event.op, r.event.detail) for r in vault.audit_records()]
    assert ("scan", "2 files, 1 vault values, 1 patterns found") in ops
    assert ("scan-fix", "1 values replaced in 1 files") in ops


def test_cancel_leaves_the_dialog_ready_again(qtbot, window, tmp_path):
    for i in range(300):
        (tmp_path / f"f{i}.txt").write_text("nothing here\n")
    window.scan_action.trigger()
    dialog = window.scan_dialog
    dialog.add_folder(str(tmp_path))
    dialog.start_scan()
    dialog.cancel_scan()
    qtbot.waitUntil(lambda: not dialog.scanning, timeout=20_000)
    assert dialog.scan_button.isEnabled() and dialog.model.rowCount() == 0
    dialog.close()


def test_the_findings_model_passes_the_model_tester(qtmodeltester):
    from its_desktop.scan.report import Finding

    model = FindingsModel()
    model.append([Finding("a", 1, 1, "secret", "x/y", None, 0, 9), Finding("b", 2, 3, "pattern", "private key",
                                                                          "private-key", 4, 20)])
    qtmodeltester.check(model)
    model.mark_replaced([Finding("a", 1, 1, "secret", "x/y", None, 0, 9)])
    assert model.index(0, Column.STATUS).data() == "replaced with its:// reference"
    model.clear()
    assert model.rowCount() == 0
