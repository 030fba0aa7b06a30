"""The rotation schedule: which secrets must be rotated (or replaced before they expire), when,
and how urgently.

Pure, with the clock passed in, so the GUI panel, the tray's notifications and
``its-vault schedule`` give the same answer for the same moment. It works on the vault's
listing summaries (``vault.summaries()``, or ``secret.summary()``), so it decodes no record.
Entries carry names and metadata only, never a value, so they may be kept by models and
printed by the CLI.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from .rotation import RotationStatus
from .secrets import SecretSummary, SecretType

ONE_DAY = timedelta(days=1)
# What a person should hear about, from the least to the most urgent.
ATTENTION = (RotationStatus.DUE_SOON, RotationStatus.OVERDUE, RotationStatus.EXPIRED)


@dataclass(frozen=True)
class ScheduleEntry:
    """One scheduled secret as seen at one moment (``status`` and ``days_left`` depend on it)."""

    name: str
    type: SecretType
    due: datetime  # the first deadline: the policy's due date or the expiry, whichever is first
    status: RotationStatus
    days_left: int  # whole days from the moment to ``due``; negative once it has passed
    rotation_due: datetime | None
    expires_at: datetime | None
    last_rotated: datetime | None
    rotation_count: int

    @property
    def needs_attention(self) -> bool:
        return self.status in ATTENTION


def due_date(secret: SecretSummary) -> datetime | None:
    """The first deadline of a secret, or None when it has neither a policy nor an expiry
    (such a secret is not on the schedule at all)."""
    deadlines = [d for d in (secret.due(), secret.expires()) if d is not None]
    return min(deadlines) if deadlines else None


def days_left(due: datetime, now: datetime) -> int:
    """Whole days left, rounded down: due in 6 days 23 hours is 6, an hour late is -1."""
    return math.floor((due - now) / ONE_DAY)


def schedule_entry(secret: SecretSummary, now: datetime) -> ScheduleEntry | None:
    """The secret's place on the schedule at ``now``, or None if it is not scheduled."""
    if secret.rotation_due is None and secret.expires_at is None:
        return None
    due = due_date(secret)
    assert due is not None
    last = secret.last_rotated
    return ScheduleEntry(
        name=secret.name, type=SecretType(secret.type), due=due, status=secret.status(now),
        days_left=days_left(due, now), rotation_due=secret.due(), expires_at=secret.expires(),
        last_rotated=datetime.fromisoformat(last) if last else None, rotation_count=secret.rotation_count,
    )


def build_schedule(secrets: Iterable[SecretSummary], now: datetime) -> list[ScheduleEntry]:
    """Every secret with a rotation policy or an expiry, the soonest deadline first (ties by
    name, so the order is stable between calls)."""
    entries = [e for e in (schedule_entry(s, now) for s in secrets) if e is not None]
    return sorted(entries, key=sort_key)


def sort_key(entry: ScheduleEntry) -> tuple[datetime, str]:
    """The schedule's order, for callers that keep a sorted list up to date."""
    return entry.due, entry.name


def needing_attention(entries: Iterable[ScheduleEntry]) -> list[ScheduleEntry]:
    """The entries due soon, overdue or expired, in the order given (soonest first)."""
    return [e for e in entries if e.needs_attention]


def count_by_status(entries: Iterable[ScheduleEntry]) -> dict[RotationStatus, int]:
    """How many entries have each status (every status present, zero included)."""
    counts = Counter(e.status for e in entries)
    return {status: counts[status] for status in RotationStatus}
