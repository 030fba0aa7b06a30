"""Rotation policies and due dates. Pure functions; the clock is always passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum


class RotationStatus(str, Enum):
    OK = "ok"
    DUE_SOON = "due-soon"
    OVERDUE = "overdue"
    EXPIRED = "expired"


@dataclass(frozen=True)
class RotationPolicy:
    """Rotate every ``every_days`` days; warn ``notify_days`` before the due date."""

    every_days: int
    notify_days: int = 7


def rotation_due(policy: RotationPolicy | None, last_changed: datetime) -> datetime | None:
    """The policy's next due date, counted from the last rotation (or creation)."""
    if policy is None:
        return None
    return last_changed + timedelta(days=policy.every_days)


def rotation_status(due: datetime | None, expires_at: datetime | None, notify_days: int,
                    now: datetime) -> RotationStatus:
    if expires_at is not None and now >= expires_at:
        return RotationStatus.EXPIRED
    deadlines = [d for d in (due, expires_at) if d is not None]
    if not deadlines:
        return RotationStatus.OK
    first = min(deadlines)
    if now >= first:
        return RotationStatus.OVERDUE
    if now >= first - timedelta(days=notify_days):
        return RotationStatus.DUE_SOON
    return RotationStatus.OK
