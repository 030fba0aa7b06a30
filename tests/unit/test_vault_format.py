"""The vault file format: round trip, every header field bound, and each error path."""

from __future__ import annotations

import json
import struct

import pytest

from its_desktop.core.crypto import Argon2Params, checksum
from its_desktop.core.errors import (
    InvalidInput,
    UnsupportedVersion,
    VaultBusy,
    VaultCorrupted,
    VaultExists,
    VaultLocked,
    VaultNotFound,
    WrongCredentials,
)
from its_desktop.core.vault import header as hdr
from its_desktop.core.vault.api import Vault
from its_desktop.core.vault.storage import writer_lock
from tests.conftest import FAST_KDF, PASSWORD


def _rewrite_header(path, edit) -> None:
    """Apply ``edit`` to the header JSON and write a file with a *valid* checksum, as a
    deliberate attacker would."""
    data = path.read_bytes()
    _, version, length = hdr.PREFIX.unpack_from(data)
    doc = json.loads(data[hdr.PREFIX.size:hdr.PREFIX.size + length])
    edit(doc)
    new_header = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    body = data[hdr.PREFIX.size + length:-hdr.CHECKSUM_SIZE]
    out = hdr.PREFIX.pack(hdr.MAGIC, version, len(new_header)) + new_header + body
    path.write_bytes(out + checksum(out))


def test_round_trip_keeps_everything(vault, vault_path):
    vault.set("a/b", "v1", type="password", fields={"username": "u", "host": "h"}, tags={"env": "prod"},
              description="desc")
    vault.set("a/b", "v2")
    vault.set("c", "x" * 10_000)
    generation = vault.generation
    vault.lock()
    with Vault.open(vault_path, PASSWORD) as again:
        s = again.get("a/b")
        assert (s.value, s.fields, s.tags, s.description, s.type.value) == (
            "v2", {"username": "u", "host": "h"}, {"env": "prod"}, "desc", "password")
        assert [v.value for v in s.history] == ["v1"]
        assert again.get("c").value == "x" * 10_000
        assert again.generation == generation


def test_file_has_magic_version_and_checksum(vault, vault_path):
    data = vault_path.read_bytes()
    assert data[:8] == b"ITSVAULT"
    assert struct.unpack(">H", data[8:10])[0] == 1
    assert data[-32:] == checksum(data[:-32])
    assert b"correct horse" not in data


def test_secret_values_are_not_in_the_file(vault, vault_path):
    vault.set("x", "PLAINTEXT-CANARY-123")
    assert b"PLAINTEXT-CANARY-123" not in vault_path.read_bytes()


def test_wrong_password(vault, vault_path):
    vault.lock()
    with pytest.raises(WrongCredentials):
        Vault.open(vault_path, "nope")


@pytest.mark.parametrize("position", [0, 9, 12, 40, -200, -40, -1])
def test_any_flipped_byte_reads_as_corruption_not_wrong_password(vault, vault_path, position):
    vault.set("x", "y")
    vault.lock()
    data = bytearray(vault_path.read_bytes())
    data[position] ^= 0x01
    vault_path.write_bytes(bytes(data))
    with pytest.raises(VaultCorrupted):
        Vault.open(vault_path, PASSWORD)
    assert vault_path.read_bytes() == bytes(data), "a refused file must be left untouched"


@pytest.mark.parametrize("keep", [0, 5, 14, 100, -33, -1])
def test_truncated_file_is_corrupted(vault, vault_path, keep):
    vault.lock()
    data = vault_path.read_bytes()
    vault_path.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(VaultCorrupted):
        Vault.open(vault_path, PASSWORD)


def test_foreign_file_is_refused(vault_path):
    vault_path.write_bytes(b"PK\x03\x04 this is a zip file, not a vault" * 10)
    with pytest.raises(VaultCorrupted, match="not an ITS vault"):
        Vault.open(vault_path, PASSWORD)


