"""A scan: walk the paths, search each file for vault values and credential patterns, and
report where (file, line, column) and what (secret name or pattern kind), never the text."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .matcher import Matcher
from .patterns import any_needle, find_patterns
from .report import PATTERN, SECRET, Finding, ScanReport
from .walker import WalkOptions, walk

PROGRESS_EVERY = 1000  # files
SEEN_LIMIT = 1_000_000  # clean tokens remembered across files (then forgotten and started again)


@dataclass(frozen=True)
class ScanOptions:
    walk: WalkOptions = field(default_factory=WalkOptions)
    patterns: bool = True


def scan(paths: Iterable[str | os.PathLike], matcher: Matcher | None, options: ScanOptions = ScanOptions(),
         progress: Callable[[int], None] | None = None, cancel: threading.Event | None = None) -> ScanReport:
    """Scan ``paths``; ``progress`` gets the number of files scanned every 1,000 files;
    ``cancel`` stops the walk (the report says ``cancelled``)."""
    report = ScanReport()
    stats = report.stats
    if matcher is not None:
        stats.values_searched, stats.values_too_short = matcher.values, matcher.too_short
    seen: set[bytes] = set()
    started = time.perf_counter()
    try:
        for path, data in walk(paths, options.walk, stats, cancel):
            stats.files_scanned += 1
            stats.bytes_scanned += len(data)
            report.findings += find_in(path, data, matcher, options.patterns, seen)
            if progress is not None and stats.files_scanned % PROGRESS_EVERY == 0:
                progress(stats.files_scanned)
    finally:
        stats.seconds = time.perf_counter() - started
        seen.clear()  # file text, never values, but no longer needed
    report.cancelled = cancel is not None and cancel.is_set()
    return report


def find_in(path: str, data: bytes, matcher: Matcher | None, patterns: bool = True,
            seen: set[bytes] | None = None) -> list[Finding]:
    """The findings of one file's contents. A pattern hit on a span a vault value already
    covers is not reported twice.

    ``seen``: whitespace-separated tokens of earlier files that held nothing (no vault value
    at an anchor, no pattern's needle): a token is a property of its bytes, so it is not
    searched again. Home folders repeat themselves; this is most of the speed."""
    findings: list[Finding] = []
    spans: list[tuple[int, int]] = []
    new = set(data.split())
    if seen is not None:
        new.difference_update(seen)
    if not new and not (matcher is not None and matcher.needs_lines):
        return findings
    tokens = b"\n".join(new)
    needles = patterns and any_needle(tokens)
    if matcher is not None:
        matches = matcher.search(data, tokens)
        for match in matches:
            line, column = position(data, match.offset)
            findings.append(Finding(path, line, column, SECRET, match.label, None, match.offset, match.length))
            spans.append((match.offset, match.offset + match.length))
    if seen is not None and not findings and not needles:
        if len(seen) > SEEN_LIMIT:
            seen.clear()
        seen |= new
    if needles:
        for hit in find_patterns(data):
            end = hit.offset + hit.length
            if any(start < end and hit.offset < stop for start, stop in spans):
                continue
            line, column = position(data, hit.offset)
            findings.append(Finding(path, line, column, PATTERN, hit.pattern.description, hit.pattern.id,
                                    hit.offset, hit.length))
    findings.sort(key=lambda f: (f.offset, f.kind, f.label))
    return findings


def position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a byte offset."""
    line = data.count(b"\n", 0, offset) + 1
    start = data.rfind(b"\n", 0, offset) + 1
    return line, len(data[start:offset].decode("utf-8", "replace")) + 1
