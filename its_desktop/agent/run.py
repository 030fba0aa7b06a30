"""``its-vault run``: ``its://`` references, the child's masked output, and secret files.

A reference is ``its://NAME`` or ``its://NAME#field``: a .env file can hold references instead
of values and be committed without secrets. The resolved values reach the child in its
environment, or with ``--files`` as paths of 0600 files in a private 0700 folder (removed when
the command exits) for those who do not want values in ``/proc/PID/environ``.

Whatever the child prints to stdout and stderr is streamed through a ``Masker``, which replaces
every injected value (and its JSON-escaped, URL-encoded and base64 forms, and each line of a
multi-line value) with ``***``, also when a value arrives split across reads.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator
from urllib.parse import quote

from ..core.errors import InvalidInput
from ..core.secrets import validate_name
from .protocol import agent_dir, private_dir

PREFIX = "its://"
MASK = b"***"
MIN_MASKED = 4  # shorter values are not masked: "***" for every "1" would hide all output
ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Reference:
    name: str
    field: str | None = None

    def __str__(self) -> str:
        return PREFIX + self.name + (f"#{self.field}" if self.field else "")


def parse_reference(text: str) -> Reference | None:
    """``its://NAME[#field]`` → a Reference; None for any other text; InvalidInput for a
    malformed reference."""
    if not text.startswith(PREFIX):
        return None
    name, hash_sign, field = text[len(PREFIX):].partition("#")
    try:
        validate_name(name)
    except InvalidInput:
        raise InvalidInput(f"invalid reference '{text[:80]}': expected its://folder/name[#field]") from None
    if hash_sign and not field:
        raise InvalidInput(f"invalid reference '{text[:80]}': a field name must follow '#'")
    return Reference(name, field or None)


def check_variable(name: str) -> str:
    if not ENV_VAR.match(name):
        raise InvalidInput(f"invalid environment variable name '{name[:40]}'")
    return name


# -- masking -----------------------------------------------------------------------------------


def variants(value: str) -> set[bytes]:
    """The forms of a value worth masking, as bytes: itself, JSON-escaped, URL-encoded, the
    stable part of its base64 (what does not depend on the bytes after it), and each line of a
    multi-line value."""
    if len(value) < MIN_MASKED:
        return set()
    raw = value.encode("utf-8", "surrogateescape")
    found = {raw, json.dumps(value)[1:-1].encode("ascii"), quote(value, safe="").encode("ascii")}
    if len(raw) >= 6:
        found.add(base64.b64encode(raw)[: len(raw) // 3 * 4])
    for line in value.splitlines():
        if len(line.strip()) >= 8:
            found.add(line.strip().encode("utf-8", "surrogateescape"))
    return {v for v in found if len(v) >= MIN_MASKED}


class Masker:
    """Replaces the values in a stream, chunk by chunk.

    Only what could still become a value is held back: the longest end of the data seen that
    is the beginning of some value. Everything before it is final and goes out at once, so a
    program's prompts and progress lines are not delayed."""

    def __init__(self, values: Iterable[str]) -> None:
        needles = sorted({n for v in values for n in variants(v)}, key=lambda n: (-len(n), n))
        self._needles = needles
        self._pattern = re.compile(b"|".join(re.escape(n) for n in needles)) if needles else None
        self._starts = frozenset(n[0] for n in needles)
        self._longest = max((len(n) for n in needles), default=0)
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        if self._pattern is None:
            return data
        buf = self._pending + data
        out: list[bytes] = []
        pos = 0
        while True:
            hold = self._hold_point(buf, pos)
            match = self._pattern.search(buf, pos)
            if match is None or match.start() >= hold:
                out.append(buf[pos:hold])
                self._pending = buf[hold:]
                return b"".join(out)
            out += (buf[pos:match.start()], MASK)
            pos = match.end()

    def finish(self) -> bytes:
        """The data held back at the end of the stream, masked."""
        buf, self._pending = self._pending, b""
        if self._pattern is None or not buf:
            return buf
        return self._pattern.sub(MASK, buf)

    def _hold_point(self, buf: bytes, pos: int) -> int:
        """The first index at or after ``pos`` from which the rest of ``buf`` is a proper
        beginning of some value (len(buf) if there is none)."""
        end = len(buf)
        for start in range(max(pos, end - self._longest + 1), end):
            if buf[start] in self._starts:
                tail = buf[start:]
                if any(len(n) > len(tail) and n.startswith(tail) for n in self._needles):
                    return start
        return end


# -- secret files -----------------------------------------------------------------------------


@contextlib.contextmanager
def secret_files(values: dict[str, str]) -> Iterator[dict[str, str]]:
    """Each value in a 0600 file named after its variable, in a new private 0700 folder under
    the agent's runtime folder; yields {variable: path}; the folder goes when the block ends."""
    base = private_dir(agent_dir())
    folder = os.path.join(base, f"run-{os.getpid()}-{secrets.token_hex(4)}")
    os.mkdir(folder, 0o700)
    try:
        paths = {}
        for variable, value in values.items():
            path = os.path.join(folder, check_variable(variable))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(value.encode("utf-8", "surrogateescape"))
            paths[variable] = path
        yield paths
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the child ----------------------------------------------------------------------------------


def _pump(source: int, target: int, masker: Masker) -> None:
    """Copy a pipe to our stdout or stderr through ``masker``; if our side is gone, keep
    draining so the child never blocks on a full pipe."""
    alive = True

    def write(data: bytes) -> bool:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(target, view):]
            except InterruptedError:
                continue
            except OSError:
                return False
        return True

    while True:
        try:
            data = os.read(source, 65536)
        except InterruptedError:
            continue
        if not data:
            break
        masked = masker.feed(data)
        if alive and masked:
            alive = write(masked)
    tail = masker.finish()
    if alive and tail:
        write(tail)
    os.close(source)


def run_masked(argv: list[str], env: dict[str, str], values: Iterable[str]) -> int:
    """Run ``argv`` with ``env``, its stdout and stderr masked; returns its exit status
    (128 + N when signal N ended it). SIGTERM, SIGHUP and SIGQUIT are passed on; SIGINT from
    the terminal reaches the child by itself (same process group), so it is not sent twice.
    FileNotFoundError / PermissionError when the command cannot be started."""
    values = list(values)
    sys.stdout.flush()
    sys.stderr.flush()
    child: list[subprocess.Popen] = []
    early: list[int] = []  # signals that came before the child existed

    def forward(signum: int, _frame: object) -> None:
        if signum == signal.SIGINT:
            return
        if not child:
            early.append(signum)
        elif child[0].poll() is None:
            child[0].send_signal(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGINT):
            previous[signum] = signal.signal(signum, forward)
    try:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            proc = subprocess.Popen(argv, env=env, stdout=out_w, stderr=err_w)
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        child.append(proc)
        for signum in early:
            proc.send_signal(signum)
        pumps = [threading.Thread(target=_pump, args=(source, target, Masker(values)), daemon=True)
                 for source, target in ((out_r, 1), (err_r, 2))]
        for pump in pumps:
            pump.start()
        code = proc.wait()
        for pump in pumps:
            pump.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code
