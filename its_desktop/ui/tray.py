"""The system tray icon: lock/unlock, show the window, and notifications about secrets due
for rotation (checked at unlock and every hour) and from the rotation scheduler and an
emergency lockdown (``notify``). Notifications carry names and counts, never a value."""

from __future__ import annotations

from collections import deque
from datetime import datetime

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon, QWidget

from ..core.rotation import RotationStatus
from ..core.schedule import build_schedule, count_by_status
from ..core.vault.api import Vault
from .controller import VaultController

CHECK_INTERVAL_MS = 3600 * 1000
UNLOCK_NOTICE_DELAY_MS = 1500
NOTICE_MS = 10_000
RECENT = 20


def pending_rotations(vault: Vault, now: datetime) -> str | None:
    """One calm sentence about what needs rotating, or None when nothing does."""
    counts = count_by_status(build_schedule(vault.summaries(), now))
    parts = [f"{counts[status]} {label}" for status, label in
             ((RotationStatus.EXPIRED, "expired"), (RotationStatus.OVERDUE, "overdue"),
              (RotationStatus.DUE_SOON, "due soon")) if counts[status]]
    return ("Rotation: " + ", ".join(parts) + ".") if parts else None


class Tray(QObject):
    def __init__(self, controller: VaultController, window: QWidget, icon: QIcon) -> None:
        super().__init__(window)
        self.controller = controller
        self.window = window
        self.icon = QSystemTrayIcon(icon, self)
        self.icon.setToolTip("ITS Desktop")
        self.menu = QMenu()
        self.show_action = QAction("Show ITS Desktop", self, triggered=self._show)
        self.lock_action = QAction("Lock", self, triggered=lambda: controller.lock())
        self.quit_action = QAction("Quit", self, triggered=window.close)
        for action in (self.show_action, self.lock_action, self.quit_action):
            self.menu.addAction(action)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(lambda reason: self._show() if reason == QSystemTrayIcon.ActivationReason.Trigger else None)
        self.last_message: str | None = None
        self.recent: deque[str] = deque(maxlen=RECENT)  # what was notified, newest last (tests read it)
        self.timer = QTimer(self, interval=CHECK_INTERVAL_MS, timeout=self.notify_pending)
        self.timer.start()
        controller.unlocked.connect(self._on_unlocked)
        controller.locked.connect(self._on_locked)
        self._on_locked()
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.icon.show()

    def _show(self) -> None:
        self.window.showNormal()
        self.window.raise_()
        self.window.activateWindow()

    def _on_unlocked(self) -> None:
        self.lock_action.setEnabled(True)
        self.icon.setToolTip("ITS Desktop — unlocked")
        QTimer.singleShot(UNLOCK_NOTICE_DELAY_MS, self.notify_pending)  # after the window has filled

    def _on_locked(self) -> None:
        self.lock_action.setEnabled(False)
        self.icon.setToolTip("ITS Desktop — locked")

    def notify_pending(self) -> None:
        vault = self.controller.vault
        if vault is None:
            return
        message = pending_rotations(vault, self.controller.clock())
        if message:
            self.notify(message)
        else:
            self.last_message = None

    def notify(self, message: str, warning: bool = False) -> None:
        """One line as a desktop notification, where the desktop shows them."""
        self.last_message = message
        self.recent.append(message)
        if self.icon.isVisible() and QSystemTrayIcon.supportsMessages():
            icon = QSystemTrayIcon.MessageIcon.Warning if warning else QSystemTrayIcon.MessageIcon.Information
            self.icon.showMessage("ITS Desktop", message, icon, NOTICE_MS)