def test_newer_format_version_is_refused(vault, vault_path):
    vault.lock()
    data = bytearray(vault_path.read_bytes())
    data[8:10] = struct.pack(">H", 2)
    body = bytes(data[:-32])
    vault_path.write_bytes(body + checksum(body))
    with pytest.raises(UnsupportedVersion):
        Vault.open(vault_path, PASSWORD)


def test_missing_vault(tmp_path):
    with pytest.raises(VaultNotFound):
        Vault.open(tmp_path / "none.its", PASSWORD)


def test_create_refuses_to_overwrite(vault, vault_path):
    before = vault_path.read_bytes()
    with pytest.raises(VaultExists):
        Vault.create(vault_path, "other", kdf=FAST_KDF)
    assert vault_path.read_bytes() == before


HEADER_EDITS = {
    "generation": lambda d: d.update(generation=d["generation"] + 1),
    "created": lambda d: d.update(created="2000-01-01T00:00:00+00:00"),
    "vault_id": lambda d: d.update(vault_id="0" * 32),
    "kdf cost": lambda d: d["slots"][0]["kdf"].update(time_cost=d["slots"][0]["kdf"]["time_cost"] + 1),
    "slot salt": lambda d: d["slots"][0].update(salt=d["slots"][1]["salt"]),
    "slot name": lambda d: d["slots"][0].update(name="renamed"),
    "slot kind": lambda d: d["slots"][1].update(kind="password", kdf=d["slots"][0]["kdf"]),
    "slot params": lambda d: d["slots"][0]["params"].update(extra=1),
    "other slot removed": lambda d: d["slots"].pop(1),
    "slot order": lambda d: d["slots"].reverse(),
}


@pytest.mark.parametrize("edit", HEADER_EDITS.values(), ids=HEADER_EDITS.keys())
def test_every_header_field_is_bound(vault, vault_path, edit):
    """A deliberate header edit (checksum recomputed) never opens the vault."""
    vault.lock()
    _rewrite_header(vault_path, edit)
    with pytest.raises((VaultCorrupted, WrongCredentials)):
        Vault.open(vault_path, PASSWORD)


def test_kdf_downgrade_is_refused(tmp_path):
    path = tmp_path / "v.its"
    Vault.create(path, PASSWORD, kdf=Argon2Params(16 * 1024, 2, 1)).lock()
    _rewrite_header(path, lambda d: d["slots"][0]["kdf"].update(memory_kib=8192, time_cost=1))
    with pytest.raises((VaultCorrupted, WrongCredentials)):
        Vault.open(path, PASSWORD)


def test_header_edit_outside_the_slot_reads_as_tampering(vault, vault_path):
    vault.lock()
    _rewrite_header(vault_path, HEADER_EDITS["generation"])
    with pytest.raises(VaultCorrupted, match="tampered"):
        Vault.open(vault_path, PASSWORD)


def test_non_canonical_header_is_refused(vault, vault_path):
    vault.lock()
    data = vault_path.read_bytes()
    _, _, length = hdr.PREFIX.unpack_from(data)
    doc = json.loads(data[hdr.PREFIX.size:hdr.PREFIX.size + length])
    spaced = json.dumps(doc, sort_keys=True).encode()  # same values, other bytes
    body = data[hdr.PREFIX.size + length:-32]
    out = hdr.PREFIX.pack(hdr.MAGIC, 1, len(spaced)) + spaced + body
    vault_path.write_bytes(out + checksum(out))
    with pytest.raises(VaultCorrupted, match="canonical"):
        Vault.open(vault_path, PASSWORD)


def test_hostile_kdf_parameters_are_capped_before_any_work(vault, vault_path):
    vault.lock()
    _rewrite_header(vault_path, lambda d: d["slots"][0]["kdf"].update(memory_kib=64 * 1024 * 1024))
    with pytest.raises(VaultCorrupted, match="KDF"):
        Vault.open(vault_path, PASSWORD)


