"""Vault statistics for ``its-vault stats`` and the GUI's dashboard: what is in the vault, what
needs rotating, how often it was unlocked and read by the agent's clients, and when each remote
last synced.

Counts come from the listing summaries (``vault.summaries()``: no record is decoded) and the
rotation schedule (``core.schedule``). Activity comes from the audit log, walked newest first
through ``AuditReader.page`` only as far back as the window: a million-record log costs what
its last N days cost. Lines are parsed as JSON for their op, outcome, actor kind, time and
detail; no secret name is decrypted (``AuditReader.decode`` is never called). Nothing here
holds a secret value, so every result may be printed, kept by a model or written as JSON.

Days are the *local* calendar days of the machine (or of ``tz``): a trader's "Tuesday" starts
at their midnight, not at UTC's. The window is the last ``days`` local days, today included,
from local midnight ``days - 1`` days ago up to ``now``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Iterable, Iterator

from ..core.audit import AuditReader
from ..core.errors import InvalidInput
from ..core.rotation import RotationStatus
from ..core.schedule import build_schedule, count_by_status
from ..core.secrets import SecretSummary, SecretType
from ..core.vault.api import Vault
from ..sync.remotes import BASES, REMOTES

DEFAULT_DAYS = 30
MAX_DAYS = 3660
# Records are chained in the order they are appended, which is nearly, not exactly, the order
# of their times: a CLI's unlock record is written with its command's first change, the agent
# writes its clients' reads in batches, a failed unlock waits in the pending file. The walk
# therefore goes on this far past the window's start before it trusts that nothing older
# than the window can still be in it.
LATE_RECORDS = timedelta(days=1)
PAGE_LINES = 4096
SYNC_OP = "sync"  # the per-batch summary a sync writes: detail "REMOTE: n pushed, ..."


@dataclass(frozen=True)
class ScheduleCounts:
    """The rotation schedule at one moment: secrets by status, plus the two flags a person acts
    on (``rotate now`` requests, rotations started and not finished)."""

    scheduled: int
    ok: int
    due_soon: int
    overdue: int
    expired: int
    rotate_requested: int
    rotation_pending: int

    @property
    def needing_attention(self) -> int:
        return self.due_soon + self.overdue + self.expired


@dataclass(frozen=True)
class DayActivity:
    """One local day of the audit log. ``unlocks_failed`` are wrong passwords or keys (written
    to the pending file and chained at the next unlock); ``agent_reads_granted`` are values the
    agent sent to a client, ``agent_reads_denied`` requests that no grant or the user allowed
    (a read refused because the vault was locked, or of a missing secret, is neither)."""

    day: date
    unlocks_ok: int = 0
    unlocks_failed: int = 0
    agent_reads_granted: int = 0
    agent_reads_denied: int = 0

    @property
    def unlocks(self) -> int:
        return self.unlocks_ok + self.unlocks_failed

    @property
    def agent_reads(self) -> int:
        return self.agent_reads_granted + self.agent_reads_denied


@dataclass(frozen=True)
class RemoteSync:
    """A remote's name and type (never its URL, which may carry a user name, nor its
    credentials' secret) and the newest sync seen for it: None if it never synced anything."""

    name: str
    type: str
    last_sync: datetime | None
    tracked: int  # secrets with a sync base for this remote


