"""The GUI's hold on the vault: unlock (off the GUI thread), lock, quick unlock, and the
signals panels follow. Panels never keep secret values: they ask the vault when the user
reveals or copies, and drop everything on ``locked``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

from ..core.audit import Actor
from ..core.crypto import Argon2Params
from ..core.errors import VaultError
from ..core.secrets import utcnow
from ..core.vault.api import Vault
from ..services.session import QuickUnlockPolicy, Session
from .runner import Runner
from .settings import AppSettings


@dataclass
class GuiPrompter:
    """The factors' prompter for the GUI: touch requests become a signal, the PIN is the one
    typed on the unlock page (asked up front, since the key is driven off the GUI thread)."""

    on_touch: Callable[[str], None]
    given_pin: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def touch(self, message: str) -> None:
        self.on_touch(message)

    def pin(self, message: str) -> str | None:
        return self.given_pin


class VaultController(QObject):
    unlocked = Signal()
    locked = Signal()
    changed = Signal()  # the vault's contents changed (here or in another process)
    failed = Signal(str)  # one line for the user
    touch_requested = Signal(str)
    busy = Signal(bool)
    settings_updated = Signal(object)  # AppSettings

    def __init__(self, path: Path, runner: Runner | None = None, clock: Callable[[], datetime] = utcnow,
                 settings: AppSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self.runner = runner or Runner(self)
        self.clock = clock
        self.settings = settings or AppSettings()
        # The vault stamps times with this controller's clock, read at each call, so a test (or
        # the rotation panel's "what if") that moves ``controller.clock`` moves both.
        self.session = Session(self.path, Actor.current("gui"), self._policy(self.settings),
                               vault_clock=lambda: self.clock())
        self._prompter: GuiPrompter | None = None
        # Another process (the CLI, a second window) may save the vault: watch its folder (a
        # save replaces the file, which a watch on the file itself would lose) and re-read.
        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(lambda _path: self._settle.start())
        self._settle = QTimer(self, singleShot=True, interval=250, timeout=self._pick_up_changes)
        self.watch_folder()

    def watch_folder(self) -> None:
        folders = self._watcher.directories()
        if folders:
            self._watcher.removePaths(folders)
        if self.path.parent.is_dir():
            self._watcher.addPath(str(self.path.parent))

    def _pick_up_changes(self) -> None:
        vault = self.vault
        try:
            if vault is not None and vault.refresh():
                self.changed.emit()
        except VaultError as error:
            self.failed.emit(str(error))

    @property
    def vault(self) -> Vault | None:
        vault = self.session.vault
        return None if vault is None or vault.is_locked else vault

    def _prompter_for(self, pin: str | None) -> GuiPrompter:
        self._prompter = GuiPrompter(self.touch_requested.emit, pin)
        return self._prompter

    def cancel(self) -> None:
        if self._prompter is not None:
            self._prompter.cancel.set()

    # -- opening ------------------------------------------------------------------------------

    def create(self, password: str, kdf: Argon2Params | None = None,
               on_code: Callable[[str], None] | None = None) -> None:
        """Create a new vault at ``path`` off the GUI thread; ``on_code`` gets the recovery code."""

        def work() -> str | None:
            with Vault.create(self.path, password, kdf=kdf, actor=self.session.actor) as vault:
                return vault.take_recovery_code()

        def done(code: str | None) -> None:
            if on_code and code:
                on_code(code)
            self.unlock(password)

        self._run(work, done)

    def unlock(self, password: str, factor: str | None = None, pin: str | None = None) -> None:
        if factor == "tpm2":
            tpm_pin = pin or ""
            self._run(lambda: self.session.unlock_with_tpm(tpm_pin), lambda _vault: self.unlocked.emit())
            return
        prompter = self._prompter_for(pin)
        self._run(lambda: self.session.unlock(password, prompter, factor), lambda _vault: self.unlocked.emit())

    def quick_unlock(self, pin: str | None = None) -> None:
        prompter = self._prompter_for(pin)
        self._run(lambda: self.session.quick_unlock(prompter), lambda _vault: self.unlocked.emit())

    def _run(self, work: Callable[[], object], done: Callable[[object], None]) -> None:
        self.busy.emit(True)

        def finished(result: object) -> None:
            self.busy.emit(False)
            done(result)

        def failed(error: BaseException) -> None:
            self.busy.emit(False)
            self.failed.emit(str(error) if isinstance(error, VaultError) else "unexpected error (see the log)")

        self.runner.submit(work, finished, failed)

    # -- closing ------------------------------------------------------------------------------

    def lock(self, quick: bool = True) -> None:
        """Lock now; panels clear every model and widget that showed secret data."""
        if self.session.vault is None:
            return
        self.session.lock(quick=quick)
        self.locked.emit()

    @property
    def can_quick_unlock(self) -> bool:
        return self.session.can_quick_unlock()

    def notify_changed(self) -> None:
        self.changed.emit()

    @staticmethod
    def _policy(settings: AppSettings) -> QuickUnlockPolicy:
        return QuickUnlockPolicy(window_seconds=settings.quick_unlock_hours * 3600)

    def settings_changed(self, settings: AppSettings) -> None:
        """Apply new settings: the quick-unlock window here; panels follow the signal."""
        self.settings = settings
        self.session.policy = self._policy(settings)
        self.settings_updated.emit(settings)