def test_weak_kdf_parameters_are_refused_at_create(tmp_path):
    with pytest.raises(InvalidInput):
        Vault.create(tmp_path / "v.its", PASSWORD, kdf=Argon2Params(1024, 1, 1))


def test_kdf_parameters_are_stored_per_slot(tmp_path):
    params = Argon2Params(9 * 1024, 2, 1)
    with Vault.create(tmp_path / "v.its", PASSWORD, kdf=params) as v:
        assert v.slots[0].kdf == params
        assert v.slots[1].kind == "recovery" and v.slots[1].kdf is None


def test_recovery_code_opens_and_is_shown_once(vault, vault_path):
    code = vault.take_recovery_code()
    assert code and vault.take_recovery_code() is None
    vault.set("k", "v")
    vault.lock()
    with Vault.open(vault_path, recovery_code=code.lower().replace("-", " ")) as v:
        assert v.get("k").value == "v"
    with pytest.raises(WrongCredentials):
        Vault.open(vault_path, recovery_code="A" * 32)


def test_new_recovery_code_revokes_the_old_one(vault, vault_path):
    old = vault.take_recovery_code()
    new = vault.add_recovery_slot()
    vault.lock()
    with pytest.raises(WrongCredentials):
        Vault.open(vault_path, recovery_code=old)
    Vault.open(vault_path, recovery_code=new).lock()


def test_change_password(vault, vault_path):
    vault.set("k", "v")
    vault.change_password("new password")
    vault.lock()
    with pytest.raises(WrongCredentials):
        Vault.open(vault_path, PASSWORD)
    with Vault.open(vault_path, "new password") as v:
        assert v.get("k").value == "v"


def test_removing_the_last_way_in_is_refused(vault):
    password_slot = vault.slots[0]
    with pytest.raises(InvalidInput, match="last way in"):
        vault.remove_slot(password_slot.id)


def test_lock_wipes_keys_and_refuses_use(vault):
    key = vault._key
    vault.lock()
    assert key is not None and not any(key)
    with pytest.raises(VaultLocked):
        vault.get("anything")
    with pytest.raises(VaultLocked):
        vault.set("x", "y")


def test_stale_session_sees_other_writers_changes(vault, vault_path):
    other = Vault.open(vault_path, PASSWORD)
    other.set("from-other", "1")
    vault.set("from-first", "2")  # must re-read and keep the other's write
    other.lock()
    assert sorted(vault.names()) == ["from-first", "from-other"]
    vault.lock()
    with Vault.open(vault_path, PASSWORD) as v:
        assert sorted(v.names()) == ["from-first", "from-other"]


def test_busy_lock_times_out(vault, vault_path, monkeypatch):
    monkeypatch.setenv("ITS_LOCK_TIMEOUT", "0.2")
    with writer_lock(vault_path):
        with pytest.raises(VaultBusy):
            vault.set("x", "y")
    assert "x" not in vault.names()


def test_failed_mutation_changes_nothing(vault, vault_path):
    vault.set("a", "1")
    before = vault_path.read_bytes()
    with pytest.raises(InvalidInput):
        vault.set("bad//name", "2")
    with pytest.raises(InvalidInput):
        vault.set("new-without-value")
    assert vault_path.read_bytes() == before


def test_repr_hides_values(vault):
    secret = vault.set("k", "TOPSECRET", fields={"password": "FIELDSECRET"})
    vault.set("k", "NEWSECRET")
    text = repr(secret) + repr(vault.peek("k")) + repr(vault.peek("k").history) + repr(vault)
    assert "TOPSECRET" not in text and "FIELDSECRET" not in text and "NEWSECRET" not in text


def test_history_keeps_last_ten_and_restores(vault):
    for i in range(15):
        vault.set("k", f"value-{i}")
    versions = vault.history("k")
    assert [v.version for v in versions] == list(range(5, 16))
    restored = vault.restore("k", 7)
    assert restored.value == "value-6" and restored.version == 16


