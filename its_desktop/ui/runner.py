"""Work off the GUI thread: the KDF, hardware-key calls, verification of a long audit log.

``Runner.submit(fn, on_done, on_error)`` runs ``fn`` on a worker thread and calls ``on_done``
(or ``on_error``) back on the GUI thread, so the window never freezes and widgets are only
touched from the thread that owns them.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)


class Runner(QObject):
    _done = Signal(object, object)  # a callback and its single argument

    def __init__(self, parent: QObject | None = None, workers: int = 2) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="its-worker")
        self._done.connect(self._deliver)
        self.pending = 0

    def submit(self, fn: Callable[[], Any], on_done: Callable[[Any], None],
               on_error: Callable[[BaseException], None] | None = None) -> Future:
        self.pending += 1

        def finished(future: Future) -> None:
            error = future.exception()
            if error is None:
                self._done.emit(on_done, future.result())
            elif on_error is not None:
                self._done.emit(on_error, error)
            else:
                self._done.emit(_log_error, error)

        future = self._pool.submit(fn)
        future.add_done_callback(finished)
        return future

    def _deliver(self, callback: Callable[[Any], None], argument: Any) -> None:
        self.pending -= 1
        callback(argument)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _log_error(error: BaseException) -> None:
    log.error("background task failed: %s", type(error).__name__)
