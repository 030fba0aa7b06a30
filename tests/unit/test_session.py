"""Quick unlock: after a password + key unlock, locking keeps the vault key only sealed under
a fresh hardware output; a touch reopens it, within a window and a failure budget."""

from __future__ import annotations

import pytest

from its_desktop.core.audit import Actor
from its_desktop.core.errors import VaultLocked, WrongCredentials
from its_desktop.core.vault.api import Vault
from its_desktop.factors import hardware
from its_desktop.factors.base import QuietPrompter
from its_desktop.services.session import QuickUnlockPolicy, Session
from tests.conftest import FAST_KDF, PASSWORD


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def keyed_vault(tmp_path, monkeypatch):
    monkeypatch.setenv("ITS_EMULATED_KEYS", str(tmp_path / "keys.json"))
    path = tmp_path / "vault.its"
    with Vault.create(path, PASSWORD, kdf=FAST_KDF) as vault:
        vault.set("brokers/ibkr/api_key", "IBKR-SECRET")
        hardware.enroll(vault, hardware.list_keys("yubikey")[0], PASSWORD, QuietPrompter(), "yk", {"otp_slot": 2})  # slot 2 wants a touch
        hardware.enroll(vault, hardware.list_keys("fido2")[0], PASSWORD, QuietPrompter(), "fido")
    return path


def _session(path, clock, **policy) -> Session:
    return Session(path, Actor.current("gui"), QuickUnlockPolicy(**policy), clock=clock)


@pytest.mark.parametrize("kind", ["yubikey", "fido2"])
def test_lock_then_touch_reopens_without_the_password(keyed_vault, kind):
    clock = Clock()
    session = _session(keyed_vault, clock)
    vault = session.unlock(PASSWORD, QuietPrompter(), kind)
    key = vault._key
    session.lock()
    assert session.is_locked and session.can_quick_unlock()
    assert key is not None and not any(key), "the plaintext vault key is wiped while locked"
    reopened = session.quick_unlock(QuietPrompter())
    assert reopened.get("brokers/ibkr/api_key").value == "IBKR-SECRET"
    details = [r.event.detail or "" for r in reopened.audit_records() if r.event.op == "unlock"]
    assert details[-1].startswith(f"quick unlock with {kind}")
    reopened.verify_audit()


def test_quick_unlock_repeats_and_re_arms_each_time(keyed_vault):
    session = _session(keyed_vault, Clock())
    session.unlock(PASSWORD, QuietPrompter(), "yubikey")
    inputs = set()
    for _ in range(3):
        session.lock()
        vault = session.quick_unlock(QuietPrompter())
        inputs.add(next(s for s in vault.slots if s.kind == "yubikey").params["challenge"])
    assert len(inputs) == 3, "every quick unlock re-arms the slot with a new challenge"
    session.lock(quick=False)
    with Vault.open(keyed_vault, PASSWORD) as v:  # the password still opens, the key slot still works
        assert v.get("brokers/ibkr/api_key").value == "IBKR-SECRET"
    again = _session(keyed_vault, Clock())
    again.unlock(PASSWORD, QuietPrompter(), "yubikey")


def test_window_expiry_requires_the_full_unlock(keyed_vault):
    clock = Clock()
    session = _session(keyed_vault, clock, window_seconds=60)
    session.unlock(PASSWORD, QuietPrompter(), "fido2")
    session.lock()
    clock.now += 61
    assert not session.can_quick_unlock()
    with pytest.raises(VaultLocked):
        session.quick_unlock(QuietPrompter())


def test_failed_touches_use_up_quick_unlock(keyed_vault, monkeypatch):
    session = _session(keyed_vault, Clock(), max_failed_touches=2)
    session.unlock(PASSWORD, QuietPrompter(), "yubikey")
    session.lock()
    monkeypatch.setenv("ITS_EMULATED_TOUCH", "never")
    monkeypatch.setenv("ITS_EMULATED_TOUCH_TIMEOUT", "0.2")
    for _ in range(2):
        with pytest.raises(WrongCredentials):
            session.quick_unlock(QuietPrompter())
    monkeypatch.setenv("ITS_EMULATED_TOUCH", "immediate")
    assert not session.can_quick_unlock()
    with pytest.raises(VaultLocked):
        session.quick_unlock(QuietPrompter())


def test_another_key_cannot_quick_unlock(keyed_vault, tmp_path, monkeypatch):
    session = _session(keyed_vault, Clock())
    session.unlock(PASSWORD, QuietPrompter(), "fido2")
    session.lock()
    monkeypatch.setenv("ITS_EMULATED_KEYS", str(tmp_path / "other-keys.json"))
    with pytest.raises(WrongCredentials):
        session.quick_unlock(QuietPrompter())


def test_password_only_unlock_offers_no_quick_unlock(keyed_vault, monkeypatch):
    monkeypatch.delenv("ITS_EMULATED_KEYS")
    session = _session(keyed_vault, Clock())
    session.unlock(PASSWORD, QuietPrompter())
    session.lock()
    assert not session.can_quick_unlock()


def test_full_lock_forgets_everything(keyed_vault):
    session = _session(keyed_vault, Clock())
    session.unlock(PASSWORD, QuietPrompter(), "yubikey")
    session.lock(quick=False)
    assert not session.can_quick_unlock()
    assert session._sealed is None and session._armed is None


@pytest.mark.parametrize("kind", ["yubikey", "fido2"])
def test_step_up_with_a_touch_of_the_same_key(keyed_vault, tmp_path, monkeypatch, kind):
    session = _session(keyed_vault, Clock())
    session.unlock(PASSWORD, QuietPrompter(), kind)
    assert session.can_confirm_with_key()
    assert session.confirm_with_key(QuietPrompter())
    monkeypatch.setenv("ITS_EMULATED_KEYS", str(tmp_path / "other-keys.json"))
    assert not session.confirm_with_key(QuietPrompter())
    outcomes = [r.event.outcome for r in session.vault.audit_records() if r.event.op == "reauth"]
    assert outcomes == ["ok", "failed"]


def test_the_unlock_record_is_written_by_the_unlock_itself(keyed_vault, monkeypatch):
    """The GUI unlocks on a worker thread; the first reader of the log must not pay the fsync."""
    from its_desktop.core.audit import AuditFiles

    monkeypatch.delenv("ITS_EMULATED_KEYS")
    session = _session(keyed_vault, Clock())
    before = AuditFiles.beside(keyed_vault).log.read_bytes().count(b"\n")
    vault = session.unlock(PASSWORD, QuietPrompter())
    assert not vault._queued
    assert AuditFiles.beside(keyed_vault).log.read_bytes().count(b"\n") == before + 1
