"""Find vault values in file contents without keeping the values.

Building a ``Matcher`` turns each value into keyed fingerprints (BLAKE2b under two random
per-run keys): one of an 8-byte *window* of the value, one of the whole value. The plain
bytes live in a ``bytearray`` only while they are fingerprinted and are zeroed right after;
nothing is ever written out. A file is searched by fingerprinting its windows at *anchors*
and looking them up; a hit is confirmed by the fingerprint of the candidate span as long as
the value, so a shared prefix alone never makes a finding.

Anchors (why it is fast): a window is taken only where it cannot be inside a run of letters
and digits, i.e. where the byte before or the byte itself is not ``[0-9A-Za-z]``. Every value
therefore has a window at an anchor of its own (its first byte, or a punctuation mark inside
it), and a file yields one window per word instead of one per byte. Files are split on
whitespace (C speed), tokens already seen clean in an earlier file are skipped, and the rest
go through one regular expression and one ``map`` of the keyed hash: no Python loop per byte.

What this misses, by design: a value made only of letters and digits glued to a letter or
digit before it (``0x`` + a hex value), and values under ``MIN_VALUE_LENGTH`` characters
(too ambiguous: they would match ordinary words). A value is also searched in its
JSON-escaped form when that differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from functools import partial
from operator import methodcaller
from typing import Iterable, Iterator

MIN_VALUE_LENGTH = 8  # characters
WINDOW = 8  # bytes
PREFIX_DIGEST = 8
FULL_DIGEST = 16
SECRET_FIELD = re.compile(r"pass|secret|token|key|credential|private|auth|pwd|pin", re.IGNORECASE)

# A window at every anchor: the lookahead takes WINDOW bytes, then a whole run of letters and
# digits (or one other byte) is consumed, so positions inside such a run are never tried.
_TOKEN_WINDOWS = re.compile(rb"(?=(\S{%d}))(?:[0-9A-Za-z]+|.)" % WINDOW, re.DOTALL)
# The same for values whose windows hold whitespace (a passphrase of short words): slower,
# used only when such a value exists.
_LINE_WINDOWS = re.compile(rb"(?=([^\n]{%d}))(?:[0-9A-Za-z]+|.)" % WINDOW, re.DOTALL)
_ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_SPACE = frozenset(b" \t\n\r\x0b\x0c")


@dataclass(frozen=True)
class Match:
    """A confirmed occurrence of a vault value: where, how long, and whose."""

    offset: int
    length: int
    label: str


@dataclass(frozen=True)
class _Entry:
    window_at: int  # where the fingerprinted window starts inside the value
    length: int
    full: bytes = field(repr=False)
    label: str


@dataclass(frozen=True)
class Source:
    """A value to look for, under the name a report and an ``its://`` reference use."""

    label: str
    value: str = field(repr=False)


def secret_sources(secrets: Iterable) -> Iterator[Source]:
    """The current value of each secret, and its fields whose names look secret (password,
    token, key…), as ``NAME`` and ``NAME#field``: the ``its://`` reference syntax."""
    for secret in secrets:
        yield Source(secret.name, secret.value)
        for key, value in secret.fields.items():
            if SECRET_FIELD.search(key):
                yield Source(f"{secret.name}#{key}", value)


