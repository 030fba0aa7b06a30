"""File → Back up… and Export as plain text… (docs/backup.md).

Both dialogs ask for the master password (or a touch of the key that unlocked the session) again
before anything is written (``ReauthDialog``): an unlocked, unattended session must not be able
to hand every secret to whoever sits down at it, whether in plain text or under a passphrase of
their choosing. The work (a key derivation, the file) runs on the controller's runner, off the
GUI thread. The passphrase fields are emptied as they are read; no value is ever shown.
``add_backup_actions(window)`` puts both actions in the window's File menu (its Vault menu if
it has none).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...core.crypto import Argon2Params
from ...core.errors import VaultError
from ...services.backup import BackupDone, ExportDone, backup_vault, count_of, export_plaintext, passphrase_warning
from ..controller import VaultController
from .menus import file_menu
from .reauth import ReauthDialog

log = logging.getLogger(__name__)
EXPORT_FORMATS = (("json", "JSON (names, types, values, fields, tags)"), ("csv", "CSV (one row per secret)"),
                  ("env", ".env (NAME=value lines, values only)"))
PLAINTEXT_WARNING = ("The file will hold every value in plain text: anyone who can read it has your secrets. "
                     "Keep it off shared and synced folders and delete it as soon as you are done.")


def _named(widget: Any, name: str) -> Any:
    widget.setAccessibleName(name)
    return widget


class _WriteDialog(QDialog):
    """What both dialogs share: a target file, a re-authentication, the work on the runner,
    one status line, and nothing left behind when the vault locks."""

    title = ""
    action_text = ""
    reason = ""  # what the re-authentication dialog says
    file_filter = "All files (*)"

    def __init__(self, controller: VaultController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.reauth: ReauthDialog | None = None
        self._busy = False
        self.setWindowTitle(self.title)
        self.setAccessibleName(self.title)
        self.path = _named(QLineEdit(), "File to write")
        self.browse_button = _named(QPushButton("Choose…"), "Choose the file")
        self.replace = _named(QCheckBox("Replace the file if it exists"), "Replace an existing file")
        self.status = _named(QLabel(), f"{self.title} status")
        self.status.setWordWrap(True)
        self.go_button = _named(QPushButton(self.action_text), self.action_text)
        self.close_button = _named(QPushButton("Close"), "Close")
        file_row = QHBoxLayout()
        file_row.addWidget(self.path, 1)
        file_row.addWidget(self.browse_button)
        self.form = QFormLayout()
        self.form.addRow("File", file_row)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.go_button)
        buttons.addWidget(self.close_button)
        self.layout_ = QVBoxLayout(self)
        self.layout_.addLayout(self.form)
        self.layout_.addWidget(self.replace)
        self.layout_.addWidget(self.status)
        self.layout_.addLayout(buttons)
        self.browse_button.clicked.connect(self._choose_file)
        self.go_button.clicked.connect(self.start)
        self.close_button.clicked.connect(self.reject)
        controller.locked.connect(self.reject)
        self.finished.connect(lambda _result: self._forget())

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, self.title, self.path.text(), self.file_filter)
        if path:
            self.path.setText(path)
            self.replace.setChecked(Path(path).exists())  # the file dialog asked already

    def say(self, message: str) -> None:
        self.status.setText(message)

    def start(self) -> None:
        """Check the form, then re-authenticate; the work starts only once that succeeded."""
        if self._busy or self.controller.vault is None:
            return
        target = self.path.text().strip()
        if not target:
            return self.say("Choose a file to write.")
        if Path(target).expanduser().exists() and not self.replace.isChecked():
            return self.say(f"{target} exists: tick “Replace the file if it exists” to replace it.")
        work = self.prepare(Path(target).expanduser())
        if work is None:
            return
        if self.reauth is not None:
            self.reauth.deleteLater()
        self.reauth = ReauthDialog(self.controller, self.reason, self)
        self.reauth.confirm(lambda: self._run(work))

    def prepare(self, target: Path) -> Callable[[Any], Any] | None:
        """The work to run on the vault once re-authenticated, or None (and a status) if the
        form is not ready."""
        raise NotImplementedError

    def finish(self, result: Any) -> None:
        raise NotImplementedError

    def _run(self, work: Callable[[Any], Any]) -> None:
        vault = self.controller.vault
        if vault is None:
            return
        self._set_busy(True)
        self.say("Writing…")
        self.controller.runner.submit(lambda: work(vault), self._done, self._failed)

    def _done(self, result: Any) -> None:
        self._set_busy(False)
        if self.isVisible():
            self.finish(result)

    def _failed(self, error: BaseException) -> None:
        self._set_busy(False)
        if isinstance(error, VaultError):
            reason = str(error)
        elif isinstance(error, OSError):
            reason = f"{error.strerror or 'I/O error'}: {error.filename or ''}".rstrip(": ")
        else:
            log.error("%s failed", self.title, exc_info=(type(error), error, error.__traceback__))
            reason = "unexpected error (see the log)"
        self.say(f"Nothing written: {reason}")

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.go_button.setEnabled(not busy)

    def _forget(self) -> None:
        """Closed or locked: no secret stays in a widget."""
        for edit in self.findChildren(QLineEdit):
            if edit.echoMode() != QLineEdit.EchoMode.Normal:
                edit.clear()


class BackupDialog(_WriteDialog):
    """An encrypted copy of the whole vault under a passphrase of its own."""

    title = "Back up the vault"
    action_text = "Back up"
    reason = "A backup holds every secret under a passphrase you choose now: confirm it is you."
    file_filter = "ITS vault backups (*.its);;All files (*)"

    def __init__(self, controller: VaultController, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.kdf: Argon2Params | None = None  # the defaults; tests use a fast one
        self._note = ""
        self.passphrase = _named(QLineEdit(echoMode=QLineEdit.EchoMode.Password), "Backup passphrase")
        self.confirm_passphrase = _named(QLineEdit(echoMode=QLineEdit.EchoMode.Password), "Backup passphrase again")
        self.with_recovery = _named(QCheckBox("Also make a recovery code that opens this backup"),
                                    "Make a recovery code for the backup")
        self.recovery_code = _named(QLineEdit(readOnly=True), "Recovery code of the backup")
        self.form.addRow("Passphrase", self.passphrase)
        self.form.addRow("Again", self.confirm_passphrase)
        self.form.addRow("", self.with_recovery)
        self.form.addRow("Recovery code", self.recovery_code)
        self.form.setRowVisible(self.recovery_code, False)
        self.layout_.insertWidget(1, QLabel("Restore it with: its-vault restore-backup FILE"))

    def prepare(self, target: Path) -> Callable[[Any], BackupDone] | None:
        passphrase, again = self.passphrase.text(), self.confirm_passphrase.text()
        if not passphrase:
            self.say("Choose a passphrase for the backup.")
            return None
        if passphrase != again:
            self.confirm_passphrase.clear()
            self.say("The two passphrases do not match.")
            return None
        self.passphrase.clear()
        self.confirm_passphrase.clear()
        warning = passphrase_warning(passphrase)
        self._note = f" Note: {warning}." if warning else ""
        kdf, recovery, force = self.kdf, self.with_recovery.isChecked(), self.replace.isChecked()
        return lambda vault: backup_vault(vault, target, passphrase, kdf=kdf, recovery=recovery, force=force)

    def finish(self, result: BackupDone) -> None:
        said = f"Backed up {count_of(result.secrets)} to {result.path}.{self._note}"
        if result.recovery_code:
            self.recovery_code.setText(result.recovery_code)
            self.form.setRowVisible(self.recovery_code, True)
            said += " Write the recovery code down now, apart from the backup: it is shown once."
        self.say(said)

    def _forget(self) -> None:
        super()._forget()
        self.recovery_code.clear()


class ExportDialog(_WriteDialog):
    """Every value in plain text: JSON, CSV or .env."""

    title = "Export as plain text"
    action_text = "Export"
    reason = "Exporting writes every value in plain text: confirm it is you."

    def __init__(self, controller: VaultController, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.format = _named(QComboBox(), "Export format")
        for fmt, label in EXPORT_FORMATS:
            self.format.addItem(label, fmt)
        self.prefix = _named(QLineEdit(), "Only the folder")
        self.prefix.setPlaceholderText("optional, e.g. bots/alpha (names relative to it)")
        self.form.addRow("Format", self.format)
        self.form.addRow("Folder", self.prefix)
        self.warning = _named(QLabel(PLAINTEXT_WARNING), "Plain text warning")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("font-weight: bold")
        self.layout_.insertWidget(0, self.warning)

    def prepare(self, target: Path) -> Callable[[Any], ExportDone] | None:
        fmt, prefix, force = self.format.currentData(), self.prefix.text().strip() or None, self.replace.isChecked()
        return lambda vault: export_plaintext(vault, target, fmt, prefix, force=force)

    def finish(self, result: ExportDone) -> None:
        self.say(f"Exported {count_of(result.secrets)} as {result.format} to {result.path}: delete it when done.")


class BackupActions(QObject):
    """Back up… and Export as plain text…: enabled while the vault is unlocked, one dialog each."""

    def __init__(self, window: QMainWindow, controller: VaultController) -> None:
        super().__init__(window)
        self._window, self.controller = window, controller
        self.backup_action = QAction("&Back up…", window, triggered=lambda: self.open(BackupDialog))
        self.backup_action.setStatusTip("Write an encrypted copy of the whole vault under a passphrase of its own")
        self.export_action = QAction("&Export as plain text…", window, triggered=lambda: self.open(ExportDialog))
        self.export_action.setStatusTip("Write every value in plain text to a file (asks for the password again)")
        self.dialog: _WriteDialog | None = None
        self._enable(controller.vault is not None)
        controller.unlocked.connect(lambda: self._enable(True))
        controller.locked.connect(lambda: self._enable(False))

    def _enable(self, on: bool) -> None:
        self.backup_action.setEnabled(on)
        self.export_action.setEnabled(on)

    def open(self, kind: type[_WriteDialog]) -> _WriteDialog | None:
        if self.controller.vault is None:
            return None
        if isinstance(self.dialog, kind):
            self.dialog.raise_()
            self.dialog.activateWindow()
            return self.dialog
        if self.dialog is not None:
            self.dialog.reject()
        dialog = kind(self.controller, self._window)
        dialog.finished.connect(lambda _result: self._closed(dialog))
        self.dialog = dialog
        dialog.open()
        return dialog

    def _closed(self, dialog: _WriteDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None
        dialog.deleteLater()


def add_backup_actions(window: QMainWindow) -> BackupActions:
    """Put Back up… and Export as plain text… in the window's File menu (its Vault menu if it has
    no File menu), before Quit when there is one. ``window`` has a ``controller``. Once per
    window: the ones already there are returned."""
    if getattr(window, "backup_actions", None) is not None:
        return window.backup_actions
    actions = BackupActions(window, window.controller)
    menu = file_menu(window)
    quit_action = next((a for a in menu.actions() if a.text().replace("&", "") == "Quit"), None)
    before = quit_action
    if quit_action is not None:
        index = menu.actions().index(quit_action)
        if index > 0 and menu.actions()[index - 1].isSeparator():
            before = menu.actions()[index - 1]
    menu.insertAction(before, actions.backup_action)
    menu.insertAction(before, actions.export_action)
    if before is quit_action:
        menu.insertSeparator(before)
    window.backup_actions = actions
    return actions
