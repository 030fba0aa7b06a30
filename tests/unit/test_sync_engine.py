"""The sync engine (pure), the payload format, and the syncer against an in-memory store.

The engine is checked on every combination of local / base / remote (absent, a tombstone
older or newer than the other side, unchanged, changed, changed to the same content), against
a table written out in full, and by simulation: applying any decision, or any settlement of
a conflict, leaves nothing more to do. The syncer is driven against ``FakeStore``, which
checks versions as KV v2 does and can fail, race or stall on cue.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from its_desktop.core.errors import BackendError
from its_desktop.core.vault.api import Vault
from its_desktop.sync import engine
from its_desktop.sync.backends import KINDS, CasFailed, Listed, kind
from its_desktop.sync.engine import ABSENT, Base, Choice, Item, Op, Side, State
from its_desktop.sync.payload import FORMAT, Content, content_hash, decode, from_secret
from its_desktop.sync.remotes import (
    Credentials,
    add_remote,
    get_remote,
    list_remotes,
    make_remote,
    remove_remote,
)
from its_desktop.sync.syncer import Syncer
from tests.conftest import FAST_KDF, PASSWORD

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
T1 = T0 + timedelta(days=1)
T2 = T0 + timedelta(days=2)
HASH = {c: content_hash(c, {}, "generic") for c in "BLRX"}
BASE = Base(7, HASH["B"])

LOCAL = {
    "-": ABSENT,
    "d-old": Side.deleted(T0),
    "d-new": Side.deleted(T2),
    "B": Side.present(HASH["B"], T1),
    "L": Side.present(HASH["L"], T1),
    "X": Side.present(HASH["X"], T1),
}
REMOTE = {
    "-": ABSENT,
    "d-old": Side.deleted(T0, 8),
    "d-new": Side.deleted(T2, 8),
    "B": Side.present(HASH["B"], T1, 7),
    "R": Side.present(HASH["R"], T1, 8),
    "X": Side.present(HASH["X"], T1, 8),
}
COLUMNS = ("-", "d-old", "d-new", "B", "R", "X")
# Rows: the local side; columns: the remote side (in COLUMNS order). "d-old"/"d-new": a
# tombstone older/newer than the other side's last change; "B": as the base; "L"/"R": changed
# on that side; "X": changed to the same content on both.
NO_BASE = """
-      no-op     no-op     no-op     pull      pull      pull
d-old  no-op     no-op     no-op     pull      pull      pull
d-new  no-op     no-op     no-op     conflict  conflict  conflict
B      push      push      conflict  adopt     conflict  conflict
L      push      push      conflict  conflict  conflict  conflict
X      push      push      conflict  conflict  conflict  adopt
"""
WITH_BASE = """
-      forget    forget    forget    pull           pull      pull
d-old  forget    forget    forget    delete-remote  conflict  conflict
d-new  forget    forget    forget    delete-remote  conflict  conflict
B      push      delete-local  delete-local  no-op  pull      pull
L      push      conflict  conflict  push           conflict  conflict
X      push      conflict  conflict  push           conflict  adopt
"""


def _table(text: str) -> dict[tuple[str, str], Op]:
    table = {}
    for line in text.strip().splitlines():
        row, *ops = line.split()
        assert len(ops) == len(COLUMNS)
        for column, op in zip(COLUMNS, ops):
            table[row, column] = Op(op)
    return table


EXPECTED = {None: _table(NO_BASE), BASE: _table(WITH_BASE)}
ALL_CASES = [(lk, b, rk) for b in (None, BASE) for lk in LOCAL for rk in REMOTE]


# -- the engine -------------------------------------------------------------------------------


@pytest.mark.parametrize(("local", "base", "remote"), ALL_CASES)
def test_every_combination_is_decided_as_the_table_says(local, base, remote):
    op, reason = engine.decide(LOCAL[local], base, REMOTE[remote])
    assert op is EXPECTED[base][local, remote], (local, base, remote, reason)
    assert reason


@pytest.mark.parametrize(("local", "base", "remote"), ALL_CASES)
def test_no_decision_loses_a_change(local, base, remote):
    here, there = LOCAL[local], REMOTE[remote]
    op, _ = engine.decide(here, base, there)
    local_changed = here.here and (base is None or here.hash != base.hash)
    remote_changed = there.here and (base is None or there.hash != base.hash)
    if op is Op.PULL:
        assert not local_changed or here.hash == there.hash
    if op is Op.PUSH:
        assert not remote_changed
    if op is Op.DELETE_LOCAL:
        assert base is not None and here.hash == base.hash and there.state is State.DELETED
    if op is Op.DELETE_REMOTE:
        assert base is not None and there.hash == base.hash and here.state is State.DELETED
    if local_changed and remote_changed and here.hash != there.hash:
        assert op is Op.CONFLICT


def _apply(item: Item) -> tuple[Side, Base | None, Side, Side | None]:
    """What the three states become once ``item`` is carried out (and a keep-both copy)."""
    here, there, base = item.local, item.remote, item.base
    version = (there.version or 0) + 1 if isinstance(there.version, int) or there.version is None else 99
    copy = None
    if item.op in (Op.PUSH, Op.KEEP_BOTH):
        if item.op is Op.KEEP_BOTH:
            copy = there
        there = Side.present(here.hash, T2, version)
        base = Base(version, here.hash)
    elif item.op is Op.PULL:
        here = Side.present(there.hash, T2)
        base = Base(there.version, there.hash)
    elif item.op is Op.DELETE_REMOTE:
        there, base = Side.deleted(T2, version), None
    elif item.op is Op.DELETE_LOCAL:
        here, base = Side.deleted(T2), None
    elif item.op is Op.ADOPT:
        base = Base(there.version, there.hash)
    elif item.op is Op.FORGET:
        base = None
    else:
        assert item.op is Op.NOOP
    return here, base, there, copy


@pytest.mark.parametrize(("local", "base", "remote"), ALL_CASES)
def test_carrying_out_any_decision_or_settlement_converges(local, base, remote):
    item = engine.plan({"s": LOCAL[local]} if LOCAL[local] is not ABSENT else {},
                       {"s": base} if base else {},
                       {"s": REMOTE[remote]} if REMOTE[remote] is not ABSENT else {}).items
    item = item[0] if item else Item("s", Op.NOOP, "", base=None)
    candidates = [item] if item.op is not Op.CONFLICT else [engine.resolve(item, c) for c in Choice]
    for candidate in candidates:
        assert candidate.op is not Op.CONFLICT
        here, new_base, there, copy = _apply(candidate)
        again, _ = engine.decide(here, new_base, there)
        assert again is Op.NOOP, (local, base, remote, candidate.op, again)
        if copy is not None:  # the remote version, kept under a new name: pushed as new next time
            assert engine.decide(Side.present(copy.hash, T2), None, ABSENT)[0] is Op.PUSH


def test_settling_a_conflict_follows_the_choice():
    both = Item("s", Op.CONFLICT, "", LOCAL["L"], REMOTE["R"], BASE)
    assert engine.resolve(both, Choice.LOCAL).op is Op.PUSH
    assert engine.resolve(both, Choice.REMOTE).op is Op.PULL
    assert engine.resolve(both, Choice.BOTH).op is Op.KEEP_BOTH
    deleted_here = replace(both, local=LOCAL["d-old"])
    assert engine.resolve(deleted_here, Choice.LOCAL).op is Op.DELETE_REMOTE
    assert engine.resolve(deleted_here, Choice.REMOTE).op is Op.PULL
    assert engine.resolve(deleted_here, Choice.BOTH).op is Op.PULL
    deleted_there = replace(both, remote=REMOTE["d-old"])
    assert engine.resolve(deleted_there, Choice.LOCAL).op is Op.PUSH
    assert engine.resolve(deleted_there, Choice.REMOTE).op is Op.DELETE_LOCAL
    assert engine.resolve(deleted_there, Choice.BOTH).op is Op.PUSH
    push = Item("s", Op.PUSH, "")
    assert engine.resolve(push, Choice.REMOTE) is push  # only conflicts are settled
    assert engine.resolve(both, Choice.LOCAL).resolved is Choice.LOCAL


def test_a_write_against_a_tombstone_checks_the_tombstones_version():
    item = engine.plan({"s": LOCAL["L"]}, {}, {"s": REMOTE["d-old"]}).items[0]
    assert item.op is Op.PUSH and item.expected == 8
    new = engine.plan({"s": LOCAL["L"]}, {}, {}).items[0]
    assert new.op is Op.PUSH and new.expected is None  # create only


def test_same_content_under_a_new_remote_version_only_moves_the_base():
    moved = Side.present(HASH["B"], T1, 9)
    assert engine.decide(LOCAL["B"], BASE, moved)[0] is Op.ADOPT


def test_plan_counts_and_resolutions():
    plan = engine.plan(
        {"a": LOCAL["L"], "b": LOCAL["B"], "c": LOCAL["L"], "d": LOCAL["d-old"]},
        {"a": BASE, "b": BASE, "c": BASE, "d": BASE},
        {"a": REMOTE["B"], "b": REMOTE["R"], "c": REMOTE["R"], "d": REMOTE["B"], "e": REMOTE["R"]},
        resolutions={"c": Choice.REMOTE},
    )
    assert [(i.name, i.op) for i in plan.items] == [
        ("a", Op.PUSH), ("b", Op.PULL), ("c", Op.PULL), ("d", Op.DELETE_REMOTE), ("e", Op.PULL)]
    assert plan.item("c").resolved is Choice.REMOTE
    assert plan.summary() == "1 to push, 3 to pull, 1 to delete on the remote, 0 to delete here, 0 conflicts, 0 unchanged"
    assert engine.Plan().summary().endswith("0 conflicts, 0 unchanged")


def test_a_damaged_base_counts_as_never_synced():
    assert Base.from_json({"version": 3}) is None
    assert Base.from_json("junk") is None
    assert Base.from_json({"version": [1], "hash": "h"}) == Base(None, "h")
    assert Base.from_json(Base("v", "h", "t").to_json()) == Base("v", "h", "t")


# -- the payload ------------------------------------------------------------------------------


def test_payload_round_trip_and_hash_ignores_metadata():
    content = Content("k€y\nline", {"account": "U1"}, "api_key", {"env": "prod"}, "desc", "2026-01-01T00:00:00+00:00")
    back = decode(content.to_json())
    assert back == content and not back.foreign
    assert decode(__import__("json").dumps(content.to_json())) == content  # as an AWS SecretString
    assert replace(content, tags={}, description="", updated=None).hash == content.hash
    assert replace(content, type="password").hash != content.hash
    assert replace(content, fields={}).hash != content.hash
    assert "k€y" not in repr(content)


def test_secrets_written_by_other_tools_are_read():
    kv = decode({"username": "u", "password": "p", "port": 5432})
    assert kv.foreign and kv.value == "" and kv.fields == {"username": "u", "password": "p", "port": "5432"}
    assert decode({"value": "v", "note": "n"}).fields == {"note": "n"}
    assert decode("plain text").value == "plain text"
    assert decode("[1, 2]").value == "[1, 2]"
    bad_type = decode({"its": FORMAT, "value": "v", "type": "weird", "fields": {"a": 1}})
    assert bad_type.type == "generic" and bad_type.fields == {"a": "1"}


# -- an in-memory store -----------------------------------------------------------------------


class FakeStore:
    """Versions per key as KV v2 keeps them (None: a deletion), checked like ``cas``; hooks
    make it fail, race or stall."""

    def __init__(self) -> None:
        self.keys: dict[str, list[dict | None]] = {}
        self.times: dict[str, datetime] = {}  # when the current version was written
        self.lock = threading.Lock()
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail_after: int | None = None  # writes that succeed before every call fails
        self.writes = 0
        self.before_write = None  # called with the key, outside the lock
        self.delay = 0.0

    def current(self, key: str) -> tuple[int, dict | None]:
        versions = self.keys.get(key, [])
        return len(versions), (versions[-1] if versions else None)


class FakeBackend:
    description = "fake"

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.closed = False

    def _enter(self) -> None:
        s = self.store
        with s.lock:
            s.calls += 1
            s.in_flight += 1
            s.max_in_flight = max(s.max_in_flight, s.in_flight)
            if s.fail_after is not None and s.writes >= s.fail_after:
                s.in_flight -= 1
                raise BackendError("cannot reach fake: the connection failed")
        if s.delay:
            time.sleep(s.delay)

    def _leave(self) -> None:
        with self.store.lock:
            self.store.in_flight -= 1

    def check_key(self, key):
        return "no spaces here" if " " in key else None

    def list(self, prefix, progress=None, cancel=None):
        with self.store.lock:
            keys = [k for k in self.store.keys if k.startswith(prefix)]
        found = {}
        for key in keys:
            version, data = self.store.current(key)
            # no payload in the listing, as on AWS: the syncer reads what changed
            found[key] = Listed(key, State.PRESENT if data is not None else State.DELETED, version,
                                self.store.times.get(key, T1))
        if progress:
            progress(len(found), len(found))
        return found

    def read(self, key):
        self._enter()
        try:
            version, data = self.store.current(key)
            if version == 0:
                return Listed(key, State.ABSENT)
            when = self.store.times.get(key, T1)
            if data is None:
                return Listed(key, State.DELETED, version, when)
            return Listed(key, State.PRESENT, version, when, dict(data))
        finally:
            self._leave()

    def write(self, key, payload, expected, deleted, request_id):
        if self.store.before_write:
            self.store.before_write(key)
        self._enter()
        try:
            with self.store.lock:
                version, _ = self.store.current(key)
                if version != (expected or 0):
                    raise CasFailed(key)
                self.store.keys.setdefault(key, []).append(dict(payload))
                self.store.times[key] = datetime.now(timezone.utc)
                self.store.writes += 1
                return version + 1
        finally:
            self._leave()

    def delete(self, key, expected):
        self._enter()
        try:
            with self.store.lock:
                version, _ = self.store.current(key)
                if version != expected:
                    raise CasFailed(key)
                self.store.keys[key].append(None)
                self.store.times[key] = datetime.now(timezone.utc)
        finally:
            self._leave()

    def close(self):
        self.closed = True


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def _vault(tmp_path, name: str) -> Vault:
    return Vault.create(tmp_path / name / "vault.its", PASSWORD, kdf=FAST_KDF)


def _remote(vault: Vault, name: str = "fake", folder: str = "brokers/"):
    vault.set("creds/fake", "token-value-uniq-1f2e")
    remote = make_remote(name, "openbao", folder, "its/", {"url": "http://127.0.0.1:9", "mount": "secret"},
                         "token", "creds/fake")
    add_remote(vault, remote)
    return get_remote(vault, name)


@pytest.fixture
def machine_a(tmp_path):
    vault = _vault(tmp_path, "a")
    yield vault
    vault.lock()


@pytest.fixture
def machine_b(tmp_path):
    vault = _vault(tmp_path, "b")
    yield vault
    vault.lock()


def _sync(vault, store, **options):
    remote = get_remote(vault, "fake")
    with Syncer(vault, remote, backend=FakeBackend(store), **options) as syncer:
        return syncer.apply()


def _plan(vault, store):
    with Syncer(vault, get_remote(vault, "fake"), backend=FakeBackend(store)) as syncer:
        return syncer.plan()


def test_push_then_pull_on_another_machine_then_nothing_to_do(machine_a, machine_b, store):
    _remote(machine_a)
    _remote(machine_b)
    machine_a.set("brokers/ibkr/key", "v1-uniq", type="api_key", fields={"account": "U1"}, tags={"env": "prod"})
    machine_a.set("brokers/spaced name", "v")  # the store refuses such keys: skipped, said so
    machine_a.set("elsewhere/x", "not synced")
    result = _sync(machine_a, store)
    assert result.pushed == ["brokers/ibkr/key"] and result.skipped == [("brokers/spaced name", "no spaces here")]
    assert set(store.keys) == {"its/ibkr/key"}  # neither other folders nor the credentials
    pulled = _sync(machine_b, store)
    assert pulled.pulled == ["brokers/ibkr/key"]
    secret = machine_b.peek("brokers/ibkr/key")
    assert (secret.value, secret.fields, secret.type.value, secret.tags) == ("v1-uniq", {"account": "U1"}, "api_key",
                                                                              {"env": "prod"})
    for vault in (machine_a, machine_b):
        plan = _plan(vault, store)
        assert not plan.changes and not plan.conflicts


def test_pulled_content_replaces_fields_exactly_and_keeps_history(machine_a, machine_b, store):
    _remote(machine_a)
    _remote(machine_b)
    machine_a.set("brokers/k", "one", fields={"a": "1", "b": "2"})
    _sync(machine_a, store)
    _sync(machine_b, store)
    store.keys["its/k"].append({**store.keys["its/k"][-1], "value": "two", "fields": {"a": "1"}})
    _sync(machine_b, store)
    secret = machine_b.peek("brokers/k")
    assert (secret.value, secret.fields) == ("two", {"a": "1"})  # field b removed, as on the remote
    assert [v.value for v in secret.versions()] == ["one", "two"]
    assert not _plan(machine_b, store).changes


def test_saves_come_in_batches_with_one_audit_event_per_secret(machine_a, store):
    _remote(machine_a)
    machine_a.import_secrets([__import__("its_desktop.core.secrets", fromlist=["Secret"]).Secret(
        name=f"brokers/s{i:03d}", value=f"v{i}") for i in range(35)], "test")
    before = machine_a.generation
    result = _sync(machine_a, store, batch_size=10)
    assert len(result.pushed) == 35
    assert machine_a.generation - before == 4  # 10 + 10 + 10 + 5, never one save per secret
    pushes = [r.event for r in machine_a.audit_records() if r.event.op == "sync-push"]
    assert sorted(e.name for e in pushes) == [f"brokers/s{i:03d}" for i in range(35)]
    assert {e.detail for e in pushes} == {"fake"}
    bases = machine_a.settings()["sync"]["fake"]
    assert set(bases) == {f"brokers/s{i:03d}" for i in range(35)} and bases["brokers/s000"]["version"] == 1


def test_concurrency_is_bounded_and_progress_reaches_the_total(machine_a, store):
    _remote(machine_a)
    from its_desktop.core.secrets import Secret

    machine_a.import_secrets([Secret(name=f"brokers/s{i:03d}", value=f"v{i}") for i in range(60)], "test")
    store.delay = 0.005
    seen = []
    with Syncer(machine_a, get_remote(machine_a, "fake"), backend=FakeBackend(store), workers=4) as syncer:
        result = syncer.apply(progress=seen.append)
    assert len(result.pushed) == 60
    assert 1 < store.max_in_flight <= 4
    applying = [p for p in seen if p.phase == "applying"]
    assert applying[-1].done == applying[-1].total == 60
    assert [p.done for p in applying] == sorted(p.done for p in applying)


def test_a_failing_store_loses_nothing_and_a_rerun_converges(machine_a, machine_b, store):
    _remote(machine_a)
    _remote(machine_b)
    from its_desktop.core.secrets import Secret

    machine_a.import_secrets([Secret(name=f"brokers/s{i:03d}", value=f"v{i}") for i in range(50)], "test")
    store.fail_after = 17
    with pytest.raises(BackendError) as failure:
        _sync(machine_a, store, batch_size=5)
    assert "\n" not in str(failure.value)
    bases = machine_a.settings()["sync"]["fake"]
    assert len(bases) == store.writes == 17  # every write that happened is recorded, no other
    assert {s.name: machine_a.peek(s.name).value for s in machine_a.summaries() if s.name.startswith("brokers/")} == \
        {f"brokers/s{i:03d}": f"v{i}" for i in range(50)}
    store.fail_after = None
    result = _sync(machine_a, store)
    assert len(result.pushed) == 33 and not result.conflicts
    assert len(_sync(machine_b, store).pulled) == 50
    assert not _plan(machine_a, store).changes


def test_pushes_recorded_by_nobody_are_adopted_not_repeated(machine_a, store):
    """A process killed after its writes but before its save: the rerun only records them."""
    _remote(machine_a)
    machine_a.set("brokers/k", "v")
    _sync(machine_a, store)
    machine_a.change_settings(lambda s: s["sync"].pop("fake"))  # as if the save never happened
    writes = store.writes
    result = _sync(machine_a, store)
    assert store.writes == writes and result.adopted == 1 and not result.pushed
    assert machine_a.settings()["sync"]["fake"]["brokers/k"]["version"] == 1
    adopted = [r.event for r in machine_a.audit_records() if r.event.op == "sync-adopt"]
    assert [(e.name, e.detail) for e in adopted] == [("brokers/k", "fake: already the same on both sides")]


def test_a_racing_writer_fails_the_check_and_set_and_the_secret_is_planned_again(machine_a, machine_b, store):
    _remote(machine_a)
    _remote(machine_b)
    machine_a.set("brokers/k", "v1")
    machine_a.set("brokers/j", "j1")
    _sync(machine_a, store)
    _sync(machine_b, store)
    machine_a.set("brokers/k", "mine")
    machine_a.set("brokers/j", "j-mine")
    with Syncer(machine_a, get_remote(machine_a, "fake"), backend=FakeBackend(store)) as syncer:
        plan = syncer.plan()
        assert {i.name: i.op for i in plan.changes} == {"brokers/k": Op.PUSH, "brokers/j": Op.PUSH}
        store.keys["its/k"].append({**store.keys["its/k"][-1], "value": "theirs"})  # someone else wrote
        result = syncer.apply(plan)
    assert result.pushed == ["brokers/j"]
    assert [c.name for c in result.conflicts] == ["brokers/k"]
    assert machine_a.peek("brokers/k").value == "mine" and store.keys["its/k"][-1]["value"] == "theirs"
    settled = Syncer(machine_a, get_remote(machine_a, "fake"), backend=FakeBackend(store))
    with settled:
        result = settled.apply(resolutions={"brokers/k": Choice.LOCAL})
    assert result.pushed == ["brokers/k"] and result.resolved == ["brokers/k"]
    assert store.keys["its/k"][-1]["value"] == "mine"


def test_a_local_edit_during_the_sync_is_never_overwritten(machine_a, machine_b, store):
    _remote(machine_a)
    _remote(machine_b)
    machine_a.set("brokers/k", "v1")
    _sync(machine_a, store)
    _sync(machine_b, store)
    machine_a.set("brokers/k", "remote-v2")
    _sync(machine_a, store)
    with Syncer(machine_b, get_remote(machine_b, "fake"), backend=FakeBackend(store)) as syncer:
        plan = syncer.plan()
        assert plan.item("brokers/k").op is Op.PULL
        machine_b.set("brokers/k", "edited-meanwhile")
        result = syncer.apply(plan)
    assert machine_b.peek("brokers/k").value == "edited-meanwhile"
    assert not result.pulled and [c.name for c in result.conflicts] == ["brokers/k"]


def test_keep_both_pulls_the_remote_version_beside_and_pushes_it_too(machine_a, machine_b, store):
    _remote(machine_a)
    _remote(machine_b)
    machine_a.set("brokers/k", "v1")
    _sync(machine_a, store)
    _sync(machine_b, store)
    machine_a.set("brokers/k", "from-a")
    machine_b.set("brokers/k", "from-b")
    _sync(machine_b, store)
    result = _sync(machine_a, store)
    assert [c.name for c in result.conflicts] == ["brokers/k"] and machine_a.peek("brokers/k").value == "from-a"
    result = Syncer(machine_a, get_remote(machine_a, "fake"), backend=FakeBackend(store)).apply(
        resolutions={"brokers/k": Choice.BOTH})
    [copy] = result.copies
    assert copy.startswith("brokers/k.remote-") and machine_a.peek(copy).value == "from-b"
    assert store.keys["its/k"][-1]["value"] == "from-a"
    assert store.keys["its/" + copy[len("brokers/"):]][-1]["value"] == "from-b"
    assert not _plan(machine_a, store).changes


def test_deletions_propagate_through_tombstones(machine_a, machine_b, store):
    _remote(machine_a)
    _remote(machine_b)
    for name in ("brokers/gone", "brokers/kept"):
        machine_a.set(name, "v")
    _sync(machine_a, store)
    _sync(machine_b, store)
    machine_a.delete("brokers/gone")
    assert _sync(machine_a, store).deleted_remote == ["brokers/gone"]
    assert store.keys["its/gone"][-1] is None
    assert _sync(machine_b, store).deleted_local == ["brokers/gone"]
    assert "brokers/gone" not in machine_b.names() and "brokers/gone" in machine_b.settings()["tombstones"]
    deletes = [r.event for r in machine_b.audit_records() if r.event.op == "sync-delete"]
    assert [(e.name, e.detail) for e in deletes] == [("brokers/gone", "fake: deleted here")]
    for vault in (machine_a, machine_b):
        assert not _plan(vault, store).changes
        assert "brokers/gone" not in vault.settings()["sync"]["fake"]


def test_a_vanished_remote_is_restored_not_taken_as_a_deletion(machine_a, store):
    _remote(machine_a)
    machine_a.set("brokers/k", "v")
    _sync(machine_a, store)
    store.keys.clear()  # a wiped dev server, a purged key
    plan = _plan(machine_a, store)
    assert plan.item("brokers/k").op is Op.PUSH
    assert _sync(machine_a, store).pushed == ["brokers/k"]
    assert machine_a.peek("brokers/k").value == "v"


def test_cancel_stops_submitting_and_keeps_what_is_done(machine_a, store):
    _remote(machine_a)
    from its_desktop.core.secrets import Secret

    machine_a.import_secrets([Secret(name=f"brokers/s{i:03d}", value=f"v{i}") for i in range(80)], "test")
    cancel = threading.Event()
    store.before_write = lambda key: cancel.set() if store.writes >= 20 else None
    with Syncer(machine_a, get_remote(machine_a, "fake"), backend=FakeBackend(store), workers=2) as syncer:
        result = syncer.apply(cancel=cancel)
    assert result.cancelled and 20 <= len(result.pushed) < 80
    assert len(machine_a.settings()["sync"]["fake"]) == len(result.pushed) == store.writes
    store.before_write = None
    assert len(_sync(machine_a, store).pushed) == 80 - len(result.pushed)


def test_credentials_secrets_are_never_synced_even_inside_the_folder(machine_a, store):
    machine_a.set("brokers/creds", "token-uniq")
    add_remote(machine_a, make_remote("fake", "openbao", "brokers/", "its/", {"url": "http://x:1", "mount": "kv"},
                                      "token", "brokers/creds"))
    machine_a.set("brokers/k", "v")
    store.keys["its/creds"] = [{"its": FORMAT, "value": "remote-creds"}]
    result = _sync(machine_a, store)
    assert result.pushed == ["brokers/k"] and not result.pulled
    assert ("brokers/creds", "holds a remote's credentials: never synced") in result.skipped
    assert machine_a.peek("brokers/creds").value == "token-uniq"


def test_idempotency_tokens_are_stable_keyed_and_version_bound(machine_a):
    remote = _remote(machine_a)
    syncer = Syncer(machine_a, remote, backend=FakeBackend(FakeStore()))
    token = syncer.request_id("its/k", 3, HASH["B"])
    assert token == syncer.request_id("its/k", 3, HASH["B"])  # a retry: AWS ignores the repeat
    assert token != syncer.request_id("its/k", 4, HASH["B"])  # A, B, then A again is a new version
    assert token != syncer.request_id("its/k", 3, HASH["L"])
    other = Syncer(machine_a, replace(remote, token_salt="0" * 32), backend=FakeBackend(FakeStore()))
    assert token != other.request_id("its/k", 3, HASH["B"])  # keyed: tells nothing about the value
    assert 32 <= len(token) <= 64


# -- remotes and the registry -----------------------------------------------------------------


def test_remotes_are_settings_that_hold_no_credential(machine_a):
    remote = _remote(machine_a)
    raw = machine_a.settings()["remotes"]["fake"]
    assert raw["credentials"] == "creds/fake" and "token-value-uniq-1f2e" not in repr(raw)
    assert [r.name for r in list_remotes(machine_a)] == ["fake"]
    assert remote.key_for("brokers/a/b") == "its/a/b" and remote.name_for("its/a/b") == "brokers/a/b"
    with pytest.raises(Exception, match="already exists"):
        add_remote(machine_a, remote)
    machine_a.change_settings(lambda s: s.setdefault("sync", {}).setdefault("fake", {"x": {"hash": "h"}}))
    remove_remote(machine_a, "fake")
    assert list_remotes(machine_a) == [] and "fake" not in machine_a.settings().get("sync", {})
    with pytest.raises(Exception, match="no remote named 'fake'"):
        remove_remote(machine_a, "fake")
    ops = [r.event.op for r in machine_a.audit_records()]
    assert "remote-add" in ops and "remote-rm" in ops


@pytest.mark.parametrize("backend_kind", KINDS, ids=lambda k: k.type)
def test_every_registered_backend_opens_and_closes_without_the_network(backend_kind):
    options = {"openbao": {"url": "http://127.0.0.1:9", "mount": "secret"}, "aws": {"region": "eu-west-1"}}
    auth = backend_kind.auths[0]
    remote = make_remote("r", backend_kind.type, "brokers", "its", options[backend_kind.type], auth,
                         None if auth == "aws-chain" else "creds/r")
    values = {"value": "v-uniq-1", "token": "t-uniq-2", "access_key_id": "a-uniq-3", "secret_access_key": "s-uniq-4",
              "role_id": "r-uniq-5", "secret_id": "s-uniq-6"}
    credentials = Credentials("creds/r", values)
    backend = backend_kind.open(remote, credentials, 4)
    try:
        for method in ("check_key", "list", "read", "write", "delete", "close"):
            assert callable(getattr(backend, method))
        assert backend.check_key("its/ok/key") is None
        for shown in (repr(backend), repr(credentials), backend.description):
            assert not any(v in shown for v in values.values())
    finally:
        backend.close()
    assert kind("vault") is kind("openbao")


@pytest.mark.parametrize(("type_", "options", "message"), [
    ("openbao", {"url": "ftp://x", "mount": "secret"}, "--url must be"),
    ("openbao", {"url": "http://x"}, "needs --mount"),
    ("aws", {"region": "Mars"}, "--region must be"),
    ("aws", {"region": "us-east-1", "endpoint_url": "nope"}, "--endpoint-url must be"),
    ("azure", {}, "unknown remote type"),
])
def test_remote_options_are_checked(type_, options, message):
    with pytest.raises(Exception, match=message):
        make_remote("r", type_, "brokers", "its", options, "token" if type_ != "aws" else "aws-chain",
                    "creds/r" if type_ != "aws" else None)


def test_folders_and_prefixes_are_normalised():
    remote = make_remote("r", "openbao", "/brokers/", "/its/x/", {"url": "http://x:1/", "mount": "/secret/"},
                         "token", "c")
    assert (remote.folder, remote.prefix, remote.options) == ("brokers/", "its/x/", {"url": "http://x:1",
                                                                                       "mount": "secret"})
    whole = make_remote("r", "aws", "/", "prod-", {"region": "us-east-1"}, "aws-chain", None)
    assert (whole.folder, whole.prefix) == ("", "prod-") and whole.covers("anything/at/all")
    with pytest.raises(Exception, match="only letters"):
        make_remote("r", "aws", "b", "bad prefix", {"region": "us-east-1"}, "aws-chain", None)
    with pytest.raises(Exception, match="invalid remote name"):
        make_remote("bad name", "aws", "b", "p", {"region": "us-east-1"}, "aws-chain", None)


def test_payload_of_a_secret_carries_what_the_issue_lists(machine_a):
    secret = machine_a.set("brokers/k", "v", type="api_key", fields={"f": "1"}, tags={"t": "2"}, description="d")
    raw = from_secret(secret).to_json()
    assert set(raw) == {"its", "value", "fields", "type", "tags", "description", "updated"}
    assert raw["updated"] == secret.updated.isoformat(timespec="microseconds")


def test_every_local_remote_combination_round_trips_through_a_store(tmp_path, store):
    """The simulation above, for real: two vaults and the store in every combination of
    present / deleted / changed, synced twice, end in agreement."""
    states = ("absent", "same", "changed", "deleted")
    combos = list(itertools.product(states, states))
    a, b = _vault(tmp_path, "ca"), _vault(tmp_path, "cb")
    try:
        _remote(a)
        _remote(b)
        for i, _ in enumerate(combos):
            a.set(f"brokers/c{i}", "base")
        _sync(a, store)
        _sync(b, store)
        for i, (on_a, on_b) in enumerate(combos):
            for vault, state, value in ((a, on_a, "a-edit"), (b, on_b, "b-edit")):
                name = f"brokers/c{i}"
                if state == "changed":
                    vault.set(name, value)
                elif state == "deleted":
                    vault.delete(name)
                elif state == "absent":  # lost without a tombstone (an old copy restored)
                    vault.delete(name)
                    vault.change_settings(lambda s, n=name: s["tombstones"].pop(n))
        _sync(b, store)
        result = _sync(a, store)
        choices = {c.name: Choice.BOTH for c in result.conflicts}
        if choices:
            Syncer(a, get_remote(a, "fake"), backend=FakeBackend(store)).apply(resolutions=choices)
        _sync(b, store)
        _sync(a, store)
        for vault in (a, b):
            assert not _plan(vault, store).changes and not _plan(vault, store).conflicts
        names = sorted(n for n in a.names() if n.startswith("brokers/"))
        assert names == sorted(n for n in b.names() if n.startswith("brokers/"))
        assert all(a.peek(n).value == b.peek(n).value for n in names)
    finally:
        a.lock()
        b.lock()
