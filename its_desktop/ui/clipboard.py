"""Copying a secret to the system clipboard without leaving it there.

A copied value is cleared after ``timeout_seconds`` (10 s by default; the settings panel may
change it, 0 means never), and at lock through ``clear_now()``, but only while the clipboard
still holds what we put there: if the user copied something else meanwhile, theirs is left
alone. To recognise our value without keeping it, we keep a keyed hash of it. An emergency
lockdown is the exception: ``clear_all()`` empties the clipboard whatever it holds.

The data carries the markers that ask clipboard managers and the OS history not to record it:
KDE's ``x-kde-passwordManagerHint``, Windows' ``ExcludeClipboardContentFromMonitorProcessing``,
``CanIncludeInClipboardHistory`` = 0 and ``CanUploadToCloudClipboard`` = 0 (registered formats,
which Qt maps from ``application/x-qt-windows-mime;value="..."``), and macOS's concealed type
(nspasteboard.org).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from PySide6.QtCore import QCoreApplication, QMimeData, QObject, QTimer, Signal
from PySide6.QtGui import QClipboard, QGuiApplication

DEFAULT_TIMEOUT_SECONDS = 10.0
KDE_HINT = "x-kde-passwordManagerHint"
MAC_CONCEALED = "application/x-nspasteboard-concealed-type"
_DWORD_0 = (0).to_bytes(4, "little")
_DWORD_1 = (1).to_bytes(4, "little")
HINTS: dict[str, bytes] = {
    KDE_HINT: b"secret",
    'application/x-qt-windows-mime;value="ExcludeClipboardContentFromMonitorProcessing"': _DWORD_1,
    'application/x-qt-windows-mime;value="CanIncludeInClipboardHistory"': _DWORD_0,
    'application/x-qt-windows-mime;value="CanUploadToCloudClipboard"': _DWORD_0,
    MAC_CONCEALED: b"secret",
}


def secret_mime_data(text: str) -> QMimeData:
    """``text`` as clipboard data, marked as a secret for every platform's clipboard history."""
    mime = QMimeData()
    mime.setText(text)
    for kind, marker in HINTS.items():
        mime.setData(kind, marker)
    return mime


class SecretClipboard(QObject):
    """Puts a secret on the clipboard and takes it off again.

    ``copy(text)`` copies and (re)starts the clear timer; ``clear_now()`` clears at once if the
    clipboard still holds our value (call it on lock and on quit); ``cleared`` is emitted when
    we cleared it.
    """

    cleared = Signal()

    def __init__(self, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timeout = float(timeout_seconds)
        self._salt = secrets.token_bytes(32)  # the hash of a copied value is only ever ours
        self._ours: bytes | None = None
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self.clear_now)

    @property
    def timeout_seconds(self) -> float:
        return self._timeout

    @timeout_seconds.setter
    def timeout_seconds(self, seconds: float) -> None:
        """A new delay applies from the next copy on; 0 (or less) keeps copies until lock."""
        self._timeout = max(0.0, float(seconds))

    @property
    def holds_secret(self) -> bool:
        """Whether the clipboard still holds the value we copied last."""
        return self._ours is not None and self._is_ours()

    def copy(self, text: str) -> None:
        self._ours = self._digest(text)
        QGuiApplication.clipboard().setMimeData(secret_mime_data(text), QClipboard.Mode.Clipboard)
        if self._timeout > 0:
            self._timer.start(round(self._timeout * 1000))
        else:
            self._timer.stop()

    def clear_now(self) -> None:
        self._timer.stop()
        if self._ours is None:
            return
        ours = self._is_ours()
        self._ours = None
        if ours:
            QGuiApplication.clipboard().clear(QClipboard.Mode.Clipboard)
            self.cleared.emit()

    def clear_all(self) -> None:
        """Empty the clipboard (and the X11 selection) whatever it holds: in an emergency
        lockdown, what the user copied from elsewhere may be the very key that leaked."""
        self._timer.stop()
        self._ours = None
        board = QGuiApplication.clipboard()
        board.clear(QClipboard.Mode.Clipboard)
        if board.supportsSelection():
            board.clear(QClipboard.Mode.Selection)
        self.cleared.emit()

    def _is_ours(self) -> bool:
        mime = QGuiApplication.clipboard().mimeData(QClipboard.Mode.Clipboard)
        if mime is None or not mime.hasFormat(KDE_HINT) or not mime.hasText() or self._ours is None:
            return False
        return hmac.compare_digest(self._digest(mime.text()), self._ours)

    def _digest(self, text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8"), key=self._salt, digest_size=32).digest()


_shared: SecretClipboard | None = None


def shared_clipboard() -> SecretClipboard:
    """The application's one secret clipboard: the panels copy through it, the settings panel
    sets its ``timeout_seconds``, the window calls its ``clear_now()`` on lock and quit."""
    global _shared
    if _shared is None:
        _shared = SecretClipboard(parent=QCoreApplication.instance())
        _shared.destroyed.connect(_forget)
    return _shared


def _forget() -> None:
    global _shared
    _shared = None