class Matcher:
    """The fingerprints of a set of values, and the search over file contents."""

    def __init__(self, sources: Iterable[Source]) -> None:
        self._prefix_key = os.urandom(32)
        self._full_key = os.urandom(32)
        self._window_hash = partial(hashlib.blake2b, key=self._prefix_key, digest_size=PREFIX_DIGEST)
        self._digest = methodcaller("digest")
        self._token_entries: dict[bytes, list[_Entry]] = {}
        self._line_entries: dict[bytes, list[_Entry]] = {}
        token_quick: set[int] = set()
        line_quick: set[int] = set()
        self._tables = {"token": (self._token_entries, token_quick), "line": (self._line_entries, line_quick)}
        self.values = 0
        self.too_short = 0
        self.unsearchable = 0
        for source in sources:
            self._add(source)
        self._token_set = frozenset(self._token_entries)
        self._line_set = frozenset(self._line_entries)
        self._token_quick = frozenset(token_quick)
        self._line_quick = frozenset(line_quick)
        del self._tables

    @property
    def needs_lines(self) -> bool:
        """Some value can only be found across whitespace: every file is searched whole."""
        return bool(self._line_set)

    def __repr__(self) -> str:
        return f"Matcher(values={self.values}, too_short={self.too_short})"

    def _full(self, data: bytes | bytearray | memoryview) -> bytes:
        return hashlib.blake2b(data, key=self._full_key, digest_size=FULL_DIGEST).digest()

    def _add(self, source: Source) -> None:
        if len(source.value) < MIN_VALUE_LENGTH:
            self.too_short += 1
            return
        forms = [source.value]
        escaped = json.dumps(source.value, ensure_ascii=False)[1:-1]
        if escaped != source.value:
            forms.append(escaped)
        added = False
        for form in forms:
            raw = bytearray(form, "utf-8", "surrogatepass")
            try:
                added = self._add_form(raw, source.label) or added
            finally:
                raw[:] = bytes(len(raw))  # the plain bytes live no longer than this
        del forms, escaped
        if added:
            self.values += 1
        else:
            self.unsearchable += 1

    def _add_form(self, raw: bytearray, label: str) -> bool:
        """Fingerprint the window at the value's first anchor, and at its first inner anchor
        (a punctuation mark, found even when the value is glued to a word before it)."""
        full = self._full(raw)
        token_at = [at for at in _anchors(raw) if not any(raw[i] in _SPACE for i in range(at, at + WINDOW))]
        if token_at:
            inner = [at for at in token_at if at > 0][:1]
            for at in sorted(set(token_at[:1] + inner)):
                self._remember("token", raw, at, full, label)
            return True
        line_at = [at for at in _anchors(raw) if all(raw[i] != 10 for i in range(at, at + WINDOW))]
        if line_at:
            self._remember("line", raw, line_at[0], full, label)
            return True
        return False

    def _remember(self, kind: str, raw: bytearray, at: int, full: bytes, label: str) -> None:
        table, quick = self._tables[kind]
        window = self._window_hash(memoryview(raw)[at:at + WINDOW]).digest()
        quick.add(hash(bytes(raw[at:at + WINDOW])))  # the only copy not wiped: 8 bytes, freed at once
        entries = table.setdefault(window, [])
        entry = _Entry(at, len(raw), full, label)
        if entry not in entries:
            entries.append(entry)

    # -- searching --------------------------------------------------------------------------

    def search(self, data: bytes, tokens: bytes | None = None) -> list[Match]:
        """Every confirmed occurrence in ``data``. ``tokens``: the file's whitespace-separated
        tokens that may hold something, joined by newlines (the scanner leaves out tokens
        already seen clean in earlier files); by default all of them. Windows are fingerprinted
        in bulk, windows already seen clean are skipped, and only a file with a hit is
        searched again, precisely."""
        matches: list[Match] = []
        if self._token_set:
            if tokens is None:
                tokens = b"\n".join(set(data.split()))
            hits = self._hits(set(_TOKEN_WINDOWS.findall(tokens)), self._token_set, self._token_quick)
            if hits:
                matches += self._locate(data, hits, self._token_entries)
        if self._line_set:
            hits = self._hits(set(_LINE_WINDOWS.findall(data)), self._line_set, self._line_quick)
            if hits:
                matches += self._locate(data, hits, self._line_entries)
        return sorted(set(matches), key=lambda m: (m.offset, -m.length, m.label))

    def _hits(self, windows: set[bytes], wanted: frozenset[bytes], quick: frozenset[int]) -> dict[bytes, bytes]:
        """{window text: its fingerprint} for the windows whose fingerprint is wanted. The
        interpreter's own keyed hash of each window (computed by the set already) filters
        first; only the rare survivor is fingerprinted with BLAKE2b."""
        if quick.isdisjoint(map(hash, windows)):
            return {}
        hits = {}
        for window in windows:
            if hash(window) in quick:
                fingerprint = self._window_hash(window).digest()
                if fingerprint in wanted:
                    hits[window] = fingerprint
        return hits

    def _locate(self, data: bytes, hits: dict[bytes, bytes], table: dict[bytes, list[_Entry]]) -> list[Match]:
        found: list[Match] = []
        view = memoryview(data)
        for window, fingerprint in hits.items():
            entries = table[fingerprint]
            at = data.find(window)
            while at >= 0:
                for entry in entries:
                    start = at - entry.window_at
                    end = start + entry.length
                    if start >= 0 and end <= len(data) and self._full(view[start:end]) == entry.full:
                        found.append(Match(start, entry.length, entry.label))
                at = data.find(window, at + 1)
        return found


def _anchors(raw: bytearray) -> list[int]:
    """Positions where a window of the value starts, by the same rule as in a file: the first
    byte, and each byte that is not a letter or digit or follows one that is not."""
    return [at for at in range(0, len(raw) - WINDOW + 1)
            if at == 0 or raw[at] not in _ALNUM or raw[at - 1] not in _ALNUM]
