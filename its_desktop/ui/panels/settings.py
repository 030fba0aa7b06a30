"""Settings: auto-lock, clipboard, quick unlock, theme, scheduled rotation, and the vault's KDF cost."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...core.crypto import Argon2Params, calibrate_argon2
from ..controller import VaultController
from ..settings import AppSettings
from .base import Panel

THEMES = (("Follow the system", "system"), ("Light", "light"), ("Dark", "dark"))


def apply_theme(theme: str) -> None:
    scheme = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}.get(theme, Qt.ColorScheme.Unknown)
    QGuiApplication.styleHints().setColorScheme(scheme)


class SettingsPanel(Panel):
    title = "Settings"

    def __init__(self, controller: VaultController, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.settings: AppSettings = controller.settings
        self.auto_lock = QSpinBox(minimum=0, maximum=24 * 60, suffix=" min", specialValueText="never")
        self.auto_lock.setAccessibleName("Auto-lock after idle minutes")
        self.lock_on_screen_lock = QCheckBox("Lock when the screen locks")
        self.lock_on_screen_lock.setAccessibleName("Lock when the screen locks")
        self.lock_on_sleep = QCheckBox("Lock before the machine sleeps")
        self.lock_on_sleep.setAccessibleName("Lock before sleep")
        self.clipboard = QSpinBox(minimum=3, maximum=600, suffix=" s")
        self.clipboard.setAccessibleName("Clear the clipboard after seconds")
        self.quick_unlock = QDoubleSpinBox(minimum=0, maximum=24, suffix=" h", decimals=1, specialValueText="off")
        self.quick_unlock.setAccessibleName("Quick unlock window in hours")
        self.theme = QComboBox()
        self.theme.setAccessibleName("Theme")
        for label, value in THEMES:
            self.theme.addItem(label, value)
        self.rotate_due = QCheckBox("Rotate due secrets automatically")
        self.rotate_due.setAccessibleName("Rotate due secrets automatically")
        self.rotate_due.setToolTip("While unlocked, after each unlock and every 15 minutes: run the automatic "
                                   "rotators that are due, and notify about the manual ones")
        self._load_widgets()

        self.kdf_label = QLabel()
        self.kdf_label.setAccessibleName("Current KDF parameters")
        self.calibrate_button = QPushButton("Calibrate to 1 second")
        self.calibrate_button.setAccessibleName("Calibrate the KDF to 1 second")
        self.apply_kdf_button = QPushButton("Apply to the master password slot…")
        self.apply_kdf_button.setAccessibleName("Apply the KDF parameters")
        self.apply_kdf_button.setEnabled(False)
        self.kdf_status = QLabel()
        self.kdf_status.setAccessibleName("KDF status")
        self.proposed: Argon2Params | None = None

        general = QFormLayout()
        general.addRow("Auto-lock", self.auto_lock)
        general.addRow("", self.lock_on_screen_lock)
        general.addRow("", self.lock_on_sleep)
        general.addRow("Clipboard", self.clipboard)
        general.addRow("Quick unlock", self.quick_unlock)
        general.addRow("Theme", self.theme)
        general.addRow("Rotation", self.rotate_due)
        kdf_box = QGroupBox("Key derivation (Argon2id)")
        kdf = QVBoxLayout(kdf_box)
        kdf.addWidget(self.kdf_label)
        row = QHBoxLayout()
        row.addWidget(self.calibrate_button)
        row.addWidget(self.apply_kdf_button)
        kdf.addLayout(row)
        kdf.addWidget(self.kdf_status)
        layout = QVBoxLayout(self)
        layout.addLayout(general)
        layout.addWidget(kdf_box)
        layout.addStretch(1)

        for spin in (self.auto_lock, self.clipboard):
            spin.valueChanged.connect(self._save)
        self.quick_unlock.valueChanged.connect(self._save)
        for box in (self.lock_on_screen_lock, self.lock_on_sleep, self.rotate_due):
            box.toggled.connect(self._save)
        self.theme.currentIndexChanged.connect(self._save)
        self.calibrate_button.clicked.connect(self._calibrate)
        self.apply_kdf_button.clicked.connect(self._apply_kdf)

    def _load_widgets(self) -> None:
        s = self.settings
        self.auto_lock.setValue(s.auto_lock_minutes)
        self.lock_on_screen_lock.setChecked(s.lock_on_screen_lock)
        self.lock_on_sleep.setChecked(s.lock_on_sleep)
        self.clipboard.setValue(s.clipboard_seconds)
        self.quick_unlock.setValue(s.quick_unlock_hours)
        self.theme.setCurrentIndex(max(0, self.theme.findData(s.theme)))
        self.rotate_due.setChecked(s.rotate_due_automatically)

    def _save(self) -> None:
        s = self.settings
        s.auto_lock_minutes = self.auto_lock.value()
        s.lock_on_screen_lock = self.lock_on_screen_lock.isChecked()
        s.lock_on_sleep = self.lock_on_sleep.isChecked()
        s.clipboard_seconds = self.clipboard.value()
        s.quick_unlock_hours = self.quick_unlock.value()
        s.theme = self.theme.currentData()
        s.rotate_due_automatically = self.rotate_due.isChecked()
        s.save()
        apply_theme(s.theme)
        self.controller.settings_changed(s)

    def populate(self) -> None:
        vault = self.controller.vault
        slot = next((s for s in vault.slots if s.kdf is not None), None) if vault is not None else None
        if slot is not None and slot.kdf is not None:
            k = slot.kdf
            self.kdf_label.setText(f"{k.memory_kib // 1024} MiB, {k.time_cost} passes, {k.parallelism} lanes")

    def clear(self) -> None:
        self.kdf_label.clear()
        self.kdf_status.clear()
        self.proposed = None
        self.apply_kdf_button.setEnabled(False)

    def _calibrate(self) -> None:
        self.kdf_status.setText("Measuring…")
        self.calibrate_button.setEnabled(False)
        self.controller.runner.submit(lambda: calibrate_argon2(1.0), self._calibrated)

    def _calibrated(self, params: Argon2Params) -> None:
        self.calibrate_button.setEnabled(True)
        self.proposed = params
        self.kdf_status.setText(f"About 1 s here: {params.memory_kib // 1024} MiB, {params.time_cost} passes, "
                                f"{params.parallelism} lanes")
        self.apply_kdf_button.setEnabled(self.controller.vault is not None)

    def _apply_kdf(self) -> None:
        vault, params = self.controller.vault, self.proposed
        if vault is None or params is None:
            return
        password, ok = QInputDialog.getText(self, "Master password", "Master password:", QLineEdit.EchoMode.Password)
        if not ok or not password:
            return

        def work() -> bool:
            if not vault.check_password(password):
                return False
            vault.change_password(password, kdf=params)
            return True

        self.kdf_status.setText("Re-wrapping…")
        self.controller.runner.submit(work, self._applied, lambda e: self.kdf_status.setText(str(e)))

    def _applied(self, ok: object) -> None:
        self.kdf_status.setText("Applied." if ok else "That is not the master password.")
        self.populate()
