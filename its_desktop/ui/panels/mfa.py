"""The MFA tab: one-time codes (TOTP, HOTP, Steam) and the vault's own hardware factors.

Codes are never kept: the accounts model holds names and labels only, and computes a code in
``data()``, which the view calls for the rows on screen; a timer asks the view to repaint
them. An HOTP code (which uses up a counter) is kept only while shown, and a lock wipes it with
everything else. Accounts come from a QR code (an image file, a screenshot, the clipboard) or
a pasted ``otpauth://`` URI, or are made here for a service you run. Showing an account's QR
code asks for the password (or a key touch) again. The key slots (YubiKey, FIDO2 key, recovery
code) are enrolled, listed and removed here too; enrolment runs off the GUI thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Callable, Generic, Sequence, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ...core import totp
from ...core.errors import InvalidInput, VaultError, WrongCredentials
from ...core.secrets import SecretType, validate_name
from ...core.vault import slots as slotlib
from ...core.vault.header import KeySlot
from ...factors.registry import FACTORS
from ...services import qr
from ..controller import GuiPrompter, VaultController
from ..dialogs.reauth import ReauthDialog
from ..dialogs.totp_enroll import NewTotpDialog, QrDialog
from .base import Panel

log = logging.getLogger(__name__)

TICK_MS = 500  # twice a second, so the countdown never lags a whole second behind
HOTP_SHOWN_SECONDS = 30
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif);;All files (*)"
_FACTOR_TITLES = {f.kind: f.title for f in FACTORS}

Row = TypeVar("Row")
Index = QModelIndex | QPersistentModelIndex


# -- models -------------------------------------------------------------------------------------


class KeyedTableModel(QAbstractTableModel, Generic[Row]):
    """Rows with a stable key, updated incrementally: ``sync`` removes, inserts and changes
    single rows (never a reset), so selections and scroll positions survive a refresh."""

    headers: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[Row] = []

    def key(self, row: Row) -> str:
        raise NotImplementedError

    def cell(self, row: Row, column: int) -> str:
        raise NotImplementedError

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt override)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt override)
        return 0 if parent.isValid() else len(self.headers)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 (Qt override)
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(self.headers):
            return self.headers[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.cell(row, index.column())
        if role == Qt.ItemDataRole.UserRole:
            return self.key(row)
        return None

    def row_at(self, position: int) -> Row:
        return self._rows[position]

    def sync(self, rows: Sequence[Row]) -> None:
        keys = [self.key(r) for r in rows]
        wanted = set(keys)
        for i in reversed(range(len(self._rows))):
            if self.key(self._rows[i]) not in wanted:
                self._remove(i)
        for i, (key, row) in enumerate(zip(keys, rows)):
            if i < len(self._rows) and self.key(self._rows[i]) == key:
                if self._rows[i] != row:
                    self._rows[i] = row
                    self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.headers) - 1))
                continue
            moved = next((j for j in range(i + 1, len(self._rows)) if self.key(self._rows[j]) == key), None)
            if moved is not None:
                self._remove(moved)
            self.beginInsertRows(QModelIndex(), i, i)
            self._rows.insert(i, row)
            self.endInsertRows()

    def _remove(self, i: int) -> None:
        self.beginRemoveRows(QModelIndex(), i, i)
        del self._rows[i]
        self.endRemoveRows()


@dataclass(frozen=True)
class AccountRow:
    """What the accounts list may hold: names and labels, never the secret or a code."""

    name: str
    issuer: str
    account: str
    kind: str


class AccountColumn(IntEnum):
    NAME = 0
    ISSUER = 1
    ACCOUNT = 2
    CODE = 3
    LEFT = 4


CodeCell = Callable[[AccountRow], tuple[str, str]]  # (code, time left) at this moment


class AccountModel(KeyedTableModel[AccountRow]):
    headers = ("Name", "Issuer", "Account", "Code", "Time left")

    def __init__(self, code_cell: CodeCell) -> None:
        super().__init__()
        self._code_cell = code_cell

    def key(self, row: AccountRow) -> str:
        return row.name

    def cell(self, row: AccountRow, column: int) -> str:
        if column == AccountColumn.NAME:
            return row.name
        if column == AccountColumn.ISSUER:
            return row.issuer
        if column == AccountColumn.ACCOUNT:
            return row.account
        code, left = self._code_cell(row)  # computed now, for a row the view is painting
        return code if column == AccountColumn.CODE else left

    def codes_changed(self) -> None:
        """The clock moved: the view repaints the code and countdown of the rows it shows."""
        if self._rows:
            self.dataChanged.emit(self.index(0, AccountColumn.CODE),
                                  self.index(len(self._rows) - 1, AccountColumn.LEFT),
                                  [Qt.ItemDataRole.DisplayRole])


@dataclass(frozen=True)
class SlotRow:
    id: str
    kind: str
    name: str
    created: str


class SlotColumn(IntEnum):
    KIND = 0
    NAME = 1
    CREATED = 2


class SlotModel(KeyedTableModel[SlotRow]):
    headers = ("Kind", "Name", "Created")

    def key(self, row: SlotRow) -> str:
        return row.id

    def cell(self, row: SlotRow, column: int) -> str:
        if column == SlotColumn.KIND:
            return _FACTOR_TITLES.get(row.kind, row.kind)
        return row.name if column == SlotColumn.NAME else row.created[:10]


# -- the master-password dialog for enrolling a key ------------------------------------------------


class KeyPasswordDialog(QDialog):
    """What a new slot needs, asked up front since the device is driven off the GUI thread: for
    a key, the master password it is bound to (password + key), a name and, for a FIDO2 key, its
    PIN; for this workstation's TPM, a new PIN typed twice (the TPM slot needs no password)."""

    TITLES = {"yubikey": "Add YubiKey", "fido2": "Add FIDO2 key", "tpm2": "Add this workstation's TPM"}

    def __init__(self, kind: str, on_ok: Callable[[str, str, str], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self._on_ok = on_ok
        title = self.TITLES[kind]
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        self.password = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.password.setAccessibleName("Master password")
        self.key_name = QLineEdit()
        self.key_name.setAccessibleName("Name of the key")
        self.key_name.setPlaceholderText("optional, e.g. desk key")
        self.pin = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.pin.setAccessibleName("PIN of the key")
        self.pin.setPlaceholderText("only if the key has a PIN")
        self.pin_again = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.pin_again.setAccessibleName("Repeat the PIN")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setAccessibleName("Enrol the key")
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setAccessibleName("Cancel")
        self.problem = _plain_label("Enrolment problem")
        form = QFormLayout(self)
        if kind == "tpm2":
            self.pin.setAccessibleName("New TPM PIN")
            self.pin.setPlaceholderText("at least 4 characters; the TPM locks out after a few wrong ones")
            form.addRow("New PIN", self.pin)
            form.addRow("Repeat PIN", self.pin_again)
            self.password.hide()
            self.pin_again.returnPressed.connect(self._ok)
        else:
            form.addRow("Master password", self.password)
            self.pin_again.hide()
            self.password.returnPressed.connect(self._ok)
        form.addRow("Name", self.key_name)
        if kind == "fido2":
            form.addRow("PIN", self.pin)
        elif kind != "tpm2":
            self.pin.hide()
        form.addRow(self.problem)
        form.addRow(self.buttons)
        self.buttons.accepted.connect(self._ok)
        self.buttons.rejected.connect(self.reject)
        self.finished.connect(self.wipe)

    def _ok(self) -> None:
        """Hands over password, PIN and name, then closes (which wipes the fields)."""
        if self.kind == "tpm2" and self.pin.text() != self.pin_again.text():
            self.problem.setText("The two PINs differ.")
            self.pin_again.clear()
            return
        self._on_ok(self.password.text(), self.pin.text(), self.key_name.text().strip())
        self.accept()

    def wipe(self) -> None:
        self.password.clear()
        self.pin.clear()
        self.pin_again.clear()


# -- the panel ----------------------------------------------------------------------------------


def _button(text: str, name: str | None = None) -> QPushButton:
    button = QPushButton(text)
    button.setAccessibleName(name or text.rstrip("…"))
    return button


def _table(model: QAbstractTableModel, name: str) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setAccessibleName(name)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().hide()
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    return view


def _plain_label(name: str) -> QLabel:
    label = QLabel()
    label.setAccessibleName(name)
    label.setTextFormat(Qt.TextFormat.PlainText)  # names come from QR codes and vaults: no markup
    label.setWordWrap(True)
    return label


class MfaPanel(Panel):
    title = "MFA"
    _touch = Signal(str)  # from a worker thread: the key waits for a touch

    def __init__(self, controller: VaultController, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self._pending: totp.OtpAccount | None = None  # decoded, not yet saved
        self._hotp_shown: dict[str, tuple[str, float]] = {}  # name -> (code, hide at)
        self.new_dialog: NewTotpDialog | None = None
        self.qr_dialog: QrDialog | None = None
        self.reauth_dialog: ReauthDialog | None = None
        self.key_dialog: KeyPasswordDialog | None = None
        self.remove_box: QMessageBox | None = None

        self.accounts = AccountModel(self._code_cell)
        self.accounts_view = _table(self.accounts, "One-time-code accounts")
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)

        self.next_code_button = _button("Next HOTP code")
        self.show_qr_button = _button("Show QR code…")
        self.remove_account_button = _button("Remove account")
        self.scan_file_button = _button("Scan a QR image…")
        self.scan_screen_button = _button("Scan the screen")
        self.scan_clipboard_button = _button("Scan the clipboard image")
        self.uri_edit = QLineEdit(echoMode=QLineEdit.EchoMode.Password)  # it holds the secret
        self.uri_edit.setAccessibleName("otpauth URI")
        self.uri_edit.setPlaceholderText("paste an otpauth:// URI")
        self.add_uri_button = _button("Add from URI")
        self.new_secret_button = _button("New TOTP secret…")

        self.pending_box = QGroupBox("Found an account")
        self.pending_label = _plain_label("Account found")
        self.pending_name = QLineEdit()
        self.pending_name.setAccessibleName("Name for the new account")
        self.save_pending_button = _button("Save account")
        self.discard_pending_button = _button("Discard")
        pending = QFormLayout(self.pending_box)
        pending.addRow(self.pending_label)
        pending.addRow("Name in the vault", self.pending_name)
        pending_buttons = QHBoxLayout()
        pending_buttons.addWidget(self.save_pending_button)
        pending_buttons.addWidget(self.discard_pending_button)
        pending.addRow(pending_buttons)
        self.pending_box.hide()

        self.slots = SlotModel()
        self.slots_view = _table(self.slots, "Unlock factors")
        self.add_yubikey_button = _button("Add YubiKey")
        self.add_fido2_button = _button("Add FIDO2 key")
        self.add_tpm_button = _button("Add this workstation (TPM)…", "Add TPM")
        self.recovery_button = _button("New recovery code")
        self.remove_slot_button = _button("Remove", "Remove factor")
        self.recovery_code = QLineEdit(readOnly=True)
        self.recovery_code.setAccessibleName("New recovery code")
        self.recovery_done = _button("I have written it down")
        self.recovery_code.hide()
        self.recovery_done.hide()
        self.status = _plain_label("MFA status")

        codes = QGroupBox("One-time codes")
        codes_layout = QVBoxLayout(codes)
        codes_layout.addWidget(self.accounts_view)
        row = QHBoxLayout()
        for button in (self.next_code_button, self.show_qr_button, self.remove_account_button):
            row.addWidget(button)
        codes_layout.addLayout(row)
        row = QHBoxLayout()
        for button in (self.scan_file_button, self.scan_screen_button, self.scan_clipboard_button,
                       self.new_secret_button):
            row.addWidget(button)
        codes_layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self.uri_edit)
        row.addWidget(self.add_uri_button)
        codes_layout.addLayout(row)
        codes_layout.addWidget(self.pending_box)

        factors = QGroupBox("Unlock factors")
        factors_layout = QVBoxLayout(factors)
        factors_layout.addWidget(self.slots_view)
        row = QHBoxLayout()
        for button in (self.add_yubikey_button, self.add_fido2_button, self.add_tpm_button, self.recovery_button,
                       self.remove_slot_button):
            row.addWidget(button)
        factors_layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self.recovery_code)
        row.addWidget(self.recovery_done)
        factors_layout.addLayout(row)

        layout = QVBoxLayout(self)
        layout.addWidget(codes, 3)
        layout.addWidget(factors, 2)
        layout.addWidget(self.status)

        self.next_code_button.clicked.connect(self._next_hotp_code)
        self.show_qr_button.clicked.connect(self._ask_to_show_qr)
        self.remove_account_button.clicked.connect(self._remove_account)
        self.scan_file_button.clicked.connect(self._scan_file)
        self.scan_screen_button.clicked.connect(self._scan_screen)
        self.scan_clipboard_button.clicked.connect(self._scan_clipboard)
        self.add_uri_button.clicked.connect(self._add_uri)
        self.uri_edit.returnPressed.connect(self._add_uri)
        self.new_secret_button.clicked.connect(self._new_secret)
        self.save_pending_button.clicked.connect(self._save_pending)
        self.discard_pending_button.clicked.connect(self._discard_pending)
        self.add_yubikey_button.clicked.connect(lambda: self._ask_key_password("yubikey"))
        self.add_fido2_button.clicked.connect(lambda: self._ask_key_password("fido2"))
        self.add_tpm_button.clicked.connect(lambda: self._ask_key_password("tpm2"))
        self.recovery_button.clicked.connect(self._new_recovery_code)
        self.remove_slot_button.clicked.connect(self._ask_remove_slot)
        self.recovery_done.clicked.connect(self._hide_recovery_code)
        self._touch.connect(self._say)

    # -- filling and emptying -----------------------------------------------------------------

    def populate(self) -> None:
        vault = self.controller.vault
        if vault is None:
            self.clear()
            return
        rows = []
        # The listing summaries find the accounts without decoding every record; only the
        # accounts' own records are read (their fields: issuer, account, kind).
        for summary in vault.summaries():
            if summary.type == SecretType.TOTP.value:
                fields = vault.peek(summary.name).fields
                rows.append(AccountRow(summary.name, fields.get("issuer", ""), fields.get("account", ""),
                                       fields.get("kind", "totp")))
        self.accounts.sync(sorted(rows, key=lambda r: r.name))
        self.slots.sync([SlotRow(s.id, s.kind, s.name, s.created) for s in vault.slots])
        if not self.timer.isActive():
            self.timer.start()

    def clear(self) -> None:
        """Locked: no code, QR code, secret, typed text or list survives."""
        self.timer.stop()
        self._hotp_shown.clear()
        self.accounts.sync([])
        self.slots.sync([])
        self._discard_pending()
        self.uri_edit.clear()
        self._hide_recovery_code()
        self.status.clear()
        if self.reauth_dialog is not None:  # not deleted: its check may still be running
            self.reauth_dialog.done(QDialog.DialogCode.Rejected)
        for dialog in (self.new_dialog, self.qr_dialog, self.key_dialog, self.remove_box):
            if dialog is not None:
                dialog.done(QDialog.DialogCode.Rejected)  # their finished() wipes them
                dialog.deleteLater()
        self.new_dialog = self.qr_dialog = self.reauth_dialog = self.key_dialog = None
        self.remove_box = None

    # -- codes --------------------------------------------------------------------------------

    def _now(self) -> float:
        return self.controller.clock().timestamp()

    def _code_cell(self, row: AccountRow) -> tuple[str, str]:
        """The code and countdown of one account, now; nothing is kept."""
        vault = self.controller.vault
        if vault is None:
            return "", ""
        now = self._now()
        if row.kind == totp.OtpKind.HOTP.value:
            shown = self._hotp_shown.get(row.name)
            return (shown[0], "") if shown and now < shown[1] else ("press Next", "")
        try:
            account = totp.account_from_secret(vault.peek(row.name))
            return account.code(now), f"{totp.seconds_left(now, account.period)} s"
        except VaultError:
            return "unusable", ""

    def _tick(self) -> None:
        now = self._now()
        for name, (_code, hide_at) in list(self._hotp_shown.items()):
            if now >= hide_at:
                del self._hotp_shown[name]
        self.accounts.codes_changed()

    def _selected(self, view: QTableView) -> str | None:
        rows = view.selectionModel().selectedRows()
        return rows[0].data(Qt.ItemDataRole.UserRole) if rows else None

    def _next_hotp_code(self) -> None:
        name, vault = self._selected(self.accounts_view), self.controller.vault
        if name is None or vault is None:
            return self._say("Select an HOTP account first.")
        try:
            account = totp.account_from_secret(vault.get(name))
            if account.kind is not totp.OtpKind.HOTP:
                return self._say(f"{name} is time-based: its code is already shown.")
            now = self._now()
            self._hotp_shown[name] = (totp.issue_code(vault, name, account, now), now + HOTP_SHOWN_SECONDS)
        except VaultError as exc:
            return self._say(str(exc))
        self.controller.notify_changed()  # the counter moved

    def _ask_to_show_qr(self) -> None:
        name = self._selected(self.accounts_view)
        if name is None:
            return self._say("Select an account first.")
        previous = self.reauth_dialog
        if previous is not None and previous.buttons.isEnabled():  # not waiting for a check: safe to delete
            previous.deleteLater()
        self.reauth_dialog = ReauthDialog(
            self.controller, f"Showing the QR code of {name} lets another device copy it.", self)
        self.reauth_dialog.confirm(lambda: self._show_qr(name))

    def _show_qr(self, name: str) -> None:
        vault = self.controller.vault
        if vault is None:
            return
        try:
            account = totp.account_from_secret(vault.get(name))
            self.qr_dialog = QrDialog(account.label, account.uri(), self)
            vault.record("export", name, detail="totp qr shown")
        except VaultError as exc:
            return self._say(str(exc))
        self.qr_dialog.open()

    def _remove_account(self) -> None:
        name, vault = self._selected(self.accounts_view), self.controller.vault
        if name is None or vault is None:
            return self._say("Select an account first.")
        self._confirm(f"Remove the one-time-code account {name}? Its old values stay in the vault's history "
                      "until it is gone from there too.", lambda: self._delete(name))

    def _delete(self, name: str) -> None:
        vault = self.controller.vault
        if vault is None:
            return
        try:
            vault.delete(name)
        except VaultError as exc:
            return self._say(str(exc))
        self._say(f"Removed {name}.")
        self.controller.notify_changed()

    # -- adding accounts ----------------------------------------------------------------------

    def _scan_file(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Open a QR code image", "", IMAGE_FILTER)
        if path:
            self._decode_off_thread(lambda: qr.decode_file(path), "the image")

    def _scan_screen(self) -> None:
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return self._say("No screen to capture.")
        self._decode_image(screen.grabWindow(0).toImage(), "the screen")

    def _scan_clipboard(self) -> None:
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            return self._say("The clipboard holds no image: copy a QR code (or a screenshot of one) first.")
        self._decode_image(image, "the clipboard image")

    def _decode_image(self, image: QImage, what: str) -> None:
        """Pixels are copied here, on the GUI thread; the search runs on a worker."""
        if image.isNull():
            return self._say(f"Could not capture {what}.")
        gray = image.convertToFormat(QImage.Format.Format_Grayscale8)
        data = bytes(gray.constBits())
        width, height, stride = gray.width(), gray.height(), gray.bytesPerLine()
        self._decode_off_thread(lambda: qr.decode_pixels(data, width, height, "gray", stride, what), what)

    def _decode_off_thread(self, work: Callable[[], list[str]], what: str) -> None:
        self._say(f"Looking for a QR code in {what}…")
        self.controller.runner.submit(work, lambda texts: self._found(texts, what), self._failed)

    def _found(self, texts: list[str], what: str) -> None:
        if self.controller.vault is None:
            return  # locked meanwhile
        try:
            self._stage(totp.parse_uri(qr.pick_one(texts, "otpauth://", what)))
        except VaultError as exc:
            self._say(str(exc))

    def _add_uri(self) -> None:
        text = self.uri_edit.text()
        self.uri_edit.clear()
        if not text.strip():
            return self._say("Paste an otpauth:// URI first.")
        try:
            self._stage(totp.parse_uri(text))
        except VaultError as exc:
            self._say(str(exc))

    def _stage(self, account: totp.OtpAccount) -> None:
        """Show what was found (never its secret) and let the user name it before saving."""
        self._pending = account
        what = {"totp": f"TOTP, {account.algorithm}, {account.digits} digits, {account.period} s",
                "hotp": f"HOTP, {account.algorithm}, {account.digits} digits, counter {account.counter}",
                "steam": "Steam Guard"}[account.kind.value]
        self.pending_label.setText(f"{account.label} ({what})")
        self.pending_name.setText(totp.suggest_name(account))
        self.pending_box.show()
        self._say("Check the name, then save the account.")

    def _save_pending(self) -> None:
        if self._pending is None:
            return
        error = self._save_account(self.pending_name.text().strip(), self._pending)
        if error:
            return self._say(error)
        self._discard_pending()

    def _discard_pending(self) -> None:
        self._pending = None
        self.pending_label.clear()
        self.pending_name.clear()
        self.pending_box.hide()

    def _save_account(self, name: str, account: totp.OtpAccount) -> str | None:
        """Store ``account`` as a ``totp`` secret; an error sentence, or None once saved."""
        vault = self.controller.vault
        if vault is None:
            return "The vault is locked."
        try:
            validate_name(name)
            if name in vault.names():
                raise InvalidInput(f"a secret named '{name}' already exists: choose another name")
            vault.set(name, account.secret, type=SecretType.TOTP, fields=totp.account_to_fields(account))
        except VaultError as exc:
            return str(exc)
        self._say(f"Saved {name}.")
        self.controller.notify_changed()
        return None

    def _new_secret(self) -> None:
        if self.controller.vault is None:
            return
        if self.new_dialog is not None:
            self.new_dialog.deleteLater()
        self.new_dialog = NewTotpDialog(self._now, self._save_account, self)
        self.new_dialog.open()

    # -- unlock factors -----------------------------------------------------------------------

    def _ask_key_password(self, kind: str) -> None:
        if self.controller.vault is None:
            return
        if self.key_dialog is not None:
            self.key_dialog.deleteLater()
        self.key_dialog = KeyPasswordDialog(kind, lambda password, pin, name: self._enroll(kind, password, pin, name),
                                            self)
        self.key_dialog.open()

    def _enroll(self, kind: str, password: str, pin: str, name: str) -> None:
        if kind == "tpm2":
            return self._enroll_tpm(pin, name)
        vault = self.controller.vault
        if vault is None or not password:
            return self._say("Enrolling a key needs the master password.")
        prompter = GuiPrompter(self._touch.emit, pin or None)
        options = {"otp_slot": 2} if kind == "yubikey" else {}

        def work() -> KeySlot:
            from ...factors import hardware

            keys = hardware.list_keys(kind)
            if not keys:
                raise InvalidInput(f"no {'YubiKey' if kind == 'yubikey' else 'FIDO2 key'} is plugged in")
            has_password_slot = any(s.kind == slotlib.PASSWORD for s in vault.slots)
            if has_password_slot and not vault.check_password(password):
                raise WrongCredentials("that is not the vault's master password")
            key = keys[0]
            label = name or (f"{key.label} slot 2" if kind == "yubikey" else key.label)
            return hardware.enroll(vault, key, password, prompter, label, options)

        def done(slot: KeySlot) -> None:
            self._say(f"Enrolled {_FACTOR_TITLES.get(slot.kind, slot.kind)} '{slot.name}'.")
            self.controller.notify_changed()

        self._say("Enrolling: touch the key when it blinks…")
        self.controller.runner.submit(work, done, self._failed)

    def _enroll_tpm(self, pin: str, name: str) -> None:
        vault = self.controller.vault
        if vault is None:
            return

        def work() -> KeySlot:
            from ...factors import tpm2

            return tpm2.enroll(vault, pin, name=name or "TPM + PIN")

        def done(slot: KeySlot) -> None:
            self._say(f"Enrolled this workstation's TPM as '{slot.name}': unlock with the TPM and the PIN.")
            self.controller.notify_changed()

        self._say("Sealing a key to this workstation's TPM…")
        self.controller.runner.submit(work, done, self._failed)

    def _new_recovery_code(self) -> None:
        vault = self.controller.vault
        if vault is None:
            return
        try:
            code = vault.add_recovery_slot()
        except VaultError as exc:
            return self._say(str(exc))
        self.recovery_code.setText(code)
        self.recovery_code.show()
        self.recovery_done.show()
        self._say("New recovery code, shown once: write it down and keep it offline. The old one no longer works.")
        self.controller.notify_changed()

    def _hide_recovery_code(self) -> None:
        self.recovery_code.clear()
        self.recovery_code.hide()
        self.recovery_done.hide()

    def _ask_remove_slot(self) -> None:
        slot_id = self._selected(self.slots_view)
        if slot_id is None:
            return self._say("Select a factor first.")
        self._confirm("Remove this unlock factor? It will no longer open the vault.",
                      lambda: self._remove_slot(slot_id))

    def _remove_slot(self, slot_id: str) -> None:
        vault = self.controller.vault
        if vault is None:
            return
        try:
            vault.remove_slot(slot_id)
        except VaultError as exc:  # e.g. the last way in
            return self._say(str(exc))
        self._say("Factor removed.")
        self.controller.notify_changed()

    # -- helpers ------------------------------------------------------------------------------

    def _confirm(self, question: str, on_yes: Callable[[], None]) -> None:
        """A question that does not block the event loop (the lock can still close it)."""
        if self.remove_box is not None:
            self.remove_box.deleteLater()
        box = self.remove_box = QMessageBox(QMessageBox.Icon.Question, "Remove", question,
                                            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.button(QMessageBox.StandardButton.Yes).setAccessibleName("Yes, remove")
        box.button(QMessageBox.StandardButton.No).setAccessibleName("No, keep")
        yes = box.button(QMessageBox.StandardButton.Yes)
        box.buttonClicked.connect(lambda button: on_yes() if button is yes else None)
        box.open()

    def _failed(self, error: BaseException) -> None:
        if isinstance(error, VaultError):
            self._say(str(error))
        else:
            log.error("MFA panel task failed: %s", type(error).__name__)
            self._say("Unexpected error (see the log).")

    def _say(self, message: str) -> None:
        self.status.setText(message)
