"""File → Back up… and Export as plain text…: both ask for the master password again, a refused
re-authentication writes nothing, and the files are private and audited."""

from __future__ import annotations

import json
import stat

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from its_desktop.core.vault import backups
from its_desktop.core.vault.api import PasswordOpener, Vault
from its_desktop.factors.base import QuietPrompter
from its_desktop.ui.dialogs.export_dialog import BackupDialog, ExportDialog, add_backup_actions
from its_desktop.ui.dialogs.reauth import ReauthDialog
from tests.conftest import FAST_KDF, PASSWORD

LEFT = Qt.MouseButton.LeftButton
VALUES = {"brokers/ibkr/api_key": "ibkr-value-uniq-19af", "db/main/password": "db-value-uniq-77c0"}
PASSPHRASE = "a long backup passphrase uniq-e3e3"


@pytest.fixture
def actions(qtbot, window):
    with Vault.create(window.controller.path, PASSWORD, kdf=FAST_KDF) as vault:
        for name, value in VALUES.items():
            vault.set(name, value, fields={"account": "U1"})
    window.controller.session.unlock(PASSWORD, QuietPrompter())
    window.controller.unlocked.emit()
    made = add_backup_actions(window)
    yield made
    qtbot.waitUntil(lambda: window.controller.runner.pending == 0, timeout=30_000)


def reauthenticate(qtbot, dialog, password: str) -> ReauthDialog:
    reauth = dialog.reauth
    assert isinstance(reauth, ReauthDialog) and reauth.isVisible()
    qtbot.keyClicks(reauth.password, password)
    qtbot.mouseClick(reauth.buttons.button(QDialogButtonBox.StandardButton.Ok), LEFT)
    return reauth


def audited(window, op: str) -> list[tuple[str, str | None]]:
    return [(r.event.outcome, r.event.detail) for r in window.controller.vault.audit_records() if r.event.op == op]


def test_both_actions_sit_in_the_menu_and_follow_the_lock(window, actions):
    menu = window.menuBar().actions()[0].menu()
    texts = [a.text() for a in menu.actions()]
    assert texts.index("&Back up…") < texts.index("&Export as plain text…") < texts.index("&Quit")
    assert actions.backup_action.isEnabled() and actions.export_action.isEnabled()
    actions.export_action.trigger()
    dialog = actions.dialog
    assert isinstance(dialog, ExportDialog) and dialog.isVisible() and "plain text" in dialog.warning.text()
    window.controller.lock(quick=False)
    assert not dialog.isVisible() and actions.dialog is None
    assert not actions.backup_action.isEnabled() and not actions.export_action.isEnabled()


def test_a_backup_needs_the_password_again_then_writes_a_private_encrypted_copy(qtbot, window, actions, tmp_path):
    target = tmp_path / "usb" / "desk.its"
    target.parent.mkdir()
    actions.backup_action.trigger()
    dialog = actions.dialog
    assert isinstance(dialog, BackupDialog)
    dialog.kdf = FAST_KDF
    dialog.path.setText(str(target))
    qtbot.keyClicks(dialog.passphrase, PASSPHRASE)
    qtbot.keyClicks(dialog.confirm_passphrase, PASSPHRASE + "typo")
    qtbot.mouseClick(dialog.go_button, LEFT)
    assert "do not match" in dialog.status.text() and dialog.reauth is None
    assert dialog.confirm_passphrase.text() == ""  # emptied: type it again
    qtbot.keyClicks(dialog.confirm_passphrase, PASSPHRASE)
    dialog.with_recovery.setChecked(True)
    qtbot.mouseClick(dialog.go_button, LEFT)
    assert dialog.passphrase.text() == "" and dialog.confirm_passphrase.text() == ""

    reauth = reauthenticate(qtbot, dialog, "not the password")
    qtbot.waitUntil(lambda: "did not match" in reauth.status.text(), timeout=20_000)
    assert not target.exists(), "a refused re-authentication writes nothing"
    reauthenticate(qtbot, dialog, PASSWORD)
    qtbot.waitUntil(lambda: "Backed up 2 secrets" in dialog.status.text(), timeout=20_000)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    code = dialog.recovery_code.text()
    assert len(code) == 39 and not any(v in dialog.status.text() for v in VALUES.values())

    copy = backups.open_copy(target, [PasswordOpener(PASSPHRASE)])
    try:
        assert {n: copy.body.get(n).value for n in VALUES} == VALUES
        assert copy.header.vault_id != window.controller.vault.vault_id
    finally:
        copy.wipe()
    assert audited(window, "backup") == [("ok", "2 secrets to desk.its")]
    assert [outcome for outcome, _ in audited(window, "reauth")] == ["failed", "ok"]
    dialog.reject()
    assert dialog.recovery_code.text() == "", "nothing secret stays in a closed dialog"


def test_an_export_needs_the_password_again_and_a_refusal_writes_nothing(qtbot, window, actions, tmp_path):
    target = tmp_path / "all.json"
    actions.export_action.trigger()
    dialog = actions.dialog
    dialog.path.setText(str(target))
    qtbot.mouseClick(dialog.go_button, LEFT)
    dialog.reauth.reject()  # cancelled
    assert not target.exists()

    qtbot.mouseClick(dialog.go_button, LEFT)
    reauth = reauthenticate(qtbot, dialog, "not the password")
    qtbot.waitUntil(lambda: "did not match" in reauth.status.text(), timeout=20_000)
    assert not target.exists() and audited(window, "export") == []

    reauthenticate(qtbot, dialog, PASSWORD)
    qtbot.waitUntil(lambda: "Exported 2 secrets" in dialog.status.text(), timeout=20_000)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert {r["name"]: r["value"] for r in json.loads(target.read_text())} == VALUES
    assert audited(window, "export") == [("ok", "2 secrets as json to all.json")]

    qtbot.mouseClick(dialog.go_button, LEFT)  # again, onto the same file: not without saying so
    assert "exists" in dialog.status.text() and dialog.reauth.isHidden()