@dataclass(frozen=True)
class VaultStats:
    now: datetime
    days: int
    since: datetime  # local midnight at the start of the window (inclusive)
    total: int
    by_type: dict[SecretType, int]  # every type, zero included, in SecretType order
    schedule: ScheduleCounts
    activity: list[DayActivity]  # one per local day, oldest first, ``days`` of them
    remotes: list[RemoteSync]  # by name
    records_scanned: int = field(default=0, compare=False)  # audit lines walked (for benchmarks)

    def totals(self) -> DayActivity:
        """The whole window in one row (its ``day`` is the window's first)."""
        return DayActivity(self.activity[0].day if self.activity else self.since.date(),
                           sum(d.unlocks_ok for d in self.activity), sum(d.unlocks_failed for d in self.activity),
                           sum(d.agent_reads_granted for d in self.activity),
                           sum(d.agent_reads_denied for d in self.activity))

    def to_json(self) -> dict[str, Any]:
        """What ``its-vault stats --json`` prints: counts, dates and remote names only."""
        s = self.schedule
        return {
            "now": self.now.isoformat(timespec="seconds"),
            "days": self.days,
            "since": self.since.isoformat(timespec="seconds"),
            "secrets": {"total": self.total, "by_type": {t.value: n for t, n in self.by_type.items()}},
            "schedule": {"scheduled": s.scheduled, "ok": s.ok, "due_soon": s.due_soon, "overdue": s.overdue,
                         "expired": s.expired, "rotate_requested": s.rotate_requested,
                         "rotation_pending": s.rotation_pending},
            "activity": [{"day": d.day.isoformat(), "unlocks_ok": d.unlocks_ok, "unlocks_failed": d.unlocks_failed,
                          "agent_reads_granted": d.agent_reads_granted, "agent_reads_denied": d.agent_reads_denied}
                         for d in self.activity],
            "remotes": [{"name": r.name, "type": r.type, "tracked": r.tracked,
                         "last_sync": r.last_sync.isoformat(timespec="seconds") if r.last_sync else None}
                        for r in self.remotes],
        }


# -- the parts ---------------------------------------------------------------------------------


def type_counts(summaries: Iterable[SecretSummary]) -> dict[SecretType, int]:
    """Secrets per type, every type present (an unknown stored type counts as generic)."""
    known = {t.value for t in SecretType}
    counts = Counter(s.type if s.type in known else SecretType.GENERIC.value for s in summaries)
    return {t: counts[t.value] for t in SecretType}


def schedule_counts(summaries: list[SecretSummary], now: datetime) -> ScheduleCounts:
    """The schedule's statuses (``core.schedule``, so the Rotation tab and ``its-vault schedule``
    agree), and the requested and half-done rotations among all secrets."""
    entries = build_schedule(summaries, now)
    by_status = count_by_status(entries)
    return ScheduleCounts(
        scheduled=len(entries), ok=by_status[RotationStatus.OK], due_soon=by_status[RotationStatus.DUE_SOON],
        overdue=by_status[RotationStatus.OVERDUE], expired=by_status[RotationStatus.EXPIRED],
        rotate_requested=sum(s.rotate_requested is not None for s in summaries),
        rotation_pending=sum(s.pending_since is not None for s in summaries))


def window_start(now: datetime, days: int, tz: tzinfo | None = None) -> datetime:
    """Local midnight ``days - 1`` days before ``now``'s local day (aware)."""
    first = _local(now, tz).date() - timedelta(days=days - 1)
    return _midnight(first, tz)


def _local(moment: datetime, tz: tzinfo | None) -> datetime:
    return moment.astimezone(tz)  # tz None: the machine's zone


def _midnight(day: date, tz: tzinfo | None) -> datetime:
    if tz is None:
        return datetime.combine(day, time()).astimezone()  # the zone's offset on that day (DST)
    return datetime.combine(day, time(), tzinfo=tz)


@dataclass
class Walk:
    """How far a walk of the log went: lines looked at (for benchmarks and tests)."""

    scanned: int = 0


_TIME = b'"time":"'


