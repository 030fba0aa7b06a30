"""The agent inside the app: it serves while the vault is unlocked and asks the user about
programs it does not know yet.

``AgentBridge(controller, parent_widget)`` starts the agent at each unlock and stops it at each
lock (which revokes every "once" grant and every pending question). The agent's thread never
touches a widget: its questions and lock requests cross to the GUI thread as queued signals,
and the user's answer goes back through ``AgentServer.resolve``. Questions are asked one at a
time, in the order they came; one the agent gave up on (timeout, the program went away, the
vault locked) is withdrawn.

An emergency lockdown asked through the socket (``its-vault lockdown``) arrives done: grants
revoked, every secret marked "rotate now", sessions revoked. The app's half follows on the GUI
thread: the clipboard is cleared whatever it holds, and the vault locks.

If another agent already serves this user (``its-vault agent``), the app does not start its
own: ``status`` says why.
"""

from __future__ import annotations

import html
import logging

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QComboBox, QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..agent.protocol import AgentError
from ..agent.server import AgentServer, ApprovalRequest, Decision
from .clipboard import SecretClipboard, shared_clipboard
from .controller import VaultController

log = logging.getLogger(__name__)

# (choice sent to the agent, button label)
CHOICES = (("once", "Once"), ("8h", "For 8 hours"), ("always", "Always"), ("deny", "Deny"))


