"""Durable files and the cross-process writer lock.

Saving is atomic: a temporary file in the same folder (mode 0600 before any byte is written),
fsync, ``os.replace``, fsync of the folder. A crash leaves either the old or the new file.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import VaultBusy, VaultNotFound

DEFAULT_LOCK_WAIT = 10.0


def lock_wait_seconds() -> float:
    """How long a writer waits for another; ``ITS_LOCK_TIMEOUT`` overrides (seconds)."""
    try:
        return max(0.0, float(os.environ.get("ITS_LOCK_TIMEOUT", DEFAULT_LOCK_WAIT)))
    except ValueError:
        return DEFAULT_LOCK_WAIT


Stamp = tuple[int, int, int, int]


def stamp_of(st: os.stat_result) -> Stamp:
    """What changes whenever a save replaces the file (a new inode, new times)."""
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def file_stamp(path: Path) -> Stamp:
    try:
        return stamp_of(os.stat(path))
    except FileNotFoundError:
        return (0, 0, 0, 0)


def read_snapshot(path: Path) -> tuple[bytes, Stamp]:
    """The file's bytes and the stamp of that very file (one handle, so no save can slip in
    between reading and stamping)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(), stamp_of(os.fstat(fh.fileno()))
    except FileNotFoundError:
        raise VaultNotFound(str(path)) from None


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes | Sequence[bytes], *, sync_folder: bool = True) -> None:
    """Replace ``path`` with ``data`` (bytes, or chunks written in order) all or nothing.

    ``sync_folder=False`` skips the folder fsync for files where coming back as the previous
    version after a power cut is harmless (the audit head rolls forward over the log).
    """
    folder = path.parent
    tmp = folder / f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, (bytes, bytearray, memoryview)):
                fh.write(data)
            else:
                fh.writelines(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_folder:
        fsync_dir(folder)


def remove_stale_temps(path: Path) -> None:
    """Temp files left by writers that were killed mid-save; call only under the lock."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


def ensure_private_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)


def _lock_functions():
    """(try_lock, unlock) for an open file. On POSIX this is flock(2), exactly what
    portalocker does there, minus its ~30 ms import (it loads importlib.metadata to learn its
    own version), which would double `its-vault get`'s start-up; portalocker elsewhere."""
    if os.name == "posix":
        import fcntl

        def try_lock(fh) -> bool:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False

        return try_lock, lambda fh: fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    import portalocker

    def try_lock_portable(fh) -> bool:
        try:
            portalocker.lock(fh, portalocker.LOCK_EX | portalocker.LOCK_NB)
            return True
        except portalocker.exceptions.LockException:
            return False

    return try_lock_portable, portalocker.unlock


@contextlib.contextmanager
def writer_lock(path: Path, wait: float | None = None) -> Iterator[None]:
    """Exclusive lock on ``<vault>.lock``, waited for at most ``wait`` seconds.

    The lock is on a separate file because the vault itself is replaced on every save.
    """
    try_lock, unlock = _lock_functions()
    wait = lock_wait_seconds() if wait is None else wait
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fh = os.fdopen(fd, "r+b")
    deadline = time.monotonic() + wait
    try:
        delay = 0.002
        while not try_lock(fh):
            if time.monotonic() >= deadline:
                raise VaultBusy(wait)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        try:
            yield
        finally:
            unlock(fh)
    finally:
        fh.close()
