"""Replace leaked vault values in files with ``its://`` references.

``KEY=value`` lines (``.env`` style, ``export`` and quotes allowed) become ``KEY=its://NAME``,
which ``its-vault run --env-file`` resolves; anywhere else the value's bytes are replaced in
place (inside JSON quotes, a URL, a YAML value). Only vault values are replaced, never
pattern findings (we would not know what to put instead).

Nothing is written from memory of the scan alone: each file is read again and searched again,
and only findings still at the same place are replaced, so a file edited since the scan is
left alone (counted as stale). The new file is written beside the old one with the same mode
(and owner, where allowed), synced, and renamed over it: a crash leaves the old or the new
file, never half of one. The old contents may survive in free disk blocks or backups: a value
that was in a file should be rotated anyway.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from itertools import groupby

from ..agent.run import PREFIX
from .matcher import Matcher
from .report import Finding

_ENV_HEAD = re.compile(rb"([ \t]*(?:export[ \t]+)?[A-Za-z_][A-Za-z0-9_.\-]*[ \t]*=[ \t]*)([\"']?)")
_ENV_TAIL = re.compile(rb"[ \t]*(?:#[^\n]*)?\r?")


@dataclass
class FixResult:
    fixed: list[Finding] = field(default_factory=list)
    files: int = 0
    stale: int = 0  # findings no longer where the scan saw them (the file changed)
    failed: list[str] = field(default_factory=list)  # paths that could not be rewritten

    @property
    def replaced(self) -> int:
        return len(self.fixed)

    def describe(self) -> str:
        line = f"replaced {self.replaced} value{'s' if self.replaced != 1 else ''} in {self.files} " \
               f"file{'s' if self.files != 1 else ''} with its:// references"
        if self.stale:
            line += f"; {self.stale} skipped (the file changed since the scan: scan again)"
        if self.failed:
            line += f"; {len(self.failed)} file{'s' if len(self.failed) != 1 else ''} could not be written"
        return line


def fix_findings(findings: list[Finding], matcher: Matcher) -> FixResult:
    """Rewrite each file holding one of ``findings`` (vault values only)."""
    result = FixResult()
    wanted = sorted((f for f in findings if f.is_secret), key=lambda f: (f.path, f.offset))
    for path, group in groupby(wanted, key=lambda f: f.path):
        items = list(group)
        try:
            done, stale = _fix_file(path, items, matcher)
        except OSError:
            result.failed.append(path)
            continue
        result.fixed += done
        result.stale += stale
        if done:
            result.files += 1
    return result


def _fix_file(path: str, findings: list[Finding], matcher: Matcher) -> tuple[list[Finding], int]:
    data, before = _read(path)
    fresh = {(m.offset, m.length, m.label) for m in matcher.search(data)}
    current = [f for f in findings if (f.offset, f.length, f.label) in fresh]
    stale = len(findings) - len(current)
    chosen: list[Finding] = []
    end = -1
    for finding in sorted(current, key=lambda f: (f.offset, -f.length, f.label)):
        if finding.offset >= end:  # overlapping ones (one value inside another): the longest wins
            chosen.append(finding)
            end = finding.offset + finding.length
    if not chosen:
        return [], stale
    out = bytearray(data)
    for finding in reversed(chosen):
        start, stop = _span(data, finding)
        out[start:stop] = (PREFIX + finding.label).encode("utf-8")
    _replace(path, bytes(out), before)
    return chosen, stale


def _span(data: bytes, finding: Finding) -> tuple[int, int]:
    """The bytes to replace: the value, plus its quotes on a ``KEY="value"`` line."""
    start, stop = finding.offset, finding.offset + finding.length
    line_start = data.rfind(b"\n", 0, start) + 1
    line_end = data.find(b"\n", stop)
    line_end = len(data) if line_end < 0 else line_end
    head = _ENV_HEAD.fullmatch(data, line_start, start)
    if head is None:
        return start, stop
    quote = head.group(2)
    tail_from = stop
    if quote:
        if data[stop:stop + 1] != quote:
            return start, stop
        tail_from += 1
    if _ENV_TAIL.fullmatch(data, tail_from, line_end) is None:
        return start, stop
    return start - len(quote), tail_from


def _read(path: str) -> tuple[bytes, os.stat_result]:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file", path)
        return fh.read(), info


def _replace(path: str, data: bytes, before: os.stat_result) -> None:
    folder, name = os.path.split(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".its-tmp")
    try:
        os.fchmod(fd, stat.S_IMODE(before.st_mode))  # before any data is written
        try:
            os.fchown(fd, before.st_uid, before.st_gid)
        except OSError:
            pass  # not ours to give away: the file becomes the user's, with the same mode
        with os.fdopen(fd, "wb") as fh:
            fd = -1
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        now = os.stat(path, follow_symlinks=False)
        if (now.st_mtime_ns, now.st_size, now.st_ino) != (before.st_mtime_ns, before.st_size, before.st_ino):
            raise OSError(0, "changed while being fixed", path)
        os.replace(temp, path)
        temp = ""
        _sync_folder(folder)
    finally:
        if fd >= 0:
            os.close(fd)
        if temp:
            os.unlink(temp)


def _sync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
