"""Paged, newest-first reading of the audit log: pages cross block boundaries, a torn last line
is left out, filters match without decrypting, names are decrypted one record at a time, and a
long log is paged by reading its tail only."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from its_desktop.core.audit import Actor, AuditEvent, AuditFilter, AuditLog, AuditReader
from its_desktop.core.errors import AuditTampered, InvalidInput

KEY = bytes(range(32))
CLI, GUI = Actor("cli", 4242, "/usr/bin/its-vault"), Actor("gui", 77, "/usr/bin/its-desktop")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _log(folder: Path) -> AuditLog:
    return AuditLog(folder / "vault.its", KEY, "0" * 32)


def _events(count: int, start: int = 0) -> list[AuditEvent]:
    """Record i: a read of s/{i % 10} by the CLI every third record, else an update by the GUI;
    one hour apart from T0."""
    return [AuditEvent("read" if i % 3 == 0 else "update", "ok", CLI if i % 3 == 0 else GUI, f"s/{i % 10}",
                       f"event {i}", T0 + timedelta(hours=i)) for i in range(start, start + count)]


def _seqs(reader: AuditReader, lines: list[bytes]) -> list[int]:
    return [reader.decode(line).seq for line in lines]


def _all_pages(reader: AuditReader, flt: AuditFilter | None = None, limit: int = 50) -> list[int]:
    seqs, end = [], reader.end()
    match = reader.matcher(flt) if flt else None
    while end:
        lines, end = reader.page(end, match, limit)
        seqs += _seqs(reader, lines)
    return seqs


@pytest.fixture
def reader(tmp_path) -> AuditReader:
    log = _log(tmp_path)
    log.append(_events(300))
    r = AuditReader(log)
    r.BLOCK = 1024  # a handful of records per block: every page crosses block boundaries
    return r


def test_pages_are_newest_first_across_block_boundaries(reader):
    assert _all_pages(reader, limit=7) == list(range(300, 0, -1))
    first, resume = reader.page(reader.end(), limit=3)
    assert _seqs(reader, first) == [300, 299, 298]
    assert _seqs(reader, reader.page(resume, limit=2)[0]) == [297, 296]


def test_a_line_longer_than_a_block_is_read_whole(reader):
    reader.log.append([AuditEvent("import", "ok", CLI, "big", "x" * 5000, T0)])
    lines, _ = reader.page(reader.end(), limit=2)
    assert _seqs(reader, lines) == [301, 300]
    assert reader.decode(lines[0]).event.detail == "x" * 5000


def test_a_torn_last_line_is_left_out(reader):
    complete_end = reader.end()
    with open(reader.log.files.log, "ab") as fh:
        fh.write(b'{"actor":{"exe":"x","kind":"cli","pi')
    assert reader.end() == complete_end
    assert _seqs(reader, reader.page(reader.end(), limit=1)[0]) == [300]
    assert reader.newer(complete_end) == ([], complete_end)


def test_newer_returns_what_was_appended_oldest_first(reader):
    end = reader.end()
    reader.log.append(_events(3, start=300))
    lines, new_end = reader.newer(end)
    assert _seqs(reader, lines) == [301, 302, 303]
    assert new_end == reader.end() and reader.line_before(new_end) == lines[-1]


def test_names_are_decrypted_only_by_decode(reader):
    lines, _ = reader.page(reader.end(), limit=10)
    assert not any(b"s/" in line for line in lines), "raw lines keep names encrypted"
    record = reader.decode(lines[0])
    assert (record.seq, record.event.name, record.event.actor) == (300, "s/9", GUI)
    reader.log.wipe()
    with pytest.raises(AuditTampered):
        reader.decode(lines[0])  # a locked log's reader decrypts nothing


@pytest.mark.parametrize(("flt", "expected"), [
    (AuditFilter(op="read"), [i + 1 for i in range(300) if i % 3 == 0]),
    (AuditFilter(actor="gui"), [i + 1 for i in range(300) if i % 3]),
    (AuditFilter(actor="cli:4242"), [i + 1 for i in range(300) if i % 3 == 0]),
    (AuditFilter(actor="cli:4243"), []),
    (AuditFilter(name="s/4"), [i + 1 for i in range(300) if i % 10 == 4]),
    (AuditFilter(name="s/4", op="update"), [i + 1 for i in range(300) if i % 10 == 4 and i % 3]),
    (AuditFilter(since=T0 + timedelta(hours=10), until=T0 + timedelta(hours=20)), list(range(11, 21))),
    (AuditFilter(name="nothing/here"), []),
])
def test_filters(reader, flt, expected):
    assert _all_pages(reader, flt) == expected[::-1]
    assert [r.seq for r in reader.matching(flt)] == expected, "an export sees the same records, oldest first"


def test_filters_match_records_written_in_another_json_layout(reader):
    """A record re-serialised with spaces and escapes is reported by verify (the log must stay
    as written), and a filter must not miss it either: the viewer still shows it."""
    path = reader.log.files.log
    lines = path.read_bytes().splitlines(keepends=True)
    doc = json.loads(lines[297])  # seq 298: a read of s/7 by the CLI
    lines[297] = json.dumps(doc, separators=(", ", " : ")).replace("/", "\\/").encode() + b"\n"
    path.write_bytes(b"".join(lines))
    with pytest.raises(AuditTampered) as err:
        reader.log.verify()
    assert err.value.seq == 298
    for flt in (AuditFilter(op="read"), AuditFilter(actor="cli:4242"), AuditFilter(name="s/7")):
        assert _all_pages(reader, flt)[0] == 298


def test_filter_input_is_checked():
    with pytest.raises(InvalidInput):
        AuditFilter(actor="cli:me")
    with pytest.raises(InvalidInput):
        AuditFilter(since=datetime(2026, 1, 1))
    assert AuditFilter().empty and not AuditFilter(op="read").empty
    assert "s/1" not in AuditFilter(op="read", name="s/1").describe(), "a description never names the secret"


def test_export_form_has_the_name_in_the_clear_and_no_mac(reader):
    record = next(iter(reader.matching(AuditFilter(name="s/0"))))
    assert record.to_json() == {"seq": 1, "time": "2026-03-01T12:00:00.000+00:00", "op": "read", "outcome": "ok",
                                "name": "s/0", "detail": "event 0", "actor": CLI.to_json()}


def test_a_missing_log_reads_as_empty(tmp_path):
    reader = AuditReader(_log(tmp_path))
    assert reader.end() == 0 and reader.page(0) == ([], 0) and reader.newer(0) == ([], 0)
    assert list(reader.matching(AuditFilter())) == []


def test_a_100k_record_log_pages_by_reading_its_tail(tmp_path, monkeypatch):
    log = _log(tmp_path)
    actor = Actor("cli", 1, "/usr/bin/its-vault")
    log.append([AuditEvent("read", "ok", actor, "s/x" if i % 50 == 0 else None) for i in range(100_000)])
    reader = AuditReader(log)
    size = log.files.log.stat().st_size
    read = []
    real_pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, offset: read.append(n) or real_pread(fd, n, offset))
    started = time.perf_counter()
    lines, resume = reader.page(reader.end(), limit=256)
    second, _ = reader.page(resume, limit=256)
    elapsed = time.perf_counter() - started
    assert _seqs(reader, lines + second) == list(range(100_000, 99_488, -1))
    assert sum(read) <= 4 * reader.BLOCK and size > 80 * reader.BLOCK, "two pages read a few blocks, not the log"
    assert elapsed < 0.1
    started = time.perf_counter()
    matches, _ = reader.page(reader.end(), reader.matcher(AuditFilter(name="s/x")), limit=10**6)
    assert len(matches) == 2_000 and time.perf_counter() - started < 2.0
