"""A scan: walk the paths, search each file for vault values and credential patterns, and
report where (file, line, column) and what (secret name or pattern kind), never the text.

With ``workers`` > 1 (the command line: one per CPU) the files are read and searched by forked
worker processes, in batches of paths the walk hands out in folder order, and the results are
taken back in that order: the same report as one process, in less time. The workers inherit
the matcher by ``fork`` (no key or fingerprint crosses a pipe; only paths go out and findings
come back) and the process's hardening (no core files, not dumpable). ``fork`` is only safe in
a process with one thread, so the app scans in one process.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from .matcher import Matcher
from .patterns import any_needle, find_patterns
from .report import PATTERN, SECRET, Finding, ScanReport, ScanStats
from .walker import WalkOptions, read_file, walk, walk_paths

PROGRESS_EVERY = 1000  # files
BATCH = 128  # paths per task for a worker: large enough that the pipe is not the cost
MAX_WORKERS = 8
SEEN_LIMIT = 1_000_000  # clean tokens remembered across files (then forgotten and started again)


@dataclass(frozen=True)
class ScanOptions:
    walk: WalkOptions = field(default_factory=WalkOptions)
    patterns: bool = True


def default_workers() -> int:
    """One worker per CPU (up to 8): reading and searching are CPU-bound once files are cached."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def scan(paths: Iterable[str | os.PathLike], matcher: Matcher | None, options: ScanOptions = ScanOptions(),
         progress: Callable[[int], None] | None = None, cancel: threading.Event | None = None,
         workers: int = 1) -> ScanReport:
    """Scan ``paths``; ``progress`` gets the number of files scanned every 1,000 files (about);
    ``cancel`` stops the walk (the report says ``cancelled``); ``workers`` > 1 searches in that
    many forked processes where ``fork`` exists."""
    report = ScanReport()
    stats = report.stats
    if matcher is not None:
        stats.values_searched, stats.values_too_short = matcher.values, matcher.too_short
    started = time.perf_counter()
    try:
        if workers > 1 and hasattr(os, "fork"):
            _scan_in_workers(paths, matcher, options, report, progress, cancel, workers)
        else:
            _scan_here(paths, matcher, options, report, progress, cancel)
    finally:
        stats.seconds = time.perf_counter() - started
    report.cancelled = cancel is not None and cancel.is_set()
    return report


def _scan_here(paths: Iterable[str | os.PathLike], matcher: Matcher | None, options: ScanOptions,
               report: ScanReport, progress: Callable[[int], None] | None, cancel: threading.Event | None) -> None:
    stats = report.stats
    seen: set[bytes] = set()
    try:
        for path, data in walk(paths, options.walk, stats, cancel):
            stats.files_scanned += 1
            stats.bytes_scanned += len(data)
            report.findings += find_in(path, data, matcher, options.patterns, seen)
            if progress is not None and stats.files_scanned % PROGRESS_EVERY == 0:
                progress(stats.files_scanned)
    finally:
        seen.clear()  # file text, never values, but no longer needed


# What a forked worker searches with: set in the parent just before the pool forks.
_worker_job: tuple[Matcher | None, ScanOptions] | None = None
_worker_seen: set[bytes] = set()


def _search_batch(paths: list[str]) -> tuple[list[Finding], ScanStats]:
    """In a worker: read and search a batch of files."""
    assert _worker_job is not None
    matcher, options = _worker_job
    stats = ScanStats()
    findings: list[Finding] = []
    for path in paths:
        data = read_file(path, options.walk, stats)
        if data is None:
            continue
        stats.files_scanned += 1
        stats.bytes_scanned += len(data)
        findings += find_in(path, data, matcher, options.patterns, _worker_seen)
    if len(_worker_seen) > SEEN_LIMIT:
        _worker_seen.clear()
    return findings, stats


def _scan_in_workers(paths: Iterable[str | os.PathLike], matcher: Matcher | None, options: ScanOptions,
                     report: ScanReport, progress: Callable[[int], None] | None,
                     cancel: threading.Event | None, workers: int) -> None:
    """The walk stays here and hands out batches in order; at most two per worker are in
    flight, so memory stays flat however large the tree."""
    import multiprocessing

    global _worker_job
    stats = report.stats
    walk_stats = ScanStats()
    reported = 0
    _worker_job = (matcher, options)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            in_flight: deque = deque()

            def collect() -> None:
                nonlocal reported
                findings, part = in_flight.popleft().get()
                report.findings += findings
                stats.add_counts(part)
                if progress is not None and stats.files_scanned - reported >= PROGRESS_EVERY:
                    reported = stats.files_scanned
                    progress(stats.files_scanned)

            for batch in _batches(walk_paths(paths, options.walk, walk_stats, cancel), BATCH):
                in_flight.append(pool.apply_async(_search_batch, (batch,)))
                while len(in_flight) > 2 * workers:
                    collect()
            while in_flight and not (cancel is not None and cancel.is_set()):
                collect()
    finally:
        _worker_job = None
        stats.add_counts(walk_stats)


def _batches(items: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


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
