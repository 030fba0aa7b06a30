"""Keeping key material out of core files, debuggers and swap, as far as a Python process can.

``harden_process()`` turns core dumps off for this process and its children (``RLIMIT_CORE``
0, soft and hard) and, on Linux, marks the process non-dumpable (``PR_SET_DUMPABLE`` 0): no
core file even when a crash handler or ``/proc/sys/kernel/core_pattern`` pipe would ask for
one, and no other process of the same user may ptrace it or read its ``/proc/PID/mem``,
``environ``, ``exe`` or ``cwd``. That last part has a price: the agent identifies its clients
through exactly those ``/proc`` entries (``agent/peer.py``), so a process that reads secrets
*through* the agent (the command line) must stay dumpable and passes ``dumpable=True``; the
agent and the app, which serve and never ask, do not. ``execve`` makes a process dumpable
again, so programs started by ``its-vault run`` are not affected by that flag (they do inherit
the core limit).

``lock_memory(buffer)`` asks the OS not to swap the pages of a ``bytearray`` holding a key
(``mlock``; ``VirtualLock`` on Windows). It is best effort: it returns False when the OS says no
(``RLIMIT_MEMLOCK`` exhausted, no privilege, an unsupported platform) and the caller carries on.
Locks are per page and do not nest: ``unlock_memory`` unlocks the whole pages the buffer spans,
which may also hold another locked buffer; and a ``bytearray`` that is resized moves, leaving
the lock on its old pages, so only fixed-size key buffers should be locked.
docs/security-model.md ("What Python can and cannot zero") says what this does not cover.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ctypes

PR_SET_DUMPABLE = 4  # <linux/prctl.h>
PR_GET_DUMPABLE = 3


def harden_process(*, dumpable: bool = False) -> None:
    """No core files for this process and its children; on Linux also non-dumpable (no
    ptrace, no ``/proc/PID/mem`` for other processes of the user) unless ``dumpable``.
    Never fails: a platform without these knobs is left as it is."""
    try:
        import resource
    except ImportError:  # Windows: no core files to speak of
        return
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    if not dumpable and sys.platform.startswith("linux"):
        libc = _libc()
        if libc is not None:
            libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def is_dumpable() -> bool | None:
    """Linux: whether this process may be ptraced and core-dumped; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    libc = _libc()
    return None if libc is None else bool(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))


def lock_memory(buffer: bytearray) -> bool:
    """Keep ``buffer``'s pages out of swap; True if the OS agreed. An empty buffer is not
    locked (False)."""
    return _call(buffer, "mlock", "VirtualLock")


def unlock_memory(buffer: bytearray) -> bool:
    """Undo ``lock_memory`` (call it before the buffer is freed, after wiping it)."""
    return _call(buffer, "munlock", "VirtualUnlock")


def _call(buffer: bytearray, posix: str, windows: str) -> bool:
    if not isinstance(buffer, bytearray):
        raise TypeError("only a bytearray can be locked: bytes and str are immutable copies")
    if not buffer:
        return False
    import ctypes

    view = (ctypes.c_char * len(buffer)).from_buffer(buffer)
    try:
        address, size = ctypes.addressof(view), ctypes.c_size_t(len(buffer))
        if sys.platform == "win32":
            kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
            function = getattr(kernel32, windows)
            function.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
            return bool(function(ctypes.c_void_p(address), size))
        libc = _libc()
        if libc is None:
            return False
        function = getattr(libc, posix)
        function.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
        function.restype = ctypes.c_int
        return function(ctypes.c_void_p(address), size) == 0
    finally:
        del view  # releases the export, so the bytearray can be wiped and freed as usual


_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL | None:
    """The C library: on POSIX the running program's own symbols hold it (``CDLL(None)``), which
    costs nothing, unlike ``find_library`` (it may run a compiler or ldconfig)."""
    global _LIBC
    if _LIBC is None:
        import ctypes

        try:
            _LIBC = ctypes.CDLL(None, use_errno=True)
        except OSError:
            return None
    return _LIBC


__all__ = ["harden_process", "is_dumpable", "lock_memory", "unlock_memory"]
