"""Which files a scan reads: a walk with ``os.scandir`` that honours ``.gitignore`` files.

Skipped: ``.git`` folders, what a ``.gitignore`` (or ``--exclude``) ignores, symlinks (never
followed: a link to ``/`` must not turn a scan of a project into a scan of the disk), sockets,
fifos and devices (opening a fifo would block), files over the size limit, and binaries (a NUL
byte in the first 8 KiB, as git decides). Each skip is counted in ``ScanStats``.

``.gitignore`` semantics (gitignore(5)): blank lines and ``#`` comments are ignored, ``\\``
escapes, ``!`` re-includes, a trailing ``/`` matches folders only, a pattern with a ``/``
elsewhere is anchored to its file's folder, ``*``/``?``/``[...]`` do not cross ``/``, ``**``
spans folders; the last matching line wins and deeper files win over higher ones; nothing
inside an ignored folder can be re-included (the folder is not entered). A path named on the
command line is always scanned; the ``.gitignore`` files of the repository above it apply.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .report import ScanStats

DEFAULT_MAX_SIZE = 1024 * 1024
BINARY_PROBE = 8192
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class WalkOptions:
    max_size: int = DEFAULT_MAX_SIZE
    gitignore: bool = True
    excludes: tuple[str, ...] = ()  # gitignore-style patterns relative to each scanned path


@dataclass(frozen=True)
class Rule:
    regex: re.Pattern[str]
    negated: bool
    dir_only: bool
    anchored: bool  # matched against the path from the .gitignore's folder, else the name


def parse_gitignore(text: str) -> tuple[Rule, ...]:
    rules = []
    for raw in text.splitlines():
        rule = _parse_line(raw)
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


def _parse_line(line: str) -> Rule | None:
    if not line or line.startswith("#"):
        return None
    # Trailing spaces are dropped unless escaped with a backslash.
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        stripped += " "
    line = stripped
    negated = line.startswith("!")
    if negated:
        line = line[1:]
    elif line.startswith("\\!") or line.startswith("\\#"):
        line = line[1:]
    dir_only = line.endswith("/") and not line.endswith("\\/")
    if dir_only:
        line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    line = line.lstrip("/")
    if not line:
        return None
    try:
        regex = re.compile(_translate(line), re.DOTALL)
    except re.error:
        return None  # git ignores a line it cannot parse; so do we
    return Rule(regex, negated, dir_only, anchored)


def _translate(pattern: str) -> str:
    """A gitignore glob as a regular expression over ``/``-separated relative paths."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            j = i
            while j < n and pattern[j] == "*":
                j += 1
            whole_segment = (i == 0 or pattern[i - 1] == "/") and (j == n or pattern[j] == "/")
            if j - i >= 2 and whole_segment:
                if j == n:
                    out.append(".*")  # trailing "/**" (or a lone "**"): everything below
                else:
                    out.append("(?:.*/)?")  # "**/": zero or more folders
                    j += 1
            else:
                out.append("[^/]*")
            i = j
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "^", "]") else i + 1)
            if end < 0:
                out.append(re.escape(c))
                i += 1
                continue
            body = pattern[i + 1:end]
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("[", "\\[")
            out.append(f"[{'^/' if negate else ''}{body}]")
            i = end + 1
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class _Scope:
    """The rules of one .gitignore and where the current folder sits below its folder."""

    rules: tuple[Rule, ...]
    prefix: str  # the current folder relative to the rules' folder, "" or ending in "/"

    def below(self, name: str) -> _Scope:
        return _Scope(self.rules, f"{self.prefix}{name}/")


def _ignored(scopes: tuple[_Scope, ...], name: str, is_dir: bool) -> bool:
    """The last matching rule decides; deeper scopes come later, so they are tried first."""
    for scope in reversed(scopes):
        for rule in reversed(scope.rules):
            if rule.dir_only and not is_dir:
                continue
            target = scope.prefix + name if rule.anchored else name
            if rule.regex.fullmatch(target):
                return not rule.negated
    return False


def _read_rules(folder: str) -> tuple[Rule, ...]:
    try:
        with open(os.path.join(folder, ".gitignore"), encoding="utf-8", errors="replace") as fh:
            return parse_gitignore(fh.read())
    except OSError:
        return ()


