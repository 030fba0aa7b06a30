"""Who is on the other end of the agent's socket.

The kernel vouches for the peer's uid and pid (``SO_PEERCRED``, taken when it connected);
``/proc/PID`` tells the rest: the executable (``exe``, hashed through the link, so the hash is
of the very file that runs even if its path was replaced since), the command line (for an
interpreter, the script it runs), the working folder, the login session and the start time.

A client is identified by what survives its restart and cannot be faked by renaming: the
executable's path and SHA-256, the script's path and SHA-256 (for ``python -c CODE`` the
hash of CODE), and the working folder. A grant therefore keeps working after the bot restarts
and stops working when its code changes.

Limits (docs/agent-protocol.md, "Security"): a process of the same user that can ptrace the
bot can read its memory anyway; and a process that connects, then hands the socket to a child
and execs a granted program, passes for that program. The agent protects against other users
and against programs the user did not approve, not against malicious code already running as
the user.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import threading
from dataclasses import dataclass, field

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid (socket(7))

# Interpreter families, by executable name without version digits: which options take a
# value, and which ones run code given on the command line (identified by the code's hash).
_PYTHON_VALUE_OPTIONS = frozenset("WX")
_FAMILIES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "node": (frozenset({"-r", "--require", "--import", "--loader", "--experimental-loader", "-C",
                        "--conditions", "--input-type", "--title"}), frozenset({"-e", "--eval", "-p", "--print"})),
    "ruby": (frozenset({"-I", "-r", "-E", "-C", "-F", "-x", "--encoding"}), frozenset({"-e"})),
    "perl": (frozenset({"-I", "-M", "-m", "-x"}), frozenset({"-e", "-E"})),
    "sh": (frozenset({"-o", "+o", "-O", "+O", "--rcfile", "--init-file"}), frozenset({"-c"})),
}
_ALIASES = {"python": "python", "pypy": "python", "node": "node", "nodejs": "node", "ruby": "ruby",
            "perl": "perl", "bash": "sh", "sh": "sh", "dash": "sh", "zsh": "sh", "ksh": "sh"}


class ProcessGone(Exception):
    """The peer exited before it could be identified."""


class Unidentifiable(Exception):
    """The peer's /proc entry cannot be read (a process marked non-dumpable, for one)."""


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket) -> Peer:
    """The connecting process's pid, uid and gid, as the kernel recorded them at connect()."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    return Peer(*_UCRED.unpack(raw))


@dataclass(frozen=True)
class ClientIdentity:
    """A connected process, as grants see it.

    ``script`` is the absolute path of the script an interpreter runs, ``"-c"`` (or ``-e``...)
    for code on the command line, ``"-m NAME"`` for a Python module, or None; ``script_hash`` is
    the SHA-256 of that file or code (None when it cannot be read). ``session`` is the login
    session (its id and its leader's start time): a grant given "once" lasts for it."""

    pid: int
    uid: int
    exe: str
    exe_hash: str | None
    script: str | None
    script_hash: str | None
    cwd: str
    command: str  # for people: "python bot.py"
    session: tuple[int, int]
    started: int  # clock ticks after boot, tells a reused pid apart
    argv: tuple[str, ...] = field(default=(), repr=False)

    @property
    def key(self) -> tuple:
        """What a grant pins."""
        return (self.exe, self.exe_hash, self.script, self.script_hash, self.cwd)

    def describe(self) -> str:
        return f"{self.command} (pid {self.pid})"


class Hasher:
    """SHA-256 of files, cached by (device, inode, size, mtime): a bot's interpreter is hashed
    once per agent, not once per connection. Safe to share between threads."""

    def __init__(self) -> None:
        self._cache: dict[tuple, str] = {}
        self._lock = threading.Lock()

    def of_file(self, path: str) -> str | None:
        """The hash of the file at ``path`` (``/proc/PID/exe`` works: it opens the running
        file), or None when it cannot be read."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
            cached = self._cache.get(key)
            if cached is not None:
                return cached
            digest = hashlib.sha256()
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                digest.update(chunk)  # releases the GIL for big chunks
            value = digest.hexdigest()
        except OSError:
            return None
        finally:
            os.close(fd)
        with self._lock:
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = value
        return value


def text_hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogateescape")).hexdigest()


def interpreter_family(exe: str) -> str | None:
    """``python3.11`` → ``python``; None for a program that is not a known interpreter."""
    name = os.path.basename(exe).rstrip("0123456789.-")
    return _ALIASES.get(name)


def script_of(exe: str, argv: list[str] | tuple[str, ...], cwd: str,
              hasher: Hasher) -> tuple[str | None, str | None, str]:
    """(script, its hash, how to show the command) for the process running ``argv``."""
    family = interpreter_family(exe)
    program = os.path.basename(argv[0]) if argv and argv[0] else os.path.basename(exe)
    if family is None or len(argv) < 2:
        return None, None, program
    kind, value, option = (_python_target if family == "python" else _generic_target)(family, list(argv[1:]))
    if kind == "code":
        return option, text_hash(value), f"{program} {option} …"
    if kind == "module":
        return f"-m {value}", _module_hash(value, cwd, hasher), f"{program} -m {value}"
    if kind == "script" and value != "-":
        path = os.path.realpath(os.path.join(cwd, value))
        return path, hasher.of_file(path), f"{program} {value}"
    return None, None, program


def _python_target(_family: str, args: list[str]) -> tuple[str, str, str]:
    """What CPython runs: ("script", path, "") | ("code", code, "-c") | ("module", name, "-m")
    | ("none", "", "")."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return ("script", args[i + 1], "") if i + 1 < len(args) else ("none", "", "")
        if arg.startswith("--"):
            i += 2 if arg == "--check-hash-based-pycs" else 1
            continue
        if arg == "-" or not arg.startswith("-"):
            return "script", arg, ""
        for j, letter in enumerate(arg[1:], 1):
            rest = arg[j + 1:]
            if letter in "cm":
                value = rest or (args[i + 1] if i + 1 < len(args) else "")
                return ("code", value, "-c") if letter == "c" else ("module", value, "-m")
            if letter in _PYTHON_VALUE_OPTIONS:
                if not rest:
                    i += 1  # the value is the next argument
                break
        i += 1
    return "none", "", ""


def _generic_target(family: str, args: list[str]) -> tuple[str, str, str]:
    value_options, code_options = _FAMILIES[family]
    i = 0
    while i < len(args):
        arg = args[i]
        following = args[i + 1] if i + 1 < len(args) else ""
        if arg == "--":
            return ("script", following, "") if following else ("none", "", "")
        if arg in code_options:
            return "code", following, arg
        if arg in value_options:
            i += 2
            continue
        if arg.startswith(("-", "+")) and arg not in ("-", "+"):
            if family == "sh" and not arg.startswith("--") and "c" in arg[1:]:  # sh -ec 'code'
                return "code", following, "-c"
            i += 1
            continue
        return "script", arg, ""
    return "none", "", ""


def _module_hash(module: str, cwd: str, hasher: Hasher) -> str | None:
    """``python -m NAME`` looks in the working folder first: hash the file found there. A module
    found elsewhere (an installed package) is identified by name only."""
    base = os.path.join(cwd, *module.split("."))
    for candidate in (base + ".py", os.path.join(base, "__main__.py")):
        if os.path.isfile(candidate):
            return hasher.of_file(candidate)
    return None


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (which may hold spaces and ')')."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        raw = fh.read()
    return raw[raw.rindex(b")") + 2:].decode("ascii", "replace").split()


def identify(peer: Peer, hasher: Hasher) -> ClientIdentity:
    """Read the peer's identity from /proc. Raises ProcessGone if it exited meanwhile."""
    pid = peer.pid
    try:
        fields = _stat_fields(pid)
        session, started = int(fields[3]), int(fields[19])
        exe = os.readlink(f"/proc/{pid}/exe")
        cwd = os.readlink(f"/proc/{pid}/cwd")
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read(256 * 1024)
    except PermissionError:
        raise Unidentifiable(pid) from None
    except (OSError, ValueError, IndexError):
        raise ProcessGone(pid) from None
    exe = exe.removesuffix(" (deleted)")
    exe_hash = hasher.of_file(f"/proc/{pid}/exe")
    argv = tuple(part.decode("utf-8", "surrogateescape") for part in raw.split(b"\0")[:-1]) if raw else ()
    script, script_hash, command = script_of(exe, argv, cwd, hasher)
    try:
        leader_started = int(_stat_fields(session)[19]) if session > 0 else 0
    except (OSError, ValueError, IndexError):
        leader_started = 0
    # Checked last: if the pid was reused while we read, the start time no longer matches.
    try:
        if int(_stat_fields(pid)[19]) != started:
            raise ProcessGone(pid)
    except (OSError, ValueError, IndexError):
        raise ProcessGone(pid) from None
    return ClientIdentity(pid, peer.uid, exe, exe_hash, script, script_hash, cwd, command[:200],
                          (session, leader_started), started, argv)
