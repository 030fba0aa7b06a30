"""Rotate what is due while the app is unlocked: the app's half of ``its-vault rotate --due``,
for people who run no cron job.

After each unlock and then every 15 minutes, if the setting "Rotate due secrets automatically"
is on, ``rotate_due`` runs on the runner: never on the GUI thread, never two runs at once. A
lock stops the run under way before its next step (the engine leaves a working value in the
vault at every step, so stopping there is safe) and its result is dropped. Automatic
rotations done or failed make one notification; the manual rotations that are due make
another, which is not repeated while the list stays the same. Names only, never a value.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from ..core.errors import VaultError
from ..rotators.due import DueReport, rotate_due
from .controller import VaultController
from .settings import AppSettings

log = logging.getLogger(__name__)

INTERVAL_MS = 15 * 60 * 1000
MAX_NAMES = 5  # a notification is a glance: the Rotation tab has the whole list

Notify = Callable[[str, bool], None]  # (one line, is it a warning)


class _Stopped(Exception):
    """Ends a run at lock. Deliberately not a VaultError: ``rotate_due`` counts those as one
    secret's failure and goes on to the next, and this must end the whole run."""


def names_text(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES])
    return shown if len(names) <= MAX_NAMES else f"{shown} and {len(names) - MAX_NAMES} more"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def rotations_message(report: DueReport) -> str | None:
    """What the automatic rotations did, in one line (a failure's reason names its step)."""
    parts = []
    if report.rotated:
        names = names_text([r.name for r in report.rotated])
        parts.append(f"Rotated {_plural(len(report.rotated), 'secret')}: {names}.")
    if report.failed:
        first = report.failed[0][1]
        more = f" (and {len(report.failed) - 1} more: see the Rotation tab)" if len(report.failed) > 1 else ""
        parts.append(f"{_plural(len(report.failed), 'automatic rotation')} failed: {first}{more}.")
    return " ".join(parts) or None


def manual_message(names: list[str]) -> str | None:
    if not names:
        return None
    verb = "needs" if len(names) == 1 else "need"
    return f"{_plural(len(names), 'secret')} {verb} a manual rotation: {names_text(names)}."


class RotationScheduler(QObject):
    """Runs the due automatic rotators for ``controller``'s vault and tells ``notify``."""

    ran = Signal(object)  # DueReport, after a run that finished while unlocked

    def __init__(self, controller: VaultController, notify: Notify, interval_ms: int = INTERVAL_MS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.notify = notify
        self.timer = QTimer(self, interval=interval_ms, timeout=self.run)
        self.running = False
        self.last_report: DueReport | None = None
        self._stop: threading.Event | None = None
        self._last_manual: tuple[str, ...] = ()  # not reset at lock: a quick re-unlock is no news
        self._enabled = controller.settings.rotate_due_automatically
        controller.unlocked.connect(self._on_unlocked)
        controller.locked.connect(self._on_locked)
        controller.settings_updated.connect(self._on_settings)

    @property
    def enabled(self) -> bool:
        return self.controller.settings.rotate_due_automatically

    def run(self) -> bool:
        """Rotate what is due now, unless the setting is off, the vault is locked or a run is
        under way. True if a run started."""
        vault = self.controller.vault
        if vault is None or self.running or not self.enabled:
            return False
        stop = threading.Event()
        self._stop, self.running = stop, True

        def observe(_name: str, _step: str) -> None:
            if stop.is_set():
                raise _Stopped

        self.controller.runner.submit(lambda: rotate_due(vault, observer=observe),
                                      lambda report: self._done(stop, report), lambda error: self._failed(stop, error))
        return True

    # -- results, on the GUI thread --------------------------------------------------------------

    def _finished(self, stop: threading.Event) -> bool:
        """Bookkeeping for either outcome; True if the result still counts."""
        self.running = False
        if self._stop is stop:
            self._stop = None
        if stop.is_set() or self.controller.vault is None:
            if self.controller.vault is not None:
                self.run()  # locked and unlocked again while it stopped: the new session's run
            return False
        return True

    def _done(self, stop: threading.Event, report: DueReport) -> None:
        if not self._finished(stop):
            return
        self.last_report = report
        if report.rotated or report.failed:  # a failure may have left a pending value
            self.controller.notify_changed()
        for _name, reason in report.failed:
            log.warning("scheduled rotation failed: %s", reason)
        message = rotations_message(report)
        if message:
            self.notify(message, bool(report.failed))
        manual = tuple(report.manual)
        if manual and manual != self._last_manual:
            self.notify(manual_message(list(manual)) or "", False)
        self._last_manual = manual
        self.ran.emit(report)

    def _failed(self, stop: threading.Event, error: BaseException) -> None:
        if not self._finished(stop):
            return
        if isinstance(error, VaultError):
            log.warning("scheduled rotations did not run: %s", error)
            self.notify(f"Scheduled rotations did not run: {error}", True)
        else:
            log.error("scheduled rotations failed", exc_info=(type(error), error, error.__traceback__))
            self.notify("Scheduled rotations failed unexpectedly (see the log).", True)

    # -- following the controller ----------------------------------------------------------------

    def _on_unlocked(self) -> None:
        self.timer.start()
        self.run()

    def _on_locked(self) -> None:
        self.timer.stop()
        if self._stop is not None:
            self._stop.set()

    def _on_settings(self, settings: AppSettings) -> None:
        was, self._enabled = self._enabled, settings.rotate_due_automatically
        if self._enabled and not was:
            self.run()
        elif not self._enabled and self._stop is not None:
            self._stop.set()
