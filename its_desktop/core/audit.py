"""The append-only, tamper-evident audit log. Never holds a secret's value.

Three files sit beside the vault:

* ``<vault>.audit``: one JSON record per line. Each record's MAC covers the previous record's
  MAC, so an edited, reordered or deleted record breaks the chain. Secret names are encrypted
  deterministically (AES-SIV), so the log can be searched by name but not read without the key.
* ``<vault>.audit-head``: the latest record's sequence number and MAC, under its own MAC,
  rewritten with every append. A log truncated behind the head's back is detected. The vault
  body also stores this anchor at every save, which catches a head rolled back with the log.
* ``<vault>.audit-pending``: events that happen while no key is at hand (a failed unlock),
  unauthenticated; the next append folds them into the chain.
* ``<vault>.audit.rekey`` and ``<vault>.audit-head.rekey``: a re-key's re-sealed log and head,
  staged before the new vault file replaces the old one and renamed into place after it; what a
  killed re-key leaves is settled (``AuditLog.settle``) before the log is next read or appended to.

Appending is O(1): it reads the head and a bounded tail of the log, never the whole file.
Callers hold the vault's writer lock around ``append``, ``settle``, ``reseal`` and
``record_pending``, and call ``append`` and ``settle`` only with the key of the vault file on disk.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from .crypto import AuthenticationFailed, constant_time_equal, hkdf, mac, siv_decrypt, siv_encrypt
from .errors import AuditTampered, InvalidInput
from .vault.body import AuditAnchor
from .vault.storage import atomic_write, fsync_dir

TAIL_WINDOW = 64 * 1024
STAGED_SUFFIX = ".rekey"
ROLLED_FORWARD = "rolled forward"
DISCARDED = "discarded"


@dataclass(frozen=True)
class Actor:
    """Who did it: the front end (cli, gui, agent), its pid and its program."""

    kind: str
    pid: int
    exe: str

    @classmethod
    def current(cls, kind: str) -> Actor:
        program = sys.argv[0] if sys.argv and sys.argv[0] and os.path.exists(sys.argv[0]) else sys.executable
        return cls(kind, os.getpid(), os.path.realpath(program))

    def to_json(self) -> dict[str, Any]:
        return {"exe": self.exe, "kind": self.kind, "pid": self.pid}

    @classmethod
    def from_json(cls, raw: dict) -> Actor:
        return cls(str(raw["kind"]), int(raw["pid"]), str(raw["exe"]))


@dataclass(frozen=True)
class AuditEvent:
    op: str
    outcome: str
    actor: Actor
    name: str | None = None
    detail: str | None = None
    time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    event: AuditEvent

    def to_json(self) -> dict[str, Any]:
        """The record as an export shows it: the name in the clear, no MAC (the same fields as
        ``its-vault audit --json``)."""
        e = self.event
        return {"seq": self.seq, "time": e.time.isoformat(timespec="milliseconds"), "op": e.op,
                "outcome": e.outcome, "name": e.name, "detail": e.detail, "actor": e.actor.to_json()}


@dataclass(frozen=True)
class AuditFiles:
    log: Path
    head: Path
    pending: Path

    @classmethod
    def beside(cls, vault_path: Path) -> AuditFiles:
        return cls(*(vault_path.with_name(vault_path.name + suffix)
                     for suffix in (".audit", ".audit-head", ".audit-pending")))

    @property
    def staged_log(self) -> Path:
        """A re-key's re-sealed log, waiting for the new vault file to be in place."""
        return self.log.with_name(self.log.name + STAGED_SUFFIX)

    @property
    def staged_head(self) -> Path:
        return self.head.with_name(self.head.name + STAGED_SUFFIX)

    def has_staged(self) -> bool:
        return self.staged_head.exists() or self.staged_log.exists()


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _resealed_doc(doc: dict[str, Any], record: AuditRecord, target: AuditLog) -> dict[str, Any]:
    """A verified record without its MAC, its name token re-encrypted under ``target``'s key
    (every other field kept byte for byte)."""
    body = {k: v for k, v in doc.items() if k != "mac"}
    if record.event.name is not None:
        body["name"] = target._name_token(record.event.name)
    return body


