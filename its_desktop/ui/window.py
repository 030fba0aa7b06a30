"""The main window: the unlock page until the vault opens, then the panels as tabs.

The Vault menu (and the tray) hold Lock (Ctrl+L) and Emergency lockdown… (Ctrl+Shift+L): after
one confirmation, every agent grant is revoked and every secret marked "rotate now" (off the
GUI thread), the clipboard is cleared whatever it holds, the agent stops and the vault locks
for a full unlock. The window also runs the rotation scheduler (``scheduler``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QStackedWidget, QTabWidget

from ..core.errors import VaultError
from ..agent.lockdown import LockdownReport, lockdown
from .autolock import AutoLock
from .clipboard import shared_clipboard
from .controller import VaultController
from .dialogs.lockdown import LockdownQuestion
from .panels.base import Panel
from .scheduler import RotationScheduler
from .tray import Tray
from .unlock import UnlockPage

log = logging.getLogger(__name__)


def panel_classes() -> tuple[type[Panel], ...]:
    """The tabs, in order (an explicit registry, see tests/gui/test_window.py)."""
    from .panels.audit import AuditPanel
    from .panels.mfa import MfaPanel
    from .panels.rotation import RotationPanel
    from .panels.secrets import SecretsPanel
    from .panels.dashboard import DashboardPanel
    from .panels.settings import SettingsPanel
    from .panels.sync import SyncPanel

    return (SecretsPanel, RotationPanel, AuditPanel, MfaPanel, SyncPanel, SettingsPanel, DashboardPanel)


PANELS_DELAY_MS = 300
LOCKDOWN_SHORTCUT = "Ctrl+Shift+L"


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
        self.lockdown_action = QAction("Emergency lock&down…", self, shortcut=QKeySequence(LOCKDOWN_SHORTCUT),
                                       triggered=self.ask_lockdown)
        self.lockdown_action.setStatusTip("Revoke every agent grant, mark every secret rotate now, clear the "
                                          "clipboard and lock")
        self.lockdown_action.setEnabled(False)
        self.lockdown_box: LockdownQuestion | None = None
        self.locking_down = False
        self.quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close)
        menu = self.menuBar().addMenu("&Vault")
        menu.addAction(self.lock_action)
        menu.addAction(self.lockdown_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)
        self.addAction(self.lock_action)
        self.addAction(self.lockdown_action)

        self.autolock = AutoLock(controller, controller.settings, parent=self)
        QApplication.instance().installEventFilter(self.autolock)
        self.tray = Tray(controller, self, self.windowIcon())
        self.tray.menu.insertAction(self.tray.quit_action, self.lockdown_action)
        from .agent_bridge import AgentBridge

        self.clipboard = shared_clipboard()
        self.agent = AgentBridge(controller, self, clipboard=self.clipboard)  # serves local bots while unlocked
        self.agent.locked_down.connect(self._agent_locked_down)
        self.scheduler = RotationScheduler(controller, self.tray.notify, parent=self)
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
            self._add_tool_actions()  # here, not at start-up: their dialog modules cost ~70 ms to import
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
        self.lockdown_action.setEnabled(not self.locking_down)
        self.vault_label.setText(str(self.controller.path))

    def _show_unlock(self) -> None:
        self.unlock_page.refresh()
        self.stack.setCurrentWidget(self.unlock_page)
        self.lock_action.setEnabled(False)
        self.lockdown_action.setEnabled(False)
        box, self.lockdown_box = self.lockdown_box, None
        if box is not None:
            box.reject()
        self.unlock_page.password.setFocus()

    def open_vault(self, path: Path) -> None:
        """Switch to another vault file (locking this one first)."""
        self.controller.lock(quick=False)
        self.controller.path = path
        self.controller.session.path = path
        self.controller.watch_folder()
        self._show_unlock()

    # -- emergency lockdown ----------------------------------------------------------------------

    def ask_lockdown(self) -> None:
        """Ask once (what will happen, Cancel by default), then ``lockdown``."""
        if self.controller.vault is None or self.lockdown_box is not None or self.locking_down:
            return
        box = LockdownQuestion(self)

        def finished() -> None:
            if self.lockdown_box is box:
                self.lockdown_box = None
            go = box.confirmed
            box.setParent(None)
            box.deleteLater()
            if go:
                self.lockdown()

        box.finished.connect(finished)
        self.lockdown_box = box
        box.open()

    def lockdown(self) -> None:
        """Without asking: the agent stops first (no bot reads while the vault changes), the
        vault's half runs on the runner, then the clipboard is cleared and the vault locks,
        whether or not the vault's half succeeded: it is an emergency."""
        vault = self.controller.vault
        if vault is None or self.locking_down:
            return
        self.locking_down = True
        self.lockdown_action.setEnabled(False)
        self.agent.stop()
        self.clipboard.clear_all()
        self.statusBar().showMessage("Emergency lockdown…")

        def done(report: LockdownReport) -> None:
            self._end_lockdown(f"Emergency lockdown: {report.describe()}; the vault is locked and the "
                               "clipboard cleared. The Rotation tab is the checklist.")

        def failed(error: BaseException) -> None:
            if isinstance(error, VaultError):
                reason = str(error)
            else:
                log.error("lockdown failed", exc_info=(type(error), error, error.__traceback__))
                reason = "unexpected error (see the log)"
            self._end_lockdown(f"Emergency lockdown failed: {reason}. The vault is locked and the clipboard "
                               "cleared: run 'its-vault lockdown' to revoke the grants and mark the secrets.")

        self.controller.runner.submit(lambda: lockdown(vault), done, failed)

    def _end_lockdown(self, message: str) -> None:
        self.locking_down = False
        self.clipboard.clear_all()  # again: anything copied while the vault's half ran
        self.controller.lock(quick=False)
        self._announce(message)

    def _add_tool_actions(self) -> None:
        """The Vault menu's tools, each built by its own dialog module."""
        from .dialogs.export_dialog import add_backup_actions
        from .dialogs.import_dialog import add_import_action
        from .dialogs.scan_dialog import add_scan_action

        add_import_action(self)  # Import… (Ctrl+I)
        add_scan_action(self)  # Scan folders for leaked secrets…
        add_backup_actions(self)  # Back up…, Export as plain text…

    def _agent_locked_down(self) -> None:
        self._announce("Emergency lockdown asked through the agent (its-vault lockdown): grants revoked, every "
                       "secret marked rotate now; the vault is locked and the clipboard cleared.")

    def _announce(self, message: str) -> None:
        self.statusBar().showMessage(message)
        self.tray.notify(message, True)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self.controller.lock(quick=False)
        self.clipboard.clear_now()
        self.agent.shutdown()
        QApplication.instance().removeEventFilter(self.autolock)
        self.tray.icon.hide()
        super().closeEvent(event)
