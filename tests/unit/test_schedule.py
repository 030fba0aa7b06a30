"""The rotation schedule shared by the GUI panel, the tray and the CLI."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from its_desktop.core.rotation import RotationPolicy, RotationStatus
from its_desktop.core.schedule import (
    build_schedule,
    count_by_status,
    days_left,
    due_date,
    needing_attention,
    schedule_entry,
)
from its_desktop.core.secrets import Secret, SecretSummary, SecretType

NOW = datetime(2030, 3, 10, 12, 0, tzinfo=timezone.utc)


def secret(name: str, *, age: float = 0, every: int | None = None, expires_in: float | None = None,
           notify: int = 7) -> SecretSummary:
    changed = NOW - timedelta(days=age)
    return Secret(name=name, value="v", type=SecretType.PASSWORD, created=changed, updated=changed,
                  value_updated=changed, rotation=RotationPolicy(every, notify) if every else None,
                  expires_at=NOW + timedelta(days=expires_in) if expires_in is not None else None).summary()


def test_only_secrets_with_a_policy_or_an_expiry_are_scheduled_soonest_first():
    entries = build_schedule([
        secret("plain"),
        secret("later", every=90, age=0),           # due in 90 days
        secret("soon", every=30, age=25),           # due in 5 days
        secret("expiring", expires_in=2),           # expires in 2 days
        secret("late", every=30, age=40),           # 10 days late
    ], NOW)
    assert [e.name for e in entries] == ["late", "expiring", "soon", "later"]
    assert [e.status for e in entries] == [RotationStatus.OVERDUE, RotationStatus.DUE_SOON,
                                          RotationStatus.DUE_SOON, RotationStatus.OK]
    assert [e.days_left for e in entries] == [-10, 2, 5, 90]


def test_the_first_deadline_wins_and_an_expired_secret_is_expired():
    both = secret("both", every=90, expires_in=10)
    assert due_date(both) == NOW + timedelta(days=10)
    gone = schedule_entry(secret("gone", every=90, expires_in=-1), NOW)
    assert gone is not None and gone.status is RotationStatus.EXPIRED and gone.days_left == -1
    assert schedule_entry(secret("plain"), NOW) is None


def test_ties_are_broken_by_name_and_entries_hold_no_value():
    entries = build_schedule([secret("b", every=30), secret("a", every=30)], NOW)
    assert [e.name for e in entries] == ["a", "b"]
    assert not hasattr(entries[0], "value")


def test_days_left_rounds_down():
    assert days_left(NOW + timedelta(days=6, hours=23), NOW) == 6
    assert days_left(NOW - timedelta(hours=1), NOW) == -1
    assert days_left(NOW, NOW) == 0


def test_status_follows_the_clock():
    s = secret("k", every=30, notify=7)
    seen = [schedule_entry(s, NOW + timedelta(days=d)).status for d in (0, 23, 30)]
    assert seen == [RotationStatus.OK, RotationStatus.DUE_SOON, RotationStatus.OVERDUE]


def test_attention_and_counts():
    entries = build_schedule([secret("ok", every=90), secret("soon", every=30, age=25),
                              secret("late", every=30, age=40), secret("gone", expires_in=-1)], NOW)
    assert [e.name for e in needing_attention(entries)] == ["late", "gone", "soon"]
    assert count_by_status(entries) == {RotationStatus.OK: 1, RotationStatus.DUE_SOON: 1,
                                        RotationStatus.OVERDUE: 1, RotationStatus.EXPIRED: 1}
    assert count_by_status([]) == dict.fromkeys(RotationStatus, 0)