def _outer_scopes(start: Path) -> tuple[_Scope, ...]:
    """The .gitignore files from the repository root above ``start`` down to ``start``'s
    parent, so a scan of a sub-folder ignores what the repository ignores."""
    chain: list[Path] = []
    for folder in start.parents:
        chain.append(folder)
        if (folder / ".git").exists():
            break
    else:
        return ()  # not inside a repository
    scopes = []
    for folder in reversed(chain):
        rules = _read_rules(str(folder))
        if rules:
            scopes.append(_Scope(rules, start.relative_to(folder).as_posix() + "/"))
    return tuple(scopes)


def walk(paths: Iterable[str | os.PathLike], options: WalkOptions, stats: ScanStats,
         cancel: threading.Event | None = None) -> Iterator[tuple[str, bytes]]:
    """(path, contents) of every file to scan, in folder order; skips are counted in
    ``stats``. A missing path raises FileNotFoundError before anything is read."""
    for path in walk_paths(paths, options, stats, cancel):
        data = read_file(path, options, stats)
        if data is not None:
            yield path, data


def walk_paths(paths: Iterable[str | os.PathLike], options: WalkOptions, stats: ScanStats,
               cancel: threading.Event | None = None) -> Iterator[str]:
    """The files to read, in folder order: the listing's part of ``walk`` (ignored, large by
    their listed size, and non-regular entries are counted here; ``read_file`` counts the rest)."""
    starts = [Path(p) for p in paths]
    for start in starts:
        if not os.path.lexists(start):
            raise FileNotFoundError(2, "No such file or directory", str(start))
    excludes = parse_gitignore("\n".join(options.excludes))
    for start in starts:
        if start.is_symlink():
            stats.skipped_other += 1
            continue
        if start.is_dir():
            scopes = _outer_scopes(start.resolve()) if options.gitignore else ()
            excluded = (_Scope(excludes, ""),) if excludes else ()
            yield from _walk_folder(str(start), scopes, excluded, options, stats, cancel)
        else:
            yield str(start)


def _walk_folder(top: str, scopes: tuple[_Scope, ...], excluded: tuple[_Scope, ...], options: WalkOptions,
                 stats: ScanStats, cancel: threading.Event | None) -> Iterator[str]:
    """Depth first, in name order. ``excluded`` (``--exclude``) wins over any ``.gitignore``."""
    stack = [(top, scopes, excluded)]
    while stack:
        if cancel is not None and cancel.is_set():
            return
        folder, scopes, excluded = stack.pop()
        if options.gitignore:
            rules = _read_rules(folder)
            if rules:
                scopes = scopes + (_Scope(rules, ""),)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            stats.skipped_other += 1
            continue
        folders = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                if not is_dir and not entry.is_file(follow_symlinks=False):
                    stats.skipped_other += 1  # a symlink, socket, fifo or device
                    continue
            except OSError:
                stats.skipped_other += 1
                continue
            if is_dir and entry.name == ".git":
                continue
            if ((excluded and _ignored(excluded, entry.name, is_dir))
                    or (scopes and _ignored(scopes, entry.name, is_dir))):
                stats.skipped_ignored += 1
                continue
            if is_dir:
                folders.append((entry.path, tuple(s.below(entry.name) for s in scopes),
                                tuple(s.below(entry.name) for s in excluded)))
                continue
            try:
                size = entry.stat(follow_symlinks=False).st_size
            except OSError:
                stats.skipped_other += 1
                continue
            if size > options.max_size:
                stats.skipped_large += 1
                continue
            yield entry.path
        stack.extend(reversed(folders))  # popped in name order


def read_file(path: str, options: WalkOptions, stats: ScanStats) -> bytes | None:
    """The file's bytes, or None (counted) when it is not a regular file, too large, binary
    or unreadable. No symlink is followed, and a fifo swapped in after the listing does not
    block (O_NONBLOCK, then fstat)."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        stats.skipped_other += 1
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            stats.skipped_other += 1
            return None
        if info.st_size > options.max_size:
            stats.skipped_large += 1
            return None
        chunks = []
        left = options.max_size + 1
        while left > 0:
            chunk = os.read(fd, min(left, max(info.st_size + 1, 65536)))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError:
        stats.skipped_other += 1
        return None
    finally:
        os.close(fd)
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if len(data) > options.max_size:
        stats.skipped_large += 1
        return None
    if b"\x00" in data[:BINARY_PROBE]:
        stats.skipped_binary += 1
        return None
    return data
