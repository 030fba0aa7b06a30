"""Rolling generations (core/vault/backups.py): one hard link per save, keep N, 0 turns them off,
a failure never costs the save, and no generation outlives a way in the vault has revoked."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from its_desktop.core.vault import backups
from its_desktop.core.vault.api import PasswordOpener, RecoveryOpener, Vault
from its_desktop.core.errors import WrongCredentials
from tests.conftest import FAST_KDF, PASSWORD

NEW_PASSWORD = "a brand new master password"


def numbers(vault: Vault) -> list[int]:
    return [g.number for g in backups.generations(vault.path)]


def opened_value(generation: Path, name: str, password: str = PASSWORD) -> str | None:
    copy = backups.open_copy(generation, [PasswordOpener(password)])
    try:
        secret = copy.body.get(name)
        return None if secret is None else secret.value
    finally:
        copy.wipe()


def test_each_save_keeps_the_file_it_replaces_as_a_generation(vault):
    assert numbers(vault) == []  # creating the vault is not a save over anything
    inode_of_init = os.stat(vault.path).st_ino
    vault.set("brokers/ibkr/api_key", "value-one", fields={"account": "U1"})
    assert numbers(vault) == [1]
    (first,) = backups.generations(vault.path)
    assert first.path == vault.path.with_name("vault.its.backups") / "vault.its.gen-000001"
    assert os.stat(first.path).st_ino == inode_of_init, "a hard link to the old file, not a copy"
    vault.set("brokers/ibkr/api_key", "value-two")
    vault.set("db/main/password", "value-three")
    assert numbers(vault) == [1, 2, 3] and vault.generation == 4
    folder = backups.folder_of(vault.path)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all(g.path.stat().st_mode & 0o777 == 0o600 for g in backups.generations(vault.path))


def test_a_generation_opens_with_the_master_password_and_holds_the_state_before_the_save(vault):
    vault.set("brokers/ibkr/api_key", "value-one", fields={"account": "U1"})
    vault.set("brokers/ibkr/api_key", "value-two")
    gen2 = backups.generations(vault.path)[-1].path
    copy = backups.open_copy(gen2, [PasswordOpener(PASSWORD)])
    try:
        secret = copy.body.get("brokers/ibkr/api_key")
        assert secret.value == "value-one" and secret.fields == {"account": "U1"} and copy.header.generation == 2
        assert copy.header.vault_id == vault.vault_id
    finally:
        copy.wipe()
    with pytest.raises(WrongCredentials):
        backups.open_copy(gen2, [PasswordOpener("not the password")])
    assert vault.get("brokers/ibkr/api_key").value == "value-two"


def test_keep_n_prunes_the_oldest_and_zero_turns_rolling_off(vault):
    vault.change_settings(lambda s: backups.set_keep(s, 3))  # itself a save, pruned at once
    for n in range(5):
        vault.set("bots/alpha/token", f"value-{n}")
    assert numbers(vault) == [4, 5, 6]
    assert opened_value(backups.generations(vault.path)[-1].path, "bots/alpha/token") == "value-3"

    vault.change_settings(lambda s: backups.set_keep(s, 0))
    assert numbers(vault) == [] and not backups.folder_of(vault.path).exists()
    vault.set("bots/alpha/token", "value-off")
    assert numbers(vault) == [] and not backups.folder_of(vault.path).exists()

    vault.change_settings(lambda s: backups.set_keep(s, 10))
    vault.set("bots/alpha/token", "value-on")
    assert numbers(vault) == [vault.generation - 2, vault.generation - 1]


def test_the_keep_setting_reads_defensively():
    assert backups.keep_of({}) == backups.DEFAULT_KEEP
    assert backups.keep_of({"backups": {"keep": 0}}) == 0
    for junk in ({"backups": 3}, {"backups": {"keep": -1}}, {"backups": {"keep": True}},
                 {"backups": {"keep": "5"}}, {"backups": {"keep": backups.MAX_KEEP + 1}}):
        assert backups.keep_of(junk) == backups.DEFAULT_KEEP


def test_a_link_that_fails_never_fails_the_save_and_is_audited(vault, monkeypatch):
    def no_links(*_args, **_kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(backups.os, "link", no_links)
    vault.set("exchanges/binance/secret", "value-kept-uniq")
    assert vault.get("exchanges/binance/secret").value == "value-kept-uniq"
    assert numbers(vault) == []
    failed = [r.event for r in vault.audit_records() if r.event.op == "backup"]
    assert [(e.outcome, e.detail) for e in failed] == [("failed", "generation 1 not kept: Operation not permitted")]
    assert vault.verify_audit() > 0

    monkeypatch.undo()
    vault.set("exchanges/binance/secret", "value-two")
    assert numbers(vault) == [2]


def test_a_save_that_fails_after_linking_leaves_a_harmless_link_reused_next_time(vault, monkeypatch):
    from its_desktop.core.vault import api

    vault.set("a/b", "one")
    real = api.atomic_write

    def disk_full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(api, "atomic_write", disk_full)
    with pytest.raises(OSError):
        vault.set("a/b", "two")
    gen2 = backups.generations(vault.path)[-1].path
    assert os.path.samefile(gen2, vault.path), "the file that is still the vault"
    monkeypatch.setattr(api, "atomic_write", real)
    vault.set("a/b", "three")
    assert numbers(vault) == [1, 2] and opened_value(gen2, "a/b") == "one"


def test_a_revoked_way_in_takes_every_generation_with_it(vault):
    """A new password, a new recovery code: an old generation would still open with the old
    one, so none is kept."""
    vault.set("a/b", "one")
    vault.set("a/b", "two")
    assert numbers(vault) == [1, 2]
    vault.change_password(NEW_PASSWORD, kdf=FAST_KDF)
    assert numbers(vault) == []
    vault.set("a/b", "three")
    (gen,) = backups.generations(vault.path)
    assert opened_value(gen.path, "a/b", NEW_PASSWORD) == "two"
    code = vault.add_recovery_slot()
    assert numbers(vault) == []
    vault.set("a/b", "four")
    (gen,) = backups.generations(vault.path)
    copy = backups.open_copy(gen.path, [RecoveryOpener(code)])
    copy.wipe()


def test_generations_from_before_a_rekey_or_of_another_vault_are_dropped(vault_path, vault):
    vault.set("a/b", "one")
    vault.set("a/b", "two")
    vault.rekey(PASSWORD)  # not a save through the hook: nothing linked under either key
    assert numbers(vault) == [1, 2]
    vault.set("a/b", "three")  # the next save notices the old-key generations
    assert numbers(vault) == [vault.generation - 1]
    vault.lock()

    for companion in [vault_path, *backups.companions(vault_path)]:
        if companion.is_file():
            companion.unlink()  # a vault deleted by hand, its generations left behind
    stale = backups.folder_of(vault_path) / "vault.its.gen-000050"
    os.link(backups.generations(vault_path)[-1].path, stale)
    with Vault.create(vault_path, NEW_PASSWORD, kdf=FAST_KDF) as fresh:
        fresh.set("c/d", "new vault")
        (gen,) = backups.generations(vault_path)
        assert gen.number == 1 and opened_value(gen.path, "c/d", NEW_PASSWORD) is None


def test_a_save_that_only_rearms_a_slot_keeps_no_generation(vault):
    """Every unlock with a hardware key re-wraps its slot (same id and salt): a generation of
    that would hold the same secrets as the vault and push the useful ones out."""
    from its_desktop.core.vault import slots as slotlib

    vault.set("a/b", "one")
    assert numbers(vault) == [1]

    def rewrapped(key, vault_id, slot):
        stretched = slotlib.stretch_password(PASSWORD, slot.salt, slot.kdf)
        return slotlib.make_slot(slot.kind, slot.name, stretched, slot.salt, key, vault_id, kdf=slot.kdf,
                                 slot_id=slot.id)

    (password_slot,) = [s for s in vault.slots if s.kind == slotlib.PASSWORD]
    assert vault.replace_slot(password_slot.id, rewrapped).wrapped != password_slot.wrapped
    assert numbers(vault) == [1]
    vault.set("a/b", "two")
    assert numbers(vault) == [1, 3]