def record_pending(files: AuditFiles, event: AuditEvent) -> None:
    """Note an event that has no key to chain it yet (a failed unlock)."""
    doc = {"actor": event.actor.to_json(), "detail": event.detail, "op": event.op,
           "outcome": event.outcome, "time": _iso(event.time)}
    fd = os.open(files.pending, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, _canonical(doc) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


class AuditLog:
    """The audit chain of one vault, keyed from its vault key."""

    def __init__(self, vault_path: Path, vault_key: bytes | bytearray, vault_id: str) -> None:
        self.files = AuditFiles.beside(vault_path)
        self._mac_key = bytearray(hkdf(bytes(vault_key), b"its-desktop/v1/audit/mac"))
        self._head_key = bytearray(hkdf(bytes(vault_key), b"its-desktop/v1/audit/head"))
        self._name_key = bytearray(hkdf(bytes(vault_key), b"its-desktop/v1/audit/name", length=64))
        self._genesis = mac(self._mac_key, b"genesis", vault_id.encode()).hex()

    def __repr__(self) -> str:
        return f"<AuditLog {self.files.log.name}>"

    def wipe(self) -> None:
        for key in (self._mac_key, self._head_key, self._name_key):
            key[:] = bytes(len(key))

    # -- writing -------------------------------------------------------------------------

    def append(self, events: list[AuditEvent]) -> AuditAnchor:
        """Chain ``events`` (after any pending ones) onto the log; returns the new head."""
        seq, prev = self._current_tip()
        pending = self._take_pending()
        lines = []
        for event in [*pending, *events]:
            seq += 1
            line, prev = self._sealed_line(self._record_doc(seq, event), prev)
            lines.append(line)
        if lines:
            fd = os.open(self.files.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, b"".join(lines))
                os.fsync(fd)
            finally:
                os.close(fd)
            self._write_head(AuditAnchor(seq, prev))
        if pending:
            self.files.pending.unlink(missing_ok=True)
        return AuditAnchor(seq, prev)

    def _sealed_line(self, doc: dict[str, Any], prev: str) -> tuple[bytes, str]:
        """A record (without its MAC) chained onto ``prev``: the line to write and its MAC."""
        record_mac = mac(self._mac_key, bytes.fromhex(prev), _canonical(doc)).hex()
        return _canonical({**doc, "mac": record_mac}) + b"\n", record_mac

    def head(self) -> AuditAnchor | None:
        return self._read_head(self.files.head)

    def _read_head(self, path: Path) -> AuditAnchor | None:
        try:
            raw = json.loads(path.read_bytes())
            anchor = AuditAnchor(int(raw["seq"]), str(raw["mac"]))
            tag = bytes.fromhex(raw["tag"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            raise AuditTampered(0, "the audit head is malformed") from None
        if not constant_time_equal(tag, self._head_tag(anchor)):
            raise AuditTampered(anchor.seq, "the audit head does not authenticate")
        return anchor

    def _head_tag(self, anchor: AuditAnchor) -> bytes:
        return mac(self._head_key, b"head", str(anchor.seq).encode(), anchor.mac.encode())

    def _write_head(self, anchor: AuditAnchor, path: Path | None = None, sync_folder: bool = False) -> None:
        doc = {"mac": anchor.mac, "seq": anchor.seq, "tag": self._head_tag(anchor).hex()}
        atomic_write(path or self.files.head, _canonical(doc), sync_folder=sync_folder)

    # -- re-keying -------------------------------------------------------------------------

    def reseal(self, target: AuditLog, events: list[AuditEvent], body_anchor: AuditAnchor | None) -> AuditAnchor:
        """Copy the whole chain, verified under this log's keys, into ``target``'s staging files
        under its keys (same seq, times, actors, ops, names and details; names re-encrypted),
        then chain ``events``; returns the staged head. The live files are not touched: a re-key
        commits by replacing the vault file, then ``target.commit_staged()`` puts these in place.
        The chain is verified as it is copied, in one pass: AuditTampered (and no staging files)
        if it does not verify, since re-sealing it would launder the tampering."""
        files = target.files
        target.discard_staged()
        seq, prev = 0, target._genesis
        try:
            with os.fdopen(os.open(files.staged_log, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
                for doc, record in self._chain(body_anchor):
                    line, prev = target._sealed_line(_resealed_doc(doc, record, target), prev)
                    fh.write(line)
                    seq = record.seq
                for event in events:
                    seq += 1
                    line, prev = target._sealed_line(target._record_doc(seq, event), prev)
                    fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            # The head last, and durable before the vault file is replaced: a staged head means
            # a complete staged log (``settle`` relies on it).
            target._write_head(AuditAnchor(seq, prev), files.staged_head, sync_folder=True)
        except BaseException:
            target.discard_staged()
            raise
        return AuditAnchor(seq, prev)

    def settle(self) -> str | None:
        """Finish or drop what a killed re-key left beside the log; None if nothing was there.

        A staged head that authenticates under this log's key (the key of the vault file on
        disk: callers make sure) means the new vault file was committed: roll forward. Anything
        else is an attempt that never committed (its key is gone): delete it."""
        if not self.files.has_staged():
            return None
        try:
            committed = self._read_head(self.files.staged_head) is not None
        except AuditTampered:
            committed = False
        if committed:
            self.commit_staged()
            return ROLLED_FORWARD
        self.discard_staged()
        return DISCARDED

    def commit_staged(self) -> None:
        """Rename the staged log, then the staged head, over the live ones. In that order, a
        staged head is there until the end, so an interrupted roll-forward is finished by the
        next ``settle`` (a staged head without its log: the log is already in place)."""
        files = self.files
        try:
            os.replace(files.staged_log, files.log)
        except FileNotFoundError:
            pass
        os.replace(files.staged_head, files.head)
        fsync_dir(files.log.parent)

    def discard_staged(self) -> None:
        for path in (self.files.staged_head, self.files.staged_log):
            path.unlink(missing_ok=True)

    def _current_tip(self) -> tuple[int, str]:
        """The head, rolled forward over records a killed writer appended but did not anchor,
        after cutting off a torn (half-written) last line."""
        try:
            head = self.head()
        except AuditTampered:
            head = None
        seq, prev = (head.seq, head.mac) if head else (0, self._genesis)
        try:
            fd = os.open(self.files.log, os.O_RDWR)
        except FileNotFoundError:
            return seq, prev
        try:
            size = os.fstat(fd).st_size
            start = max(0, size - TAIL_WINDOW)
            tail = os.pread(fd, size - start, start)
            end = tail.rfind(b"\n") + 1
            if start + end < size and (end > 0 or start == 0):
                os.ftruncate(fd, start + end)
                os.fsync(fd)
            # Walk back from the end to the head's record (usually the very last line), then
            # forward over any records appended after it whose MACs chain.
            newer: list[dict[str, Any]] = []
            for line in reversed(tail[:end].splitlines()):
                doc = self._parse_line(line)
                if doc is None:
                    continue
                if head is None:
                    # No trustworthy head: keep numbering after the log's last record, and let
                    # verify() report the missing or forged head.
                    return doc["seq"], doc["mac"]
                if doc["seq"] <= seq:
                    break
                newer.append(doc)
            for doc in reversed(newer):
                if doc["seq"] == seq + 1 and self._mac_ok(doc, prev):
                    seq, prev = doc["seq"], doc["mac"]
        finally:
            os.close(fd)
        return seq, prev

    def _take_pending(self) -> list[AuditEvent]:
        try:
            raw = self.files.pending.read_bytes()
        except FileNotFoundError:
            return []
        events = []
        for line in raw.splitlines():
            try:
                doc = json.loads(line)
                events.append(AuditEvent(str(doc["op"]), str(doc["outcome"]), Actor.from_json(doc["actor"]),
                                         detail=doc.get("detail"),
                                         time=datetime.fromisoformat(doc["time"])))
            except (ValueError, KeyError, TypeError):
                events.append(AuditEvent("unknown", "malformed-pending-record", Actor("unknown", 0, "")))
        return events

    def _name_token(self, name: str) -> str:
        """A name as the log stores it (AES-SIV is deterministic, so equal names match)."""
        return base64.b64encode(siv_encrypt(self._name_key, name.encode("utf-8"))).decode()

    def _name_of(self, token: str, seq: int) -> str:
        try:
            return siv_decrypt(self._name_key, base64.b64decode(token)).decode("utf-8")
        except (AuthenticationFailed, ValueError):
            raise AuditTampered(seq, "a secret name does not decrypt") from None

    def _record_doc(self, seq: int, event: AuditEvent) -> dict[str, Any]:
        name = None if event.name is None else self._name_token(event.name)
        return {"actor": event.actor.to_json(), "detail": event.detail, "name": name, "op": event.op,
                "outcome": event.outcome, "seq": seq, "time": _iso(event.time)}

    # -- reading -------------------------------------------------------------------------

    @staticmethod
    def _parse_line(line: bytes) -> dict[str, Any] | None:
        try:
            doc = json.loads(line)
        except ValueError:
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("seq"), int) or not isinstance(doc.get("mac"), str):
            return None
        return doc

    def _mac_ok(self, doc: dict[str, Any], prev: str) -> bool:
        body = {k: v for k, v in doc.items() if k != "mac"}
        try:
            expected = mac(self._mac_key, bytes.fromhex(prev), _canonical(body))
            return constant_time_equal(expected, bytes.fromhex(doc["mac"]))
        except (ValueError, TypeError):
            return False

    def _decode(self, doc: dict[str, Any]) -> AuditRecord:
        name = self._name_of(doc["name"], doc["seq"]) if doc.get("name") else None
        event = AuditEvent(str(doc["op"]), str(doc["outcome"]), Actor.from_json(doc["actor"]), name,
                           doc.get("detail"), datetime.fromisoformat(doc["time"]))
        return AuditRecord(int(doc["seq"]), event)

    def _lines(self) -> Iterator[tuple[bytes, bool]]:
        """Each line with whether it ended in a newline (a last line without one is torn)."""
        try:
            fh = open(self.files.log, "rb")
        except FileNotFoundError:
            return
        with fh:
            for line in fh:
                complete = line.endswith(b"\n")
                yield line.rstrip(b"\n"), complete

    def verify(self, body_anchor: AuditAnchor | None = None) -> int:
        """Walk the whole chain; returns the number of records or raises AuditTampered at the
        first bad one."""
        seq = 0
        for doc, _ in self._chain(body_anchor):
            seq = doc["seq"]
        return seq

    def _chain(self, body_anchor: AuditAnchor | None) -> Iterator[tuple[dict[str, Any], AuditRecord]]:
        """Every record of the chain, raw and decoded, each yielded once it verified;
        AuditTampered at the first bad one, or at the end if records are missing (so a
        consumer has seen the whole log only if it all verifies)."""
        head = self.head()
        seq, prev = 0, self._genesis
        anchor_seen = body_anchor is None or body_anchor.seq == 0
        for line, complete in self._lines():
            doc = self._parse_line(line)
            if not complete and (head is None or seq >= head.seq):
                break  # a write interrupted before its head was updated: not tampering
            if doc is None:
                raise AuditTampered(seq + 1, "the record is not valid JSON")
            if doc["seq"] != seq + 1:
                raise AuditTampered(seq + 1, f"expected record {seq + 1}, found {doc['seq']} (deleted or reordered)")
            if _canonical(doc) != line:
                raise AuditTampered(seq + 1, "the record is not in the form it was written in (edited)")
            if not self._mac_ok(doc, prev):
                raise AuditTampered(seq + 1, "the record's MAC does not verify (edited or reordered)")
            record = self._decode(doc)
            seq, prev = doc["seq"], doc["mac"]
            if head is not None and seq == head.seq and not constant_time_equal(prev.encode(), head.mac.encode()):
                raise AuditTampered(seq, "the record does not match the audit head")
            if body_anchor is not None and seq == body_anchor.seq:
                if not constant_time_equal(prev.encode(), body_anchor.mac.encode()):
                    raise AuditTampered(seq, "the record does not match the anchor in the vault")
                anchor_seen = True
            yield doc, record
        if head is None and seq > 0:
            raise AuditTampered(seq, "the audit head is missing")
        if head is not None and seq < head.seq:
            raise AuditTampered(seq + 1, f"records {seq + 1} to {head.seq} are missing (log truncated)")
        if not anchor_seen:
            raise AuditTampered(seq + 1, "records anchored in the vault are missing (log truncated)")

    def records(self) -> Iterator[AuditRecord]:
        """Every complete record, decrypted, oldest first (no chain check: use verify)."""
        for line, complete in self._lines():
            doc = self._parse_line(line)
            if doc is None:
                if complete:
                    raise AuditTampered(0, "a record is not valid JSON")
                break
            try:
                yield self._decode(doc)
            except (KeyError, TypeError, ValueError):
                raise AuditTampered(doc["seq"], "a record is malformed") from None

    def last_access(self) -> dict[str, datetime]:
        """When each secret was last read, from the log (so a read never rewrites the vault)."""
        latest: dict[str, str] = {}
        for line, complete in self._lines():
            doc = self._parse_line(line)
            if doc and complete and doc.get("op") == "read" and doc.get("outcome") == "ok" and doc.get("name"):
                latest[doc["name"]] = doc["time"]
        result = {}
        for token, when in latest.items():
            try:
                name = siv_decrypt(self._name_key, base64.b64decode(token)).decode("utf-8")
            except (AuthenticationFailed, ValueError):
                continue
            result[name] = datetime.fromisoformat(when)
        return result


# -- paged reading, for viewers of long logs ------------------------------------------------

LineMatch = Callable[[bytes], bool]


@dataclass(frozen=True)
class AuditFilter:
    """Which records a viewer wants; a field left empty matches every record.

    ``actor`` is a front end's kind (``"cli"``) or kind and pid (``"cli:4242"``); ``name`` is a
    secret's exact name (names are stored encrypted deterministically, so an exact name can be
    looked for without decrypting the log); ``since`` is inclusive, ``until`` exclusive.
    """

    op: str | None = None
    actor: str | None = None
    name: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.actor:
            kind, colon, pid = self.actor.partition(":")
            if not kind or (colon and not pid.isdigit()):
                raise InvalidInput("an actor is a kind or kind:pid, e.g. cli or cli:4242")
        for moment in (self.since, self.until):
            if moment is not None and moment.tzinfo is None:
                raise InvalidInput("a date range needs time zone aware times")

    @property
    def empty(self) -> bool:
        return not (self.op or self.actor or self.name or self.since or self.until)

    def describe(self) -> str:
        """The filter in words, without the secret's name (audit details are stored in the clear)."""
        parts = [f"op={self.op}" if self.op else "", f"actor={self.actor}" if self.actor else "",
                 "one secret" if self.name else "",
                 f"since {_iso(self.since)}" if self.since else "", f"until {_iso(self.until)}" if self.until else ""]
        return ", ".join(p for p in parts if p) or "all records"


class AuditReader:
    """The log read newest first, by byte offset, so that a viewer opens a log of a million
    records as fast as one of ten: it reads blocks backwards from an offset and parses nothing
    it does not show or filter. Offsets always sit at the start of a line; a torn last line (a
    writer killed mid-append) is left out. Names are decrypted only by ``decode``, one record
    at a time. No chain check here: ``AuditLog.verify`` does that."""

    BLOCK = 64 * 1024

    def __init__(self, log: AuditLog) -> None:
        self.log = log

    def __repr__(self) -> str:
        return f"<AuditReader {self.log.files.log.name}>"

    def _open(self) -> int | None:
        try:
            return os.open(self.log.files.log, os.O_RDONLY)
        except FileNotFoundError:
            return None

    def end(self) -> int:
        """The offset just past the last complete line (0 for a missing or empty log)."""
        fd = self._open()
        if fd is None:
            return 0
        try:
            size, block = os.fstat(fd).st_size, self.BLOCK
            while size > 0:
                start = max(0, size - block)
                cut = os.pread(fd, size - start, start).rfind(b"\n")
                if cut >= 0 or start == 0:
                    return start + cut + 1
                block *= 2
            return 0
        finally:
            os.close(fd)

    def _lines_back(self, fd: int, end: int) -> Iterator[tuple[int, bytes]]:
        """(offset, line) for each complete line before ``end``, newest first."""
        block = self.BLOCK
        while end > 0:
            start = max(0, end - block)
            chunk = os.pread(fd, end - start, start)
            if start > 0:
                cut = chunk.find(b"\n", 0, len(chunk) - 1)  # the end of a line before the last
                if cut < 0:  # one line longer than a block: read a bigger one
                    block *= 2
                    continue
                chunk, start = chunk[cut + 1:], start + cut + 1
            position = end
            for line in reversed(chunk.split(b"\n")[:-1]):
                position -= len(line) + 1
                yield position, line
            end = start

    def page(self, end: int, match: LineMatch | None = None, limit: int = 256,
             budget: int | None = None) -> tuple[list[bytes], int]:
        """Up to ``limit`` raw lines before offset ``end`` that ``match`` accepts, newest first,
        and the offset to continue from (0 once the start of the log is reached). With a
        ``budget``, stops after reading about that many bytes, so a filter that matches little
        can be scanned in short steps (and dropped between them)."""
        fd = self._open()
        if fd is None:
            return [], 0
        lines: list[bytes] = []
        resume = end
        try:
            for offset, line in self._lines_back(fd, end):
                resume = offset
                if match is None or match(line):
                    lines.append(line)
                    if len(lines) >= limit:
                        break
                if budget is not None and end - offset >= budget:
                    break
        finally:
            os.close(fd)
        return lines, resume

    def newer(self, start: int) -> tuple[list[bytes], int]:
        """The complete lines appended after offset ``start``, oldest first, and the new end."""
        fd = self._open()
        if fd is None:
            return [], start
        try:
            data = os.pread(fd, max(0, os.fstat(fd).st_size - start), start)
        finally:
            os.close(fd)
        cut = data.rfind(b"\n") + 1
        return data[:cut].split(b"\n")[:-1], start + cut

    def line_before(self, end: int) -> bytes | None:
        """The complete line that ends at offset ``end`` (to tell an append from a rewrite)."""
        lines, _ = self.page(end, limit=1)
        return lines[0] if lines else None

    def decode(self, line: bytes) -> AuditRecord:
        """One raw line as a record, its name decrypted; AuditTampered if it is malformed."""
        doc = AuditLog._parse_line(line)
        if doc is None:
            raise AuditTampered(0, "a record is not valid JSON")
        try:
            return self.log._decode(doc)
        except (KeyError, TypeError, ValueError):
            raise AuditTampered(doc["seq"], "a record is malformed") from None

    def name_token(self, name: str) -> str:
        """A name as the log stores it (AES-SIV is deterministic, so equal names match)."""
        return self.log._name_token(name)

    def matcher(self, flt: AuditFilter) -> LineMatch | None:
        """A test of raw lines for ``flt`` (None when it matches everything).

        A line with no backslash has no JSON escapes, so every value in it appears literally:
        a line lacking one of the wanted values is rejected without parsing it, whatever its
        spacing or key order. Lines that pass, and lines with escapes, are parsed and checked
        field by field."""
        if flt.empty:
            return None
        kind, _, pid = (flt.actor or "").partition(":")
        token = self.name_token(flt.name) if flt.name else None
        wanted = [f'"{value}"'.encode("utf-8") for value in (flt.op, kind, token) if value]

        def match(line: bytes) -> bool:
            if b"\\" not in line and not all(needle in line for needle in wanted):
                return False
            doc = AuditLog._parse_line(line)
            if doc is None:
                return False
            try:
                actor = doc["actor"]
                if (flt.op and doc["op"] != flt.op) or (token and doc["name"] != token):
                    return False
                if kind and (actor["kind"] != kind or (pid and int(actor["pid"]) != int(pid))):
                    return False
                if flt.since or flt.until:
                    moment = datetime.fromisoformat(doc["time"])
                    if (flt.since and moment < flt.since) or (flt.until and moment >= flt.until):
                        return False
            except (KeyError, TypeError, ValueError):
                return False
            return True

        return match

    def matching(self, flt: AuditFilter, end: int | None = None) -> Iterator[AuditRecord]:
        """Every record before offset ``end`` that ``flt`` accepts, decrypted, oldest first
        (for exports); AuditTampered at a malformed one."""
        match = self.matcher(flt)
        stop = self.end() if end is None else end
        try:
            fh = open(self.log.files.log, "rb")
        except FileNotFoundError:
            return
        with fh:
            position = 0
            for line in fh:
                position += len(line)
                if position > stop:
                    break
                line = line.rstrip(b"\n")
                if match is None or match(line):
                    yield self.decode(line)