class ApprovalDialog(QDialog):
    """Allow ``python bot.py`` (pid 1234) to read ``brokers/ibkr/*``? Once / for 8 hours /
    always / deny. Closing it denies."""

    decided = Signal(object)  # Decision

    def __init__(self, request: ApprovalRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.request = request
        self._answered = False
        client = request.client
        self.setObjectName("agent-approval")
        self.setWindowTitle("Allow access to the vault?")
        verb = "read" if request.action == "read" else "list and read"
        question = QLabel(f"Allow <b>{html.escape(client.command)}</b> (pid {client.pid}) to {verb} "
                          f"<b>{html.escape(request.pattern)}</b>?")
        question.setTextFormat(Qt.TextFormat.RichText)
        question.setWordWrap(True)
        facts = [f"Program: {client.exe}",
                 f"Fingerprint: sha256 {(client.exe_hash or 'unreadable')[:16]}…"]
        if client.script:
            facts.append(f"Script: {client.script}"
                         + (f" (sha256 {client.script_hash[:16]}…)" if client.script_hash else ""))
        facts.append(f"Folder: {client.cwd}")
        details = QLabel("\n".join(facts))
        details.setTextFormat(Qt.TextFormat.PlainText)
        details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.scope = QComboBox()
        self.scope.setAccessibleName("Scope")
        self.scope.addItem(request.pattern, request.pattern)
        if request.action == "read" and request.name != request.pattern:
            self.scope.addItem(f"{request.name} only", request.name)
        self.scope.setVisible(self.scope.count() > 1)
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        for choice, label in CHOICES:
            button = QPushButton(label)
            button.setAutoDefault(False)
            button.clicked.connect(lambda _checked=False, c=choice: self.answer(c))
            self.buttons[choice] = button
            row.addWidget(button)
        self.buttons["deny"].setDefault(True)
        layout = QVBoxLayout(self)
        layout.addWidget(question)
        layout.addWidget(details)
        layout.addWidget(self.scope)
        layout.addLayout(row)

    def answer(self, choice: str) -> None:
        if self._answered:
            return
        self._answered = True
        self.decided.emit(Decision(choice, self.scope.currentData()))
        self.accept()

    def reject(self) -> None:  # Escape or the window's close button
        if not self._answered:
            self._answered = True
            self.decided.emit(Decision("deny"))
        super().reject()

    def withdraw(self) -> None:
        """The agent no longer waits for this answer: close without answering."""
        self._answered = True
        super().reject()


class AgentBridge(QObject):
    status = Signal(str)  # one line for a status bar: serving, or why not
    _asked = Signal(object)  # ApprovalRequest, from the agent's thread
    _withdrawn = Signal(str)
    _lock_requested = Signal()
    _lockdown_requested = Signal()
    locked_down = Signal()  # after a lockdown asked through the socket: clipboard cleared, vault locked

    def __init__(self, controller: VaultController, parent_widget: QWidget, folder: str | None = None,
                 clipboard: SecretClipboard | None = None) -> None:
        super().__init__(parent_widget)
        self.controller = controller
        self.parent_widget = parent_widget
        self.folder = folder
        self.clipboard = clipboard or shared_clipboard()
        self.server: AgentServer | None = None
        self.dialog: ApprovalDialog | None = None
        self._queue: list[ApprovalRequest] = []
        self._asked.connect(self._enqueue, Qt.ConnectionType.QueuedConnection)
        self._withdrawn.connect(self._withdraw, Qt.ConnectionType.QueuedConnection)
        self._lock_requested.connect(self._lock_now, Qt.ConnectionType.QueuedConnection)
        self._lockdown_requested.connect(self._lockdown_now, Qt.ConnectionType.QueuedConnection)
        controller.unlocked.connect(self.start)
        controller.locked.connect(self.stop)
        if controller.vault is not None:
            self.start()

    # -- the agent's life --------------------------------------------------------------------

    def start(self) -> None:
        if self.server is not None:
            return
        server = AgentServer(self._vault, mode="gui", approver=self, on_lock=self._lock_requested.emit,
                             on_lockdown=self._lockdown_requested.emit, folder=self.folder)
        try:
            server.start()
        except (AgentError, OSError) as error:
            log.warning("the agent did not start: %s", error)
            self.status.emit(f"Agent not started: {error}")
            return
        self.server = server
        self.status.emit(f"Agent serving at {server.socket_path}")

    def stop(self) -> None:
        """Stop serving (at lock): every session grant and pending question goes with it."""
        server, self.server = self.server, None
        self._queue.clear()
        if self.dialog is not None:
            self.dialog.withdraw()
            self.dialog = None
        if server is not None:
            server.revoke_sessions()
            server.stop()
            self.status.emit("Agent stopped (vault locked)")

    def shutdown(self) -> None:
        """For the window's close: stop, and stop following the controller."""
        for signal, slot in ((self.controller.unlocked, self.start), (self.controller.locked, self.stop)):
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):
                pass
        self.stop()

    def _vault(self):  # on the agent's thread: reads attributes only
        return self.controller.vault

    def _lock_now(self) -> None:
        self.controller.lock()

    def _lockdown_now(self) -> None:
        """The vault's half is done (by the agent's thread); the app's half: an emergency, so
        the clipboard goes whatever it holds, and no quick unlock afterwards."""
        self.clipboard.clear_all()
        self.controller.lock(quick=False)
        self.locked_down.emit()

    # -- the Approver the agent calls (on its thread) ----------------------------------------------

    def ask(self, request: ApprovalRequest) -> None:
        self._asked.emit(request)

    def cancel(self, request_id: str) -> None:
        self._withdrawn.emit(request_id)

    # -- questions, one at a time, on the GUI thread ------------------------------------------------

    def _enqueue(self, request: ApprovalRequest) -> None:
        if self.server is None:
            return
        self._queue.append(request)
        self._next()

    def _next(self) -> None:
        if self.dialog is not None or not self._queue:
            return
        request = self._queue.pop(0)
        dialog = ApprovalDialog(request, self.parent_widget)
        dialog.decided.connect(lambda decision, r=request: self._answered(r, decision))
        dialog.finished.connect(lambda _result, d=dialog: self._closed(d))
        self.dialog = dialog
        dialog.open()
        dialog.raise_()
        dialog.activateWindow()

    def _answered(self, request: ApprovalRequest, decision: Decision) -> None:
        if self.server is not None:
            self.server.resolve(request.id, decision)

    def _closed(self, dialog: ApprovalDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None
        dialog.deleteLater()
        self._next()

    def _withdraw(self, request_id: str) -> None:
        self._queue = [r for r in self._queue if r.id != request_id]
        if self.dialog is not None and self.dialog.request.id == request_id:
            self.dialog.withdraw()