def _line_time(line: bytes) -> datetime | None:
    """The record's time, found without parsing the whole line (None: parse it to know)."""
    at = line.rfind(_TIME)
    if at < 0:
        return None
    start = at + len(_TIME)
    stop = line.find(b'"', start)
    try:
        moment = datetime.fromisoformat(line[start:stop].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    return moment if moment.tzinfo is not None else None  # a naive time: the parse skips it


def recent_records(reader: AuditReader, since: datetime, walk: Walk | None = None) -> Iterator[dict[str, Any]]:
    """The unlock, read and sync records from ``since`` on (and a little before: see
    ``LATE_RECORDS``), newest first, as parsed JSON with ``time`` a datetime: no name
    decrypted, and nothing older read once the walk is past ``since - LATE_RECORDS``. Other
    records are skipped unparsed; malformed lines are skipped (``its-vault audit verify``
    reports them)."""
    stop = since - LATE_RECORDS
    walk = walk if walk is not None else Walk()
    end = reader.end()
    while end > 0:
        lines, end = reader.page(end, limit=PAGE_LINES)
        for line in lines:
            walk.scanned += 1
            moment = _line_time(line) if b"\\" not in line else None
            if moment is not None:
                if moment < stop:
                    return
                if not _may_count(line):
                    continue
            try:
                doc = json.loads(line)
                if moment is None:
                    moment = datetime.fromisoformat(doc["time"])
            except (ValueError, KeyError, TypeError):
                continue
            if moment.tzinfo is None or not isinstance(doc, dict):
                continue
            if moment < stop:
                return
            doc["time"] = moment
            yield doc


def _may_count(line: bytes) -> bool:
    """False for a line (without JSON escapes) that cannot be an unlock, an agent's read or a
    sync: it is then never parsed (most of a log is reads by the CLI and the app)."""
    return b'"unlock"' in line or f'"{SYNC_OP}"'.encode() in line or (b'"read"' in line and b'"agent"' in line)


def _kind(doc: dict[str, Any]) -> str | None:
    actor = doc.get("actor")
    return actor.get("kind") if isinstance(actor, dict) else None


def activity(docs: Iterable[dict[str, Any]], since: datetime, until: datetime, days: int,
             tz: tzinfo | None = None) -> tuple[list[DayActivity], dict[str, datetime]]:
    """Unlocks and agent reads per local day in [since, until), and the newest ``sync`` record
    per remote in the same window."""
    first = _local(since, tz).date()
    rows = {first + timedelta(days=i): Counter() for i in range(days)}
    syncs: dict[str, datetime] = {}
    for doc in docs:
        moment: datetime = doc["time"]
        if not since <= moment < until:
            continue
        op, outcome = doc.get("op"), doc.get("outcome")
        if op == "unlock":
            key = "unlocks_ok" if outcome == "ok" else "unlocks_failed" if outcome == "failed" else None
        elif op == "read" and _kind(doc) == "agent":
            key = ("agent_reads_granted" if outcome == "ok" else
                   "agent_reads_denied" if outcome == "denied" else None)
        elif op == SYNC_OP and outcome == "ok" and isinstance(doc.get("detail"), str):
            remote = doc["detail"].partition(": ")[0]
            if remote and (remote not in syncs or moment > syncs[remote]):
                syncs[remote] = moment
            continue
        else:
            continue
        row = rows.get(_local(moment, tz).date())
        if key is not None and row is not None:
            row[key] += 1
    result = [DayActivity(day, **counts) for day, counts in rows.items()]
    return result, syncs


def remote_syncs(settings: dict[str, Any], recent: dict[str, datetime]) -> list[RemoteSync]:
    """Each remote's newest sync: the newest ``synced_at`` of its bases (kept in the settings
    for every secret a sync pushed, pulled or adopted), or a ``sync`` record in the window if
    newer (a sync that only deleted leaves no base behind)."""
    remotes = settings.get(REMOTES) or {}
    bases_of = settings.get(BASES) or {}
    result = []
    for name in sorted(remotes):
        raw = remotes[name] if isinstance(remotes[name], dict) else {}
        bases = bases_of.get(name) or {}
        times = [t for t in (_time(b.get("synced_at")) for b in bases.values() if isinstance(b, dict)) if t]
        if name in recent:
            times.append(recent[name])
        result.append(RemoteSync(name, str(raw.get("type") or "?"), max(times) if times else None, len(bases)))
    return result


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.astimezone()


# -- the whole -------------------------------------------------------------------------------


def check_days(days: int) -> int:
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"--days must be between 1 and {MAX_DAYS}, not {days}")
    return days


def vault_stats(vault: Vault, now: datetime, days: int = DEFAULT_DAYS, tz: tzinfo | None = None) -> VaultStats:
    """Everything the stats command and the dashboard show, at ``now`` (aware), for the last
    ``days`` local days (in ``tz``, or the machine's zone)."""
    check_days(days)
    summaries = vault.summaries()
    since = window_start(now, days, tz)
    walk = Walk()
    rows, syncs = activity(recent_records(vault.audit_reader(), since, walk), since,
                           now + timedelta(microseconds=1), days, tz)
    return VaultStats(now=now, days=days, since=since, total=len(summaries), by_type=type_counts(summaries),
                      schedule=schedule_counts(summaries, now), activity=rows,
                      remotes=remote_syncs(vault.settings(), syncs), records_scanned=walk.scanned)
