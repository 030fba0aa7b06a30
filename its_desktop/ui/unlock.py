"""The unlock page: password, the enrolled factors, touch progress with cancel, back-off,
create a new vault, open another one. The KDF and the key run off the GUI thread."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import VaultError
from ..core.vault import throttle
from ..core.vault.header import peek_header
from .controller import VaultController

FACTOR_CHOICES = (("Password (and any plugged-in key)", None), ("YubiKey", "yubikey"), ("FIDO2 key", "fido2"),
                  ("This workstation (TPM) + PIN", "tpm2"), ("Password only", "password"))
CHOOSABLE = ("yubikey", "fido2", "tpm2")  # the factors that make the choice worth showing


class UnlockPage(QWidget):
    open_other = Signal(Path)

    def __init__(self, controller: VaultController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setAccessibleName("Unlock")
        self.title = QLabel()
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.password = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.password.setAccessibleName("Master password")
        self.password.setPlaceholderText("Master password")
        self.confirm = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.confirm.setAccessibleName("Confirm master password")
        self.confirm.setPlaceholderText("Repeat it")
        self.factor = QComboBox()
        self.factor.setAccessibleName("Unlock factor")
        self.pin = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.pin.setAccessibleName("FIDO2 PIN")
        self.pin.setPlaceholderText("PIN of the FIDO2 key")
        self.factors_label = QLabel()
        self.factors_label.setAccessibleName("Enrolled factors")
        self.plugged_label = QLabel()
        self.plugged_label.setAccessibleName("Plugged-in keys")
        self.plugged_label.setStyleSheet("color: palette(mid);")
        self.status = QLabel()
        self.status.setAccessibleName("Unlock status")
        self.status.setWordWrap(True)
        self.unlock_button = QPushButton("Unlock")
        self.unlock_button.setAccessibleName("Unlock")
        self.unlock_button.setDefault(True)
        self.quick_button = QPushButton("Touch your key to unlock")
        self.quick_button.setAccessibleName("Quick unlock")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel")
        self.other_button = QPushButton("Open another vault…")
        self.other_button.setAccessibleName("Open another vault")

        self.heading = QLabel("ITS Desktop")
        self.heading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.heading.font()
        font.setPointSize(font.pointSize() * 2)
        font.setBold(True)
        self.heading.setFont(font)
        self.title.setWordWrap(True)
        self.title.setStyleSheet("color: palette(mid);")
        self.form = QFormLayout()
        self.form.addRow("Password", self.password)
        self.form.addRow("Repeat", self.confirm)
        self.form.addRow("Factor", self.factor)
        self.form.addRow("PIN", self.pin)
        buttons = QHBoxLayout()
        buttons.addWidget(self.quick_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.unlock_button)
        card = QWidget()
        card.setMaximumWidth(460)
        inner = QVBoxLayout(card)
        inner.addWidget(self.heading)
        inner.addWidget(self.title)
        inner.addSpacing(12)
        inner.addLayout(self.form)
        inner.addWidget(self.factors_label)
        inner.addWidget(self.plugged_label)
        inner.addLayout(buttons)
        inner.addWidget(self.status)
        inner.addSpacing(12)
        inner.addWidget(self.other_button, alignment=Qt.AlignmentFlag.AlignRight)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(2)
        self.factors_label.setStyleSheet("color: palette(mid);")
        self.other_button.setFlat(True)

        self.unlock_button.clicked.connect(self.submit)
        self.password.returnPressed.connect(self.submit)
        self.pin.returnPressed.connect(self.submit)
        self.confirm.returnPressed.connect(self.submit)
        self.quick_button.clicked.connect(self.quick_unlock)
        self.cancel_button.clicked.connect(controller.cancel)
        self.other_button.clicked.connect(self._choose_other)
        self.factor.currentIndexChanged.connect(self._factor_chosen)
        controller.failed.connect(self._failed)
        controller.touch_requested.connect(lambda message: self.status.setText(message + "…"))
        controller.busy.connect(self._busy)
        controller.unlocked.connect(self._forget_inputs)
        self.refresh()

    @property
    def creating(self) -> bool:
        return not self.controller.path.exists()

    def refresh(self) -> None:
        """Show what this vault needs: a new vault's two password fields, or its factors."""
        creating = self.creating
        self.title.setText(("Create a new vault at " if creating else "") + str(self.controller.path))
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.form.setRowVisible(self.confirm, creating)
        self.unlock_button.setText("Create vault" if creating else "Unlock")
        self.quick_button.setVisible(self.controller.can_quick_unlock)
        self.cancel_button.setVisible(False)
        kinds: list[str] = []
        self._fido2_pin = False
        if not creating:
            try:
                slots = peek_header(self.controller.path).slots
                kinds = [s.kind for s in slots]
                self._fido2_pin = any(s.kind == "fido2" and s.params.get("pin") for s in slots)
            except VaultError as exc:
                self.status.setText(str(exc))
            except OSError:
                self.status.setText("the vault file cannot be read")
        names = {"password": "password", "recovery": "recovery code", "yubikey": "YubiKey", "fido2": "FIDO2 key",
                 "tpm2": "this workstation's TPM + PIN"}
        self.factors_label.setText("Ways in: " + ", ".join(names.get(k, k) for k in sorted(set(kinds))) if kinds else "")
        chosen = self.factor.currentData()
        self.factor.blockSignals(True)
        self.factor.clear()
        for label, value in FACTOR_CHOICES:  # only what this vault has
            if value not in CHOOSABLE or value in kinds:
                self.factor.addItem(label, value)
        self.factor.setCurrentIndex(max(0, self.factor.findData(chosen)))  # the user's last choice stays
        self.factor.blockSignals(False)
        self.form.setRowVisible(self.factor, not creating and any(k in CHOOSABLE for k in kinds))
        self._factor_chosen()
        self.plugged_label.clear()
        if any(k in ("yubikey", "fido2") for k in kinds):
            self.controller.runner.submit(_plugged_keys, self._show_plugged, lambda _error: None)

    def _factor_chosen(self) -> None:
        """The TPM needs its PIN and no password; a FIDO2 key with a PIN needs that PIN too."""
        tpm = self.factor.currentData() == "tpm2"
        self.password.setEnabled(not tpm)
        self.pin.setAccessibleName("TPM PIN" if tpm else "FIDO2 PIN")
        self.pin.setPlaceholderText("PIN of this workstation's TPM slot" if tpm else "PIN of the FIDO2 key")
        self.form.setRowVisible(self.pin, tpm or self._fido2_pin)

    def _show_plugged(self, labels: list[str]) -> None:
        """Which keys are plugged in (found off the GUI thread: USB discovery can be slow)."""
        self.plugged_label.setText("Plugged in: " + ", ".join(labels) if labels else "No key is plugged in.")

    def submit(self) -> None:
        password = self.password.text()
        if not self.creating and self.factor.currentData() == "tpm2":
            return self._submit_tpm()
        if not password:
            self.status.setText("Type the master password.")
            return
        if self.creating:
            if password != self.confirm.text():
                self.status.setText("The two passwords differ.")
                return
            self.controller.create(password, on_code=self._show_recovery_code)
            return
        if self._throttled():
            return
        self.controller.unlock(password, self.factor.currentData(), self.pin.text() or None)

    def _throttled(self) -> bool:
        """After repeated failures the vault makes the next attempt wait: say so instead."""
        delay = throttle.read_failures(self.controller.path).delay(time.time())
        if delay > 0:
            self.status.setText(f"Too many failed attempts: wait {delay:.0f} s.")
        return delay > 0

    def _submit_tpm(self) -> None:
        if not self.pin.text():
            self.status.setText("Type the TPM PIN.")
            return
        if self._throttled():
            return
        self.controller.unlock("", "tpm2", self.pin.text())

    def quick_unlock(self) -> None:
        self.controller.quick_unlock(self.pin.text() or None)

    def _show_recovery_code(self, code: str) -> None:
        from PySide6.QtWidgets import QMessageBox

        box = QMessageBox(QMessageBox.Icon.Information, "Recovery code",
                          "Write this recovery code down and keep it offline. It opens the vault without "
                          f"the password and is shown only once:\n\n{code}", parent=self)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.finished.connect(lambda _result: self.window().activateWindow())
        box.open()
        self.recovery_box = box

    def _failed(self, message: str) -> None:
        self.status.setText(message[:1].upper() + message[1:] + ".")
        retry = self.pin if self.factor.currentData() == "tpm2" else self.password
        retry.selectAll()
        retry.setFocus()

    def _busy(self, busy: bool) -> None:
        self.unlock_button.setEnabled(not busy)
        self.quick_button.setEnabled(not busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.status.setText("Unlocking…" if not self.creating else "Creating…")

    def _forget_inputs(self) -> None:
        for field in (self.password, self.confirm, self.pin):
            field.clear()
        self.status.clear()

    def _choose_other(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open vault", str(self.controller.path.parent),
                                              "ITS vaults (*.its);;All files (*)")
        if name:
            self.open_other.emit(Path(name))


def _plugged_keys() -> list[str]:
    from ..factors.hardware import list_keys

    return [key.label for key in list_keys()]
