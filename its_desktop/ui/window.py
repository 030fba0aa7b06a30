"""The main window: the unlock page until the vault opens, then the panels as tabs."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QStackedWidget, QTabWidget

from .autolock import AutoLock
from .clipboard import shared_clipboard
from .controller import VaultController
from .tray import Tray
from .panels.base import Panel
from .unlock import UnlockPage


def panel_classes() -> tuple[type[Panel], ...]:
    """The tabs, in order (an explicit registry, see tests/gui/test_window.py)."""
    from .panels.audit import AuditPanel
    from .panels.mfa import MfaPanel
    from .panels.rotation import RotationPanel
    from .panels.secrets import SecretsPanel
    from .panels.settings import SettingsPanel
    from .panels.sync import SyncPanel

    return (SecretsPanel, RotationPanel, AuditPanel, MfaPanel, SyncPanel, SettingsPanel)


PANELS_DELAY_MS = 300


class MainWindow(QMainWindow):
    def __init__(self, controller: VaultController) -> None:
        super().__init__()
        self.controller = controller
        self.setObjectName("main-window")
        self.setWindowTitle("ITS Desktop")
        self.resize(1100, 700)
        self.unlock_page = UnlockPage(controller)
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Panels")
        # The tabs are built just after the unlock page is on screen (or at unlock, if sooner):
        # the unlock page must appear fast, and nobody types a password in 300 ms.
        self._panels: list[Panel] | None = None
        QTimer.singleShot(PANELS_DELAY_MS, self.ensure_panels)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.unlock_page)
        self.stack.addWidget(self.tabs)
        self.setCentralWidget(self.stack)
        self.vault_label = QLabel()
        self.statusBar().addPermanentWidget(self.vault_label)

        self.lock_action = QAction("&Lock", self, shortcut=QKeySequence("Ctrl+L"), triggered=lambda: controller.lock())
        self.lock_action.setEnabled(False)
        self.quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close)
        menu = self.menuBar().addMenu("&Vault")
        menu.addAction(self.lock_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)
        self.addAction(self.lock_action)

        self.autolock = AutoLock(controller, controller.settings, parent=self)
        QApplication.instance().installEventFilter(self.autolock)
        self.tray = Tray(controller, self, self.windowIcon())
        from .agent_bridge import AgentBridge

        self.agent = AgentBridge(controller, self)  # serves local bots while unlocked
        self.clipboard = shared_clipboard()
        self.clipboard.timeout_seconds = controller.settings.clipboard_seconds
        controller.settings_updated.connect(lambda s: setattr(self.clipboard, "timeout_seconds", s.clipboard_seconds))
        controller.unlocked.connect(self._show_panels)
        controller.locked.connect(self._show_unlock)
        self.unlock_page.open_other.connect(self.open_vault)
        self._show_unlock()

    @property
    def panels(self) -> list[Panel]:
        return self.ensure_panels()

    def ensure_panels(self) -> list[Panel]:
        if self._panels is None:
            self._panels = [cls(self.controller) for cls in panel_classes()]
            for panel in self._panels:
                panel.deferred = True  # a hidden tab fills itself when first shown
                self.tabs.addTab(panel, panel.title)
            if self.controller.vault is not None:  # built after the unlock was announced
                for panel in self._panels:
                    panel.follow_vault()
        return self._panels

    def _show_panels(self) -> None:
        self.ensure_panels()
        self.stack.setCurrentWidget(self.tabs)
        self.lock_action.setEnabled(True)
        self.vault_label.setText(str(self.controller.path))

    def _show_unlock(self) -> None:
        self.unlock_page.refresh()
        self.stack.setCurrentWidget(self.unlock_page)
        self.lock_action.setEnabled(False)
        self.unlock_page.password.setFocus()

    def open_vault(self, path: Path) -> None:
        """Switch to another vault file (locking this one first)."""
        self.controller.lock(quick=False)
        self.controller.path = path
        self.controller.session.path = path
        self.controller.watch_folder()
        self._show_unlock()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self.controller.lock(quick=False)
        self.clipboard.clear_now()
        self.agent.shutdown()
        QApplication.instance().removeEventFilter(self.autolock)
        self.tray.icon.hide()
        super().closeEvent(event)
