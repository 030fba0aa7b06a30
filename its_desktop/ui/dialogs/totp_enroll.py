"""Dialogs of the MFA panel that show a QR code: a new TOTP secret for a service you run, and
an existing account's QR code (after re-authentication). Both forget the secret, the QR image
and any typed code when they close or are wiped (on lock)."""

from __future__ import annotations

from typing import Callable, TypeVar

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...core import totp
from ...core.errors import VaultError
from ...services import qr

W = TypeVar("W", bound=QWidget)
SaveAccount = Callable[[str, totp.OtpAccount], "str | None"]  # an error sentence, or None once saved


def qr_pixmap(text: str) -> QPixmap:
    """A QR code drawn by segno (services.qr), as a pixmap."""
    pixmap = QPixmap()
    pixmap.loadFromData(qr.encode_png(text, scale=6), "PNG")
    return pixmap


def _button(text: str, name: str) -> QPushButton:
    button = QPushButton(text)
    button.setAccessibleName(name)
    return button


def _named(widget: W, name: str) -> W:
    widget.setAccessibleName(name)
    return widget


class NewTotpDialog(QDialog):
    """Make a TOTP secret for a service you run, show it as a QR code for a phone, and save it
    only once a code typed from the phone matches: a mis-scanned secret is never saved as the
    only copy of a second factor."""

    def __init__(self, now: Callable[[], float], save: SaveAccount, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._now = now
        self._save = save
        self._account: totp.OtpAccount | None = None
        self.setWindowTitle("New TOTP secret")
        self.setAccessibleName("New TOTP secret")
        self.issuer = _named(QLineEdit(), "Service (issuer)")
        self.account = _named(QLineEdit(), "Account name")
        self.algorithm = _named(QComboBox(), "Algorithm")
        self.algorithm.addItems(list(totp.ALGORITHMS))
        self.digits = _named(QSpinBox(minimum=totp.MIN_DIGITS, maximum=totp.MAX_DIGITS, value=6), "Digits")
        self.period = _named(QSpinBox(minimum=1, maximum=totp.MAX_PERIOD, value=30, suffix=" s"), "Period")
        self.name = _named(QLineEdit(), "Name in the vault")
        self.generate_button = _button("Make a secret and show its QR code", "Make a secret")
        self.qr_label = _named(QLabel(), "QR code for the phone")
        self.qr_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.secret_text = _named(QLineEdit(readOnly=True), "Secret key for typing in by hand")
        self.code = _named(QLineEdit(), "Code shown by the phone")
        self.code.setPlaceholderText("the code your phone shows now")
        self.save_button = _button("Check the code and save", "Check the code and save")
        self.save_button.setEnabled(False)
        self.close_button = _button("Cancel", "Cancel")
        self.status = _named(QLabel(), "New secret status")

        form = QFormLayout()
        form.addRow("Service", self.issuer)
        form.addRow("Account", self.account)
        form.addRow("Algorithm", self.algorithm)
        form.addRow("Digits", self.digits)
        form.addRow("Period", self.period)
        form.addRow("Name in the vault", self.name)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.generate_button)
        layout.addWidget(self.qr_label)
        layout.addWidget(self.secret_text)
        layout.addWidget(self.code)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

        self.generate_button.clicked.connect(self._generate)
        self.save_button.clicked.connect(self._confirm)
        self.close_button.clicked.connect(self.reject)
        self.code.returnPressed.connect(self._confirm)
        self.finished.connect(self.wipe)
        # A setting changed after the phone scanned would make the saved account differ
        # from the phone's: the QR code goes, and a new secret must be made.
        for edit in (self.issuer, self.account):
            edit.textEdited.connect(self._settings_changed)
        self.algorithm.currentIndexChanged.connect(self._settings_changed)
        self.digits.valueChanged.connect(self._settings_changed)
        self.period.valueChanged.connect(self._settings_changed)

    def _generate(self) -> None:
        try:
            account = totp.generate_account(self.issuer.text(), self.account.text(),
                                            algorithm=self.algorithm.currentText(), digits=self.digits.value(),
                                            period=self.period.value())
        except VaultError as exc:
            self.status.setText(str(exc))
            return
        self._account = account
        self.qr_label.setPixmap(qr_pixmap(account.uri()))
        secret = account.secret
        self.secret_text.setText(" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)))
        if not self.name.text().strip():
            self.name.setText(totp.suggest_name(account))
        self.save_button.setEnabled(True)
        self.status.setText("Scan the code with the phone, then type the code it shows.")
        self.code.setFocus()

    def _settings_changed(self) -> None:
        if self._account is not None:
            self._forget_secret()
            self.status.setText("Settings changed: make a new secret.")

    def _confirm(self) -> None:
        account = self._account
        if account is None:
            return
        typed = self.code.text()
        self.code.clear()
        if not account.verify(typed, self._now()):
            self.status.setText("That code does not match: check the phone's clock and try the next code.")
            return
        error = self._save(self.name.text().strip(), account)
        if error:
            self.status.setText(error)
            return
        self.accept()

    def _forget_secret(self) -> None:
        self._account = None
        self.qr_label.clear()
        self.secret_text.clear()
        self.code.clear()
        self.save_button.setEnabled(False)

    def wipe(self) -> None:
        """Forget the secret, its QR code, the typed code and the names (on close or lock)."""
        self._forget_secret()
        for edit in (self.issuer, self.account, self.name):
            edit.clear()
        self.status.clear()


class QrDialog(QDialog):
    """An existing account's QR code, to move it to a phone. Shown only after re-authentication;
    the image is dropped when the dialog closes."""

    def __init__(self, label: str, uri: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"QR code: {label}")
        self.setAccessibleName("Account QR code")
        self.qr_label = _named(QLabel(), "QR code of the account")
        self.qr_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.qr_label.setPixmap(qr_pixmap(uri))
        self.done_button = _button("Done", "Close the QR code")
        note = QLabel(f"Scan this with the phone that should also hold {label}.\n"
                      "Anyone who sees it can copy the account.")
        note.setTextFormat(Qt.TextFormat.PlainText)  # the label comes from a QR code: no markup
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.qr_label)
        layout.addWidget(self.done_button)
        self.done_button.clicked.connect(self.accept)
        self.finished.connect(self.wipe)

    def wipe(self) -> None:
        self.qr_label.clear()
