"""Vault statistics: counts by type and schedule status from the summaries, unlocks and agent
reads per local day from a real audit log with records at chosen times, the window's edges,
the last sync per remote, and a long log walked only as far back as the window."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest

from its_desktop.core.audit import Actor, AuditEvent
from its_desktop.core.errors import InvalidInput, WrongCredentials
from its_desktop.core.rotation import RotationPolicy
from its_desktop.core.secrets import SecretType
from its_desktop.core.vault.api import Vault
from its_desktop.services import stats as statslib
from its_desktop.services.stats import LATE_RECORDS, vault_stats, window_start
from its_desktop.sync.remotes import BASES, REMOTES, Remote
from tests.conftest import FAST_KDF, PASSWORD

NOW = datetime(2030, 3, 10, 15, 0, tzinfo=timezone.utc)
NEW_YORK = timezone(timedelta(hours=-5), "EST")  # 10:00 local at NOW
CLI = Actor("cli", 4242, "/usr/bin/its-vault")
BOT = Actor("agent", 777, "/opt/bots/alpha")  # the agent's records name the client as an agent actor


def event(op: str, outcome: str, actor: Actor, at: datetime, name: str | None = None,
          detail: str | None = None) -> AuditEvent:
    return AuditEvent(op, outcome, actor, name, detail, at)


def test_counts_by_type_and_schedule_status(vault):
    secrets = [  # name, type, rotate every, expires in (days from NOW), age (days)
        ("brokers/ibkr/api_key", "api_key", 90, None, 85),      # due soon (in 5 days)
        ("brokers/alpaca/api_key", "api_key", 90, None, 10),    # ok
        ("exchanges/kraken/api_key", "api_key", None, -1, 30),  # expired
        ("db/main/password", "password", 30, None, 45),         # overdue
        ("ssh/gateway", "ssh_key", None, None, 1),              # half-done below: due at once
        ("notes/runbook", "note", None, None, 1),               # not scheduled
        ("mfa/ibkr", "totp", None, 200, 1),                      # ok (expires later)
    ]
    for name, kind, every, expires, age in secrets:
        vault.clock = lambda age=age: NOW - timedelta(days=age)
        vault.set(name, f"value of {name}", type=kind, rotation=RotationPolicy(every) if every else None,
                  expires_at=NOW + timedelta(days=expires) if expires is not None else None)
    vault.clock = lambda: NOW
    vault.request_rotation(["brokers/alpaca/api_key"])  # "rotate now": overdue until rotated
    vault.begin_rotation("ssh/gateway", "the next value", "manual")

    result = vault_stats(vault, NOW, 7, NEW_YORK)

    assert result.total == 7
    assert result.by_type == {SecretType.API_KEY: 3, SecretType.PASSWORD: 1, SecretType.DATABASE: 0,
                              SecretType.CERTIFICATE: 0, SecretType.SSH_KEY: 1, SecretType.TOTP: 1,
                              SecretType.NOTE: 1, SecretType.GENERIC: 0}
    s = result.schedule
    assert (s.scheduled, s.ok, s.due_soon, s.overdue, s.expired) == (6, 1, 1, 3, 1)
    assert (s.rotate_requested, s.rotation_pending, s.needing_attention) == (1, 1, 5)
    text = json.dumps(result.to_json())
    assert "value of" not in text and "the next value" not in text and "ibkr" not in text


def test_unlocks_and_agent_reads_per_local_day(vault):
    since = window_start(NOW, 3, NEW_YORK)
    assert since == datetime(2030, 3, 8, 0, 0, tzinfo=NEW_YORK)  # 05:00 UTC
    vault.record_events([
        event("unlock", "ok", CLI, since - timedelta(seconds=1)),             # just before the window
        event("unlock", "ok", CLI, since),                                     # its first instant: Mar 8
        event("unlock", "ok", CLI, datetime(2030, 3, 10, 4, 0, tzinfo=timezone.utc)),  # Mar 9, 23:00 local
        # written out of order (e.g. a queued record): older than the window, then newer ones
        event("unlock", "ok", CLI, since - timedelta(hours=2)),
        event("unlock", "failed", CLI, datetime(2030, 3, 10, 14, 0, tzinfo=timezone.utc), detail="failed attempt 1"),
        event("read", "ok", BOT, NOW - timedelta(hours=1), "brokers/ibkr/api_key", "socket, grant g1"),
        event("read", "ok", BOT, NOW - timedelta(hours=1), "brokers/ibkr/api_key", "socket, grant g1"),
        event("read", "denied", BOT, NOW - timedelta(hours=2), "db/main/password", "via agent: no grant"),
        event("read", "locked", BOT, NOW - timedelta(hours=2), "db/main/password", "via agent"),
        event("read", "not-found", BOT, NOW - timedelta(hours=2), "db/nope", "socket, grant g1"),
        event("read", "ok", CLI, NOW - timedelta(hours=3), "brokers/ibkr/api_key"),  # not through the agent
        event("list", "ok", BOT, NOW - timedelta(hours=3), None, "socket: 3 names"),  # not a read
        event("unlock", "ok", CLI, NOW + timedelta(minutes=5)),  # after "now": not yet
    ])

    result = vault_stats(vault, NOW, 3, NEW_YORK)

    by_day = {d.day: d for d in result.activity}
    assert list(by_day) == [date(2030, 3, 8), date(2030, 3, 9), date(2030, 3, 10)]
    assert (by_day[date(2030, 3, 8)].unlocks_ok, by_day[date(2030, 3, 9)].unlocks_ok) == (1, 1)
    today = by_day[date(2030, 3, 10)]
    assert (today.unlocks_ok, today.unlocks_failed) == (0, 1)
    assert (today.agent_reads_granted, today.agent_reads_denied) == (2, 1)
    total = result.totals()
    assert (total.unlocks, total.agent_reads) == (3, 3)
    # In UTC the 23:00 unlock falls on Mar 10: days are the zone's.
    utc = {d.day: d for d in vault_stats(vault, NOW, 3, timezone.utc).activity}
    assert utc[date(2030, 3, 10)].unlocks_ok == 1 and utc[date(2030, 3, 9)].unlocks_ok == 0


def test_a_failed_unlock_is_counted_from_the_pending_record(vault_path, vault):
    vault.lock()
    with pytest.raises(WrongCredentials):
        Vault.open(vault_path, "not the password")
    with Vault.open(vault_path, PASSWORD) as opened:  # folds the pending record into the chain
        now = opened.clock()
        result = vault_stats(opened, now, 1)
    today = result.activity[-1]
    assert today.day == now.astimezone().date()
    assert (today.unlocks_ok, today.unlocks_failed) == (1, 1)


def test_the_walk_stops_a_day_past_the_window(vault):
    hourly = [event("read", "ok", BOT, NOW - timedelta(hours=h)) for h in range(24 * 10, 0, -1)]
    vault.record_events(hourly)
    seen: list[datetime] = []
    for doc in statslib.recent_records(vault.audit_reader(), NOW - timedelta(days=2)):
        seen.append(doc["time"])
    assert min(seen) >= NOW - timedelta(days=2) - LATE_RECORDS - timedelta(hours=1)
    assert len(seen) == 24 * 3


def test_last_sync_per_remote_and_no_credential(vault):
    desk = Remote("desk", "openbao", "brokers/", "its/brokers/", {"url": "https://ops:hunter2@bao:8200",
                                                                   "mount": "secret"}, "token", "remotes/bao-token")
    aws = Remote("aws", "aws", "exchanges/", "its/ex/", {"region": "eu-west-1"}, "aws-chain", None)
    idle = Remote("idle", "openbao", "db/", "", {"url": "https://bao:8200", "mount": "kv"}, "token", "remotes/t2")
    t1, t2 = NOW - timedelta(days=3), NOW - timedelta(days=1, hours=2)

    def edit(settings: dict) -> None:
        settings[REMOTES] = {r.name: r.to_json() for r in (desk, aws, idle)}
        settings[BASES] = {"desk": {"brokers/a": {"version": 3, "hash": "h1", "synced_at": t1.isoformat()},
                                    "brokers/b": {"version": 1, "hash": "h2", "synced_at": t2.isoformat()}},
                           "aws": {"exchanges/x": {"version": "v1", "hash": "h3", "synced_at": t1.isoformat()}}}

    vault.change_settings(edit)
    # A sync that only deleted leaves no base: its summary record says when it ran.
    vault.record_events([event("sync", "ok", CLI, NOW - timedelta(hours=5), None,
                               "aws: 0 pushed, 0 pulled, 1 deleted")])

    result = vault_stats(vault, NOW, 7, timezone.utc)

    assert [(r.name, r.type, r.last_sync, r.tracked) for r in result.remotes] == [
        ("aws", "aws", NOW - timedelta(hours=5), 1), ("desk", "openbao", t2, 2), ("idle", "openbao", None, 0)]
    text = json.dumps(result.to_json())
    assert "hunter2" not in text and "remotes/bao-token" not in text and "bao:8200" not in text


def test_days_out_of_range_is_a_one_line_error(vault):
    with pytest.raises(InvalidInput, match="--days must be between 1 and"):
        vault_stats(vault, NOW, 0)


def test_a_200k_record_log_is_walked_only_over_the_window(tmp_path):
    """One record a minute for 200,000 minutes (139 days) ending at NOW. Measured on a 2-core
    machine: the 7-day answer in about 0.05 s, the 30-day one (43,200 records) in about 0.3 s,
    the build about 3.5 s."""
    count, step = 200_000, timedelta(minutes=1)
    kinds = [("unlock", "ok", CLI), ("read", "ok", BOT), ("read", "ok", CLI), ("read", "denied", BOT),
             ("unlock", "failed", CLI), ("update", "ok", CLI)]
    events = [event(*kinds[i % len(kinds)], NOW - step * (count - i)) for i in range(count)]
    with Vault.create(tmp_path / "big.its", PASSWORD, kdf=FAST_KDF, clock=lambda: NOW - step * (count + 10)) as big:
        for start in range(0, count, 25_000):
            big.record_events(events[start:start + 25_000])
        for days, bound in ((7, 1.5), (30, 6.0)):
            started = time.perf_counter()
            result = vault_stats(big, NOW, days, timezone.utc)
            elapsed = time.perf_counter() - started
            since = window_start(NOW, days, timezone.utc)
            expected: Counter = Counter()
            for e in events:
                if since <= e.time <= NOW:
                    expected[(e.op, e.outcome, e.actor.kind)] += 1
            total = result.totals()
            assert total.unlocks_ok == expected[("unlock", "ok", "cli")]
            assert total.unlocks_failed == expected[("unlock", "failed", "cli")]
            assert total.agent_reads_granted == expected[("read", "ok", "agent")]
            assert total.agent_reads_denied == expected[("read", "denied", "agent")]
            in_window = sum(expected.values())
            late = LATE_RECORDS // step
            assert result.records_scanned <= in_window + late + 2, "the walk went past the window"
            assert elapsed < bound, f"{days} days of a 200k-record log took {elapsed:.2f} s"


def test_malformed_and_escaped_lines_are_skipped_or_parsed(vault):
    vault.record_events([event("read", "ok", BOT, NOW - timedelta(hours=1), "a/b", 'detail with "quotes"')])
    with open(vault.audit_reader().log.files.log, "ab") as fh:
        fh.write(b'not json\n{"op":"unlock","outcome":"ok","time":"2030-03-10T12:00:00","actor":{"kind":"cli"}}\n')
    result = vault_stats(vault, NOW, 1, timezone.utc)
    assert (result.activity[-1].agent_reads_granted, result.activity[-1].unlocks_ok) == (1, 0)