def test_a_failed_save_loses_nothing_and_is_audited(vault, vault_path, monkeypatch):
    from its_desktop.core.vault import api

    vault.set("a", "1")
    before = vault_path.read_bytes()

    def disk_full(path, data):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(api, "atomic_write", disk_full)
    with pytest.raises(OSError):
        vault.set("b", "2")
    assert vault_path.read_bytes() == before
    assert vault.names() == ["a"]
    last = list(vault.audit_records())[-2:]
    assert [(r.event.op, r.event.outcome) for r in last] == [("create", "ok"), ("save", "failed")]
    vault.verify_audit()


def test_rotate_and_mark_rotated_re_arm_the_schedule(vault):
    from datetime import timedelta

    from its_desktop.core.rotation import RotationPolicy, RotationStatus

    vault.set("k", "v1", rotation=RotationPolicy(30))
    start = vault.peek("k").value_updated
    vault.clock = lambda: start + timedelta(days=40)
    assert vault.peek("k").status(vault.clock()) is RotationStatus.OVERDUE
    rotated = vault.rotate("k", "v2")
    assert (rotated.value, rotated.rotation_count, [v.value for v in rotated.history]) == ("v2", 1, ["v1"])
    assert rotated.status(vault.clock()) is RotationStatus.OK
    vault.clock = lambda: start + timedelta(days=80)
    marked = vault.mark_rotated("k")
    assert marked.value == "v2" and marked.rotation_count == 2 and marked.status(vault.clock()) is RotationStatus.OK
    assert [r.event.op for r in vault.audit_records()][-2:] == ["rotate", "rotate"]


def test_high_value_flag_and_password_check(vault):
    vault.set("big", "v", high_value=True)
    vault.set("big", tags={"x": "1"})
    assert vault.peek("big").high_value
    assert vault.check_password(PASSWORD) and not vault.check_password("nope")
    assert [r.event.outcome for r in vault.audit_records() if r.event.op == "reauth"] == ["ok", "failed"]


def test_summaries_list_metadata_without_decoding_records(vault, vault_path):
    from its_desktop.core.rotation import RotationPolicy

    vault.set("b/two", "v2", type="password", tags={"env": "prod"}, rotation=RotationPolicy(30, 5))
    vault.set("a/one", "v1", fields={"username": "u"}, description="first")
    vault.lock()
    with Vault.open(vault_path, PASSWORD) as again:
        rows = again.summaries()
        assert again._body._parsed == {}, "listing decoded a record"
        assert [r.name for r in rows] == ["a/one", "b/two"]
        assert rows[0].fields == ["username"] and rows[0].description == "first"
        assert rows[1].rotation_every_days == 30 and rows[1].notify_days == 5 and rows[1].tags == {"env": "prod"}
        for row in rows:
            assert row.metadata() == again.peek(row.name).metadata()
            assert row.status(again.clock()) is again.peek(row.name).status(again.clock())
        again.set("a/one", "changed", description="edited")
        assert again.summaries()[0].description == "edited"
        assert "v1" not in repr(again.summaries())


def test_settings_are_saved_audited_and_deletes_leave_tombstones(vault, vault_path):
    vault.change_settings(lambda s: s.setdefault("remotes", {}).update(desk={"type": "openbao"}), detail="remote add")
    vault.set("gone", "v")
    vault.delete("gone")
    assert "gone" in vault.settings()["tombstones"]
    vault.lock()
    with Vault.open(vault_path, PASSWORD) as again:
        settings = again.settings()
        assert settings["remotes"] == {"desk": {"type": "openbao"}} and "gone" in settings["tombstones"]
        settings["remotes"].clear()
        assert again.settings()["remotes"], "settings() hands out a copy"
        again.set("gone", "back")
        assert "gone" not in again.settings()["tombstones"]
        assert "settings" in [r.event.op for r in again.audit_records()]
