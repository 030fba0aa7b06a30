"""Re-keying through the Python API, on real vault files: everything survives under a new vault
key, the old key opens nothing that is on disk afterwards, the audit chain is re-sealed whole,
refusals change nothing, a stale second session cannot follow (nor break the log), and what a
re-key killed before or after its commit point leaves is settled by the next open.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest

from its_desktop.core.audit import AuditFiles, AuditFilter, AuditLog
from its_desktop.core.crypto import AuthenticationFailed, open_sealed, random_bytes
from its_desktop.core.errors import AuditTampered, ConcurrencyError, InvalidInput, WrongCredentials
from its_desktop.core.rotation import RotationPolicy
from its_desktop.core.vault import api as vault_api
from its_desktop.core.vault import slots as slotlib
from its_desktop.core.vault.api import Vault
from its_desktop.core.vault.header import parse_file
from its_desktop.factors import hardware
from its_desktop.factors.base import QuietPrompter
from tests.conftest import FAST_KDF, PASSWORD

NEW_PASSWORD = "a new master password after the re-key"


class Killed(BaseException):
    """Stands in for SIGKILL at a chosen step: nothing after it runs."""


def kill(*args, **kwargs) -> None:
    raise Killed()


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One emulated YubiKey and one emulated FIDO2 key, plugged in for this test only."""
    for name in ("ITS_EMULATED_KEYS_PIN", "ITS_EMULATED_TOUCH", "ITS_EMULATED_TOUCH_TIMEOUT", "ITS_FIDO2_PIN"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "keys" / "first.json"
    monkeypatch.setenv("ITS_EMULATED_KEYS", str(path))
    return path


def populate(vault: Vault) -> None:
    vault.set("brokers/ibkr/api_key", "first value", type="api_key", fields={"account": "U1234567"},
              tags={"env": "prod"}, description="the live account", rotation=RotationPolicy(90),
              expires_at=datetime(2031, 6, 30, tzinfo=timezone.utc), high_value=True)
    vault.set("brokers/ibkr/api_key", "second value", fields={"region": "eu"})
    vault.set("db/main/password", "hunter2-but-longer")
    vault.change_settings(lambda settings: settings.update({"remotes": {"desk": {"type": "openbao"}}}))
    vault.get("db/main/password")
    vault.record("copy", "brokers/ibkr/api_key", detail="to the clipboard")


def on_disk(path: Path):
    return parse_file(path.read_bytes())


def key_on_disk(path: Path) -> bytearray:
    """The vault key of the file on disk, through its password slot (what a leak would give)."""
    header = on_disk(path).header
    slot = next(s for s in header.slots if s.kind == slotlib.PASSWORD)
    return slotlib.open_password_slot(slot, PASSWORD, header.vault_id)


def secrets_of(vault: Vault) -> list:
    return sorted(vault.secrets(), key=lambda s: s.name)


def staging(path: Path) -> list[Path]:
    files = AuditFiles.beside(path)
    return [p for p in (files.staged_log, files.staged_head) if p.exists()]


def audit_rows(vault: Vault) -> list[tuple]:
    return [(r.seq, r.event.time, r.event.op, r.event.outcome, r.event.actor, r.event.name, r.event.detail)
            for r in vault.audit_records()]


# -- what survives, what does not ------------------------------------------------------------------


def test_everything_survives_under_a_new_key_and_the_old_key_opens_nothing(vault, vault_path):
    populate(vault)
    old_code = vault.take_recovery_code()
    old_key = bytes(key_on_disk(vault_path))
    before = on_disk(vault_path).header
    secrets, settings, records = secrets_of(vault), vault.settings(), audit_rows(vault)
    old_log = AuditFiles.beside(vault_path).log.read_bytes()
    in_memory = vault._key  # the very buffer the vault holds the old key in

    code = vault.rekey(PASSWORD)

    assert code is not None and code != old_code
    assert in_memory is not None and not any(in_memory), "the old key is wiped in memory"
    after = on_disk(vault_path).header
    assert after.generation == before.generation + 1 and after.vault_id == before.vault_id
    assert [(s.id, s.kind, s.name, s.created, s.kdf) for s in after.slots if s.kind == "password"] == \
        [(s.id, s.kind, s.name, s.created, s.kdf) for s in before.slots if s.kind == "password"]
    assert {s.wrapped for s in after.slots}.isdisjoint({s.wrapped for s in before.slots})
    assert {s.salt for s in after.slots}.isdisjoint({s.salt for s in before.slots})
    # the old key opens neither the body nor the audit log, and cannot reopen the vault
    envelope = on_disk(vault_path)
    with pytest.raises(AuthenticationFailed):
        open_sealed(old_key, envelope.sealed_body, envelope.aad)
    with pytest.raises(AuditTampered):
        AuditLog(vault_path, old_key, after.vault_id).verify()
    with pytest.raises(ConcurrencyError):
        Vault.open_with_key(vault_path, bytearray(old_key), actor=vault.actor, detail="stale quick unlock")
    assert bytes(key_on_disk(vault_path)) != old_key
    assert not staging(vault_path)

    # this object carries on with the new key, and a fresh unlock sees the same vault
    vault.set("after/rekey", "still writable")
    vault.lock()
    with Vault.open(vault_path, PASSWORD) as opened:
        assert [s for s in secrets_of(opened) if s.name != "after/rekey"] == secrets
        ibkr = opened.peek("brokers/ibkr/api_key")
        assert ibkr.value == "second value" and ibkr.fields == {"account": "U1234567", "region": "eu"}
        assert "first value" in [v.value for v in opened.history("brokers/ibkr/api_key")]
        assert opened.settings() == settings
        assert opened.verify_audit() == len(records) + 3  # rekey, the set after it, this unlock
        rows = audit_rows(opened)
        assert rows[:len(records)] == records, "every record kept: seq, time, op, outcome, actor, name, detail"
        rekey = rows[len(records)]
        assert rekey[2:4] == ("rekey", "ok") and "recovery code replaced" in rekey[6]
    with Vault.open(vault_path, recovery_code=code) as opened:
        assert opened.value("after/rekey") == "still writable"
    with pytest.raises(WrongCredentials):
        Vault.open(vault_path, recovery_code=old_code)
    new_log = AuditFiles.beside(vault_path).log.read_bytes()
    assert not set(old_log.splitlines()) & set(new_log.splitlines()), "every record re-sealed"
    assert b"db/main" not in new_log and b"hunter2" not in new_log


def test_names_are_still_searchable_after_a_rekey(vault, vault_path):
    populate(vault)
    vault.rekey(PASSWORD)
    vault.lock()
    with Vault.open(vault_path, PASSWORD) as opened:
        reader = opened.audit_reader()
        lines, _ = reader.page(reader.end(), reader.matcher(AuditFilter(name="db/main/password")))
        found = [reader.decode(line).event for line in lines]
        assert {(e.op, e.name) for e in found} == {("create", "db/main/password"), ("read", "db/main/password")}
        assert [r.event.op for r in reader.matching(AuditFilter(op="rekey"))] == ["rekey"]


def test_enrolled_keys_are_rewrapped_and_an_absent_one_is_dropped(vault, vault_path, keys, monkeypatch):
    vault.set("k", "the value")
    (yubikey,) = hardware.list_keys("yubikey")
    yubikey_slot = hardware.enroll(vault, yubikey, PASSWORD, QuietPrompter(), "desk YubiKey", {"otp_slot": 2})
    monkeypatch.setenv("ITS_EMULATED_KEYS", str(keys.with_name("drawer.json")))
    (absent,) = hardware.list_keys("fido2")
    absent_slot = hardware.enroll(vault, absent, PASSWORD, QuietPrompter(), "in a drawer", {})
    monkeypatch.setenv("ITS_EMULATED_KEYS", str(keys))
    (fido2,) = hardware.list_keys("fido2")
    fido2_slot = hardware.enroll(vault, fido2, PASSWORD, QuietPrompter(), "backup Solo", {})
    before = {s.id: s for s in on_disk(vault_path).header.slots}

    rebuild, dropped = hardware.rewrap_for_new_password(vault, PASSWORD, QuietPrompter())
    assert dropped == (absent_slot.id,)
    vault.rekey(PASSWORD, rebuild, dropped)

    after = {s.id: s for s in on_disk(vault_path).header.slots}
    assert absent_slot.id not in after
    for slot in (yubikey_slot, fido2_slot):
        assert after[slot.id].wrapped != before[slot.id].wrapped
        assert (after[slot.id].name, after[slot.id].created) == (slot.name, slot.created)
    assert "1 removed" in audit_rows(vault)[-1][6]
    vault.lock()
    for kind in ("yubikey", "fido2"):
        openers = hardware.openers_for(tuple(after.values()), PASSWORD, QuietPrompter(), kind)
        with Vault.open(vault_path, openers=tuple(openers)) as opened:
            assert opened.value("k") == "the value"
            assert opened.verify_audit() > 0


def test_a_vault_without_a_password_slot_is_rekeyed_through_its_key(vault, vault_path, keys):
    vault.set("k", "v")
    (key,) = hardware.list_keys("fido2")
    slot = hardware.enroll(vault, key, PASSWORD, QuietPrompter(), "only key", {})
    vault.remove_slot(next(s.id for s in vault.slots if s.kind == slotlib.PASSWORD))
    rebuild, dropped = hardware.rewrap_for_new_password(vault, PASSWORD, QuietPrompter())
    assert vault.rekey(PASSWORD, rebuild, dropped) is not None
    assert [s.kind for s in on_disk(vault_path).header.slots] == ["recovery", "fido2"]
    vault.lock()
    openers = hardware.openers_for(on_disk(vault_path).header.slots, PASSWORD, QuietPrompter())
    with Vault.open(vault_path, openers=tuple(openers)) as opened:
        assert opened.value("k") == "v" and opened.slots[-1].id == slot.id


def test_passwd_after_a_rekey(vault, vault_path):
    vault.set("k", "v")
    vault.rekey(PASSWORD)
    vault.change_password(NEW_PASSWORD)
    vault.lock()
    with pytest.raises(WrongCredentials):
        Vault.open(vault_path, PASSWORD)
    with Vault.open(vault_path, NEW_PASSWORD) as opened:
        assert opened.value("k") == "v"
        assert [r.event.op for r in opened.audit_records()][-6:] == ["create", "rekey", "passwd", "unlock", "unlock",
                                                                     "read"]  # the failed unlock, then this one
        opened.verify_audit()


def test_a_vault_without_a_recovery_slot_gets_none(vault_path):
    with Vault.create(vault_path, PASSWORD, kdf=FAST_KDF, recovery=False) as vault:
        vault.set("k", "v")
        assert vault.rekey(PASSWORD) is None
        assert [s.kind for s in vault.slots] == ["password"]
        assert audit_rows(vault)[-1][6] == "1 key slot re-wrapped"
    with Vault.open(vault_path, PASSWORD) as opened:
        assert opened.value("k") == "v"


# -- refusals change nothing -----------------------------------------------------------------------


def _unchanged(vault_path: Path, before: bytes) -> None:
    assert vault_path.read_bytes() == before
    assert not staging(vault_path)


def test_a_wrong_password_is_refused_and_audited(vault, vault_path):
    vault.set("k", "v")
    before = vault_path.read_bytes()
    with pytest.raises(WrongCredentials):
        vault.rekey("not the master password")
    _unchanged(vault_path, before)
    assert audit_rows(vault)[-1][2:4] == ("rekey", "failed")
    assert vault.verify_audit() and vault.value("k") == "v"


def test_a_tampered_audit_log_is_refused_and_nothing_changes(vault, vault_path):
    populate(vault)
    code = vault.take_recovery_code()
    log = AuditFiles.beside(vault_path).log
    lines = log.read_bytes().splitlines(keepends=True)
    doc = json.loads(lines[2])
    doc["detail"] = "nothing to see here"
    lines[2] = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    log.write_bytes(b"".join(lines))
    before = vault_path.read_bytes()
    with pytest.raises(AuditTampered):
        vault.rekey(PASSWORD)
    _unchanged(vault_path, before)
    with pytest.raises(AuditTampered) as still:
        vault.verify_audit()
    assert still.value.seq == 3
    vault.lock()
    with Vault.open(vault_path, recovery_code=code) as opened:  # the old code still works
        assert opened.value("db/main/password") == "hunter2-but-longer"


def test_a_key_slot_left_unwrapped_or_no_way_in_left_is_refused(vault, vault_path, keys):
    (key,) = hardware.list_keys("fido2")
    slot = hardware.enroll(vault, key, PASSWORD, QuietPrompter(), "only key", {})
    before = vault_path.read_bytes()
    with pytest.raises(InvalidInput, match="was not re-wrapped"):
        vault.rekey(PASSWORD)  # the key slot would keep the old key
    _unchanged(vault_path, before)
    vault.remove_slot(next(s.id for s in vault.slots if s.kind == slotlib.PASSWORD))
    before = vault_path.read_bytes()
    with pytest.raises(InvalidInput, match="no way in would be left"):
        vault.rekey(PASSWORD, dropped=(slot.id,))
    _unchanged(vault_path, before)


def test_a_failed_save_leaves_the_old_vault_and_no_staging(vault, vault_path, monkeypatch):
    vault.set("k", "v")
    before = vault_path.read_bytes()

    def disk_full(path, data, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(vault_api, "atomic_write", disk_full)
    with pytest.raises(OSError):
        vault.rekey(PASSWORD)
    monkeypatch.undo()
    _unchanged(vault_path, before)
    last = audit_rows(vault)[-1]
    assert last[2:4] == ("rekey", "failed") and last[6] == "save failed: No space left on device"
    vault.set("k", "still the old key")  # the object carries on with the old key
    assert vault.verify_audit()


# -- another session -------------------------------------------------------------------------------


def test_a_session_opened_before_the_rekey_cannot_follow_nor_break_the_log(vault, vault_path):
    vault.set("k", "v")
    stale = Vault.open(vault_path, PASSWORD)  # its unlock record is queued, under the old key
    stale.peek("k")
    vault.rekey(PASSWORD)
    for attempt in (lambda: stale.set("k", "overwritten"), stale.verify_audit, stale.audit_records,
                    lambda: stale.record("copy", "k"), lambda: stale.get("k")):
        with pytest.raises(ConcurrencyError, match="re-keyed"):
            attempt()
    stale.lock()  # does not raise: its queued unlock record went to the pending file
    assert AuditFiles.beside(vault_path).pending.exists()
    vault.lock()
    with Vault.open(vault_path, PASSWORD) as opened:
        assert opened.value("k") == "v"
        ops = [(r.event.op, r.event.actor.pid) for r in opened.audit_records()]
        assert ops[-4:-2] == [("rekey", os.getpid()), ("unlock", os.getpid())]  # the stale one, folded in
        assert opened.verify_audit() == len(ops)


# -- killed mid-rekey ------------------------------------------------------------------------------


def test_staging_files_of_a_rekey_killed_before_its_commit_are_removed(vault, vault_path, monkeypatch):
    vault.set("k", "v")
    vault.lock()
    files = AuditFiles.beside(vault_path)
    # by hand: a half-written log, and a head under a key nobody has
    files.staged_log.write_bytes(b'{"actor":{"exe":"x","kind":"cli","pid":1},"det')
    files.staged_head.write_bytes(json.dumps({"mac": "00" * 32, "seq": 9, "tag": random_bytes(32).hex()}).encode())
    before = vault_path.read_bytes()
    with Vault.open(vault_path, PASSWORD) as opened:
        assert not staging(vault_path)
        assert opened.verify_audit()
        assert [r.event.outcome for r in opened.audit_records() if r.event.op == "rekey"] == ["interrupted"]
    assert vault_path.read_bytes() == before

    # and what a real re-key killed just before its vault file was replaced leaves
    with Vault.open(vault_path, PASSWORD) as session:
        monkeypatch.setattr(vault_api, "atomic_write", kill)
        monkeypatch.setattr(AuditLog, "discard_staged", lambda self: None)  # a kill cleans nothing up
        with pytest.raises(Killed):
            session.rekey(PASSWORD)
        monkeypatch.undo()
        assert len(staging(vault_path)) == 2
        session._wipe()  # the killed process is gone
    with Vault.open(vault_path, PASSWORD) as opened:
        assert not staging(vault_path)
        assert opened.value("k") == "v" and opened.generation == parse_file(before).header.generation
        assert opened.verify_audit()


@pytest.mark.parametrize("log_renamed", [False, True], ids=["before-the-log-rename", "between-the-renames"])
def test_a_rekey_killed_after_its_commit_is_rolled_forward_at_the_next_open(vault, vault_path, monkeypatch,
                                                                          log_renamed):
    populate(vault)
    records = audit_rows(vault)
    files = AuditFiles.beside(vault_path)
    old_log = files.log.read_bytes()

    def killed(self):
        if log_renamed:
            os.replace(files.staged_log, files.log)
        raise Killed()

    monkeypatch.setattr(AuditLog, "commit_staged", killed)
    with pytest.raises(Killed):
        vault.rekey(PASSWORD)
    monkeypatch.undo()
    vault._wipe()  # the killed process is gone
    # the new vault file is in place beside the old log (or the new log beside the old head)
    assert (files.log.read_bytes() == old_log) is not log_renamed
    for path in staging(vault_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(staging(vault_path)) == (1 if log_renamed else 2)

    with Vault.open(vault_path, PASSWORD) as opened:
        assert not staging(vault_path)
        assert opened.verify_audit() == len(records) + 2  # rekey, and this unlock
        rows = audit_rows(opened)
        assert rows[:len(records)] == records and rows[len(records)][2:4] == ("rekey", "ok")
        reader = opened.audit_reader()
        lines, _ = reader.page(reader.end(), reader.matcher(AuditFilter(name="db/main/password")))
        assert len(lines) == 2
        assert opened.value("brokers/ibkr/api_key") == "second value"
