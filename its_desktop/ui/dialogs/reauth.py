"""Step-up before a high-value secret is revealed or copied: the password again, or a touch of
the key that unlocked the session. Checked off the GUI thread (Argon2id takes a second)."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from ..controller import GuiPrompter, VaultController


class ReauthDialog(QDialog):
    """``ReauthDialog(controller, reason).confirm(on_ok)``: calls ``on_ok()`` once the user
    proved it again; nothing happens on cancel or failure (the dialog says why)."""

    def __init__(self, controller: VaultController, reason: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Confirm it is you")
        self.setAccessibleName("Re-authenticate")
        self.password = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.password.setAccessibleName("Master password")
        self.status = QLabel()
        self.status.setAccessibleName("Re-authentication status")
        self.touch_button = QPushButton("Touch my key instead")
        self.touch_button.setAccessibleName("Confirm with a key touch")
        self.touch_button.setVisible(controller.session.can_confirm_with_key())
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(reason))
        layout.addWidget(self.password)
        layout.addWidget(self.touch_button)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.buttons.accepted.connect(self._check_password)
        self.buttons.rejected.connect(self.reject)
        self.touch_button.clicked.connect(self._check_touch)
        self._on_ok = lambda: None

    def confirm(self, on_ok) -> None:
        self._on_ok = on_ok
        self.open()

    def _check_password(self) -> None:
        vault = self.controller.vault
        password = self.password.text()
        self.password.clear()
        if vault is None or not password:
            return
        self._wait("Checking…")
        self.controller.runner.submit(lambda: vault.check_password(password), self._result, lambda _e: self._result(False))

    def _check_touch(self) -> None:
        prompter = GuiPrompter(lambda message: None)
        self._wait("Touch your key…")
        self.controller.runner.submit(lambda: self.controller.session.confirm_with_key(prompter), self._result,
                                      lambda _e: self._result(False))

    def _wait(self, message: str) -> None:
        self.status.setText(message)
        self.buttons.setEnabled(False)
        self.touch_button.setEnabled(False)

    def _result(self, ok: object) -> None:
        self.buttons.setEnabled(True)
        self.touch_button.setEnabled(True)
        if ok:
            self.accept()
            self._on_ok()
        else:
            self.status.setText("That did not match. Try again.")
