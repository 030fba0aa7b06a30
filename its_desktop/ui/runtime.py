"""The app's dealings with the Python runtime itself."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a burst of long-lived objects is made (10,000
    summaries and list rows at unlock): every 700 allocations would otherwise start a
    collection, and with a whole Qt app alive the full passes they lead to cost more than the
    work itself. What is made here has no cycles; the collector sees it later, when idle."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
