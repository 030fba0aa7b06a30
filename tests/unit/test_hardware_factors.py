"""Hardware key slots through the Python API, against the emulated keys (``ITS_EMULATED_KEYS``):
enrol, unlock with password + key, re-arm at every unlock (also when it races a password change),
wiping of the re-arm material, re-wrapping on a new password, and the back-off after failed
unlocks (``core.vault.throttle``) with an injected ``wait``, so nothing really sleeps.
"""

from __future__ import annotations

import base64
import stat
import time
from pathlib import Path

import pytest

from its_desktop.core.errors import IncorrectFactor, WrongCredentials
from its_desktop.core.vault import slots as slotlib
from its_desktop.core.vault import throttle
from its_desktop.core.vault.api import Vault
from its_desktop.core.vault.header import KeySlot, parse_file
from its_desktop.factors import hardware
from its_desktop.factors.base import PinRequired, QuietPrompter, WrongPin
from tests.conftest import FAST_KDF, PASSWORD

WRONG_PASSWORD = "not the master password"
NEW_PASSWORD = "an entirely new master password"
PIN = "8642"

# (kind, enrolment options): both YubiKey OTP slots (2 wants a touch, 1 does not) and FIDO2.
KINDS = [
    pytest.param("yubikey", {"otp_slot": 2}, id="yubikey-slot2"),
    pytest.param("yubikey", {"otp_slot": 1}, id="yubikey-slot1"),
    pytest.param("fido2", {}, id="fido2"),
]


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One emulated YubiKey and one emulated FIDO2 key, plugged in for this test only."""
    for name in ("ITS_EMULATED_KEYS_PIN", "ITS_EMULATED_TOUCH", "ITS_EMULATED_TOUCH_TIMEOUT", "ITS_FIDO2_PIN"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "keys" / "first.json"
    monkeypatch.setenv("ITS_EMULATED_KEYS", str(path))
    return path


def plug(monkeypatch: pytest.MonkeyPatch, path: Path | None) -> None:
    """Swap the plugged-in pair of keys for the pair in ``path`` (None: unplug both)."""
    if path is None:
        monkeypatch.delenv("ITS_EMULATED_KEYS", raising=False)
    else:
        monkeypatch.setenv("ITS_EMULATED_KEYS", str(path))


def enrol(vault: Vault, kind: str, options: dict, password: str = PASSWORD,
          prompter: QuietPrompter | None = None) -> KeySlot:
    (key,) = hardware.list_keys(kind)
    return hardware.enroll(vault, key, password, prompter or QuietPrompter(), f"my {kind}", options)


def slots_on_disk(path: Path) -> tuple[KeySlot, ...]:
    return parse_file(path.read_bytes()).header.slots


def slot_on_disk(path: Path, slot_id: str) -> KeySlot:
    (slot,) = [s for s in slots_on_disk(path) if s.id == slot_id]
    return slot


def _no_wait(seconds: float) -> None:
    raise AssertionError(f"unexpected back-off wait of {seconds} s")


def open_with_key(path: Path, password: str, kind: str | None = None, prompter: QuietPrompter | None = None,
                  wait=_no_wait) -> Vault:
    """Unlock with password + plugged-in key only: no password-only opener is offered."""
    openers = hardware.openers_for(slots_on_disk(path), password, prompter or QuietPrompter(), kind)
    return Vault.open(path, openers=tuple(openers), wait=wait)


def last_unlock_detail(vault: Vault) -> str | None:
    unlocks = [r.event for r in vault.audit_records() if r.event.op == "unlock" and r.event.outcome == "ok"]
    return unlocks[-1].detail


def remove_password_slot(vault: Vault) -> None:
    (password_slot,) = [s for s in vault.slots if s.kind == slotlib.PASSWORD]
    vault.remove_slot(password_slot.id)


# -- enrol and unlock ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, options", KINDS)
def test_enrol_then_password_and_key_open_the_vault(vault, vault_path, keys, kind, options):
    vault.set("k", "the value")
    slot = enrol(vault, kind, options)
    assert slot.kind == kind and slot.name == f"my {kind}"
    assert slot.id in {s.id for s in slots_on_disk(vault_path)}
    password_slot = next(s for s in vault.slots if s.kind == slotlib.PASSWORD)
    assert slot.kdf == password_slot.kdf == FAST_KDF  # a key slot costs what the password slot costs
    if kind == "yubikey":
        (yubikey,) = hardware.list_keys("yubikey")
        assert slot.params["serial"] == yubikey.serial
        assert slot.params["otp_slot"] == options["otp_slot"]
        assert len(base64.b64decode(slot.params["challenge"])) == 32
    else:
        assert slot.params["rp_id"] == "its-desktop"
        assert slot.params["pin"] is False and slot.params["up"] is True and slot.params["uv"] == "discouraged"
        assert len(base64.b64decode(slot.params["credential_id"])) > 16
        assert len(base64.b64decode(slot.params["salt"])) == 32
    vault.lock()

    for forced in (None, kind):
        with open_with_key(vault_path, PASSWORD, forced) as opened:
            assert opened.value("k") == "the value"
            assert last_unlock_detail(opened) == f"{kind} slot {slot.id}"


def test_both_kinds_enrolled_each_opens_on_its_own(vault, vault_path, keys):
    vault.set("k", "v")
    yubikey = enrol(vault, "yubikey", {"otp_slot": 1})
    fido2 = enrol(vault, "fido2", {})
    remove_password_slot(vault)
    vault.lock()
    for kind, slot in (("yubikey", yubikey), ("fido2", fido2)):
        with open_with_key(vault_path, PASSWORD, kind) as opened:
            assert last_unlock_detail(opened) == f"{kind} slot {slot.id}"
            assert opened.value("k") == "v"


@pytest.mark.parametrize("kind, options", KINDS)
def test_wrong_password_with_the_right_key_is_refused(vault, vault_path, keys, kind, options):
    enrol(vault, kind, options)
    vault.lock()
    before = vault_path.read_bytes()
    with pytest.raises(WrongCredentials):
        open_with_key(vault_path, WRONG_PASSWORD)
    with pytest.raises(WrongCredentials):
        open_with_key(vault_path, WRONG_PASSWORD, kind)
    assert vault_path.read_bytes() == before  # a failed unlock re-arms nothing
    assert throttle.read_failures(vault_path).count == 2


@pytest.mark.parametrize("kind, options", KINDS)
def test_right_password_with_another_key_is_refused(vault, vault_path, keys, kind, options, monkeypatch):
    enrol(vault, kind, options)
    remove_password_slot(vault)
    vault.lock()
    plug(monkeypatch, keys.with_name("someone-elses.json"))
    with pytest.raises(WrongCredentials):
        open_with_key(vault_path, PASSWORD)
    plug(monkeypatch, None)
    with pytest.raises(WrongCredentials) as missing:  # no key: the same refusal as a wrong one
        open_with_key(vault_path, PASSWORD)
    assert str(missing.value) == "wrong password or key"
    plug(monkeypatch, keys)
    with open_with_key(vault_path, PASSWORD) as opened:
        assert not opened.is_locked


def test_openers_for_offers_a_key_only_when_one_is_plugged(vault, vault_path, keys, monkeypatch):
    prompter = QuietPrompter()
    assert hardware.openers_for(vault.slots, PASSWORD, prompter) == []  # no hardware slot at all
    enrol(vault, "fido2", {})
    assert len(hardware.openers_for(vault.slots, PASSWORD, prompter)) == 1
    assert len(hardware.openers_for(vault.slots, PASSWORD, prompter, "fido2")) == 1
    assert hardware.openers_for(vault.slots, PASSWORD, prompter, "yubikey") == []  # no such slot
    plug(monkeypatch, None)
    assert hardware.openers_for(vault.slots, PASSWORD, prompter) == []
    assert hardware.openers_for(vault.slots, PASSWORD, prompter, "fido2") == []  # Vault.open then refuses


def test_two_fido2_keys_are_alternatives(vault, vault_path, keys, monkeypatch):
    first = enrol(vault, "fido2", {})
    plug(monkeypatch, keys.with_name("second.json"))
    second = enrol(vault, "fido2", {})
    remove_password_slot(vault)
    vault.lock()
    for path, slot in ((keys, first), (keys.with_name("second.json"), second)):
        plug(monkeypatch, path)
        with open_with_key(vault_path, PASSWORD) as opened:
            assert last_unlock_detail(opened) == f"fido2 slot {slot.id}"
    plug(monkeypatch, keys.with_name("third.json"))
    with pytest.raises(WrongCredentials):
        open_with_key(vault_path, PASSWORD)


def test_a_pin_protected_fido2_key_replays_user_verification(vault, vault_path, keys, monkeypatch):
    monkeypatch.setenv("ITS_EMULATED_KEYS_PIN", PIN)  # before the key file exists
    with pytest.raises(PinRequired):
        enrol(vault, "fido2", {})
    slot = enrol(vault, "fido2", {}, prompter=QuietPrompter(given_pin=PIN))
    assert slot.params["pin"] is True and slot.params["uv"] == "required"
    remove_password_slot(vault)
    vault.lock()
    with pytest.raises(PinRequired):
        open_with_key(vault_path, PASSWORD)
    with pytest.raises(WrongPin):
        open_with_key(vault_path, PASSWORD, prompter=QuietPrompter(given_pin="0000"))
    with open_with_key(vault_path, PASSWORD, prompter=QuietPrompter(given_pin=PIN)) as opened:
        assert last_unlock_detail(opened) == f"fido2 slot {slot.id}"


# -- re-arm ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, options", KINDS)
def test_every_unlock_rearms_the_slot_and_it_still_opens(vault, vault_path, keys, kind, options):
    slot = enrol(vault, kind, options)
    remove_password_slot(vault)
    vault.lock()
    (key,) = hardware.list_keys(kind)
    seen_inputs = {slot.params[key.input_param]}
    seen_wrapped = {slot.wrapped}
    previous = slot
    for _ in range(3):
        with open_with_key(vault_path, PASSWORD) as opened:
            assert not opened.is_locked
        now = slot_on_disk(vault_path, slot.id)
        # the same slot (id, name, salt, KDF, creation time), wrapped under a fresh input
        assert (now.kind, now.name, now.salt, now.kdf, now.created) == \
               (slot.kind, slot.name, slot.salt, slot.kdf, slot.created)
        assert now.params[key.input_param] not in seen_inputs
        assert now.wrapped not in seen_wrapped
        assert {k: v for k, v in now.params.items() if k != key.input_param} == \
               {k: v for k, v in slot.params.items() if k != key.input_param}
        seen_inputs.add(now.params[key.input_param])
        seen_wrapped.add(now.wrapped)

        # The device's output for the previous input (what an eavesdropper could have captured)
        # still opens the previous slot, but not the re-armed one.
        (captured,) = key.respond(previous.params, [base64.b64decode(previous.params[key.input_param])],
                                  QuietPrompter())
        material = slotlib.stretch_password(PASSWORD, previous.salt, previous.kdf) + bytearray(captured)
        assert len(slotlib.open_with_material(previous, material, vault.vault_id)) == 32
        with pytest.raises(IncorrectFactor):
            slotlib.open_with_material(now, material, vault.vault_id)
        previous = now


class _Spy:
    """Wraps a HardwareOpener's ``open`` to catch the Rearm it leaves for ``after_unlock``."""

    def __init__(self, opener: hardware.HardwareOpener) -> None:
        self.rearms: list[hardware.Rearm] = []
        self.copies: list[tuple[bytes, bytes]] = []
        inner = opener.open

        def open(slot: KeySlot, vault_id: str) -> bytearray:
            result = inner(slot, vault_id)
            pending = opener._pending
            assert pending is not None
            self.rearms.append(pending)
            self.copies.append((bytes(pending.stretched), bytes(pending.next_output)))
            return result

        opener.open = open  # type: ignore[method-assign]


@pytest.mark.parametrize("kind, options", KINDS)
def test_rearm_material_is_wiped_unless_handed_to_on_rearm(vault, vault_path, keys, kind, options):
    slot = enrol(vault, kind, options)
    remove_password_slot(vault)
    vault.lock()

    (opener,) = hardware.openers_for(slots_on_disk(vault_path), PASSWORD, QuietPrompter())
    assert opener.on_rearm is None
    spy = _Spy(opener)
    with Vault.open(vault_path, openers=(opener,), wait=_no_wait):
        pass
    (rearm,) = spy.rearms
    ((stretched, next_output),) = spy.copies
    assert rearm.slot.id == slot.id
    assert len(stretched) == 32 and any(stretched)  # there was something to wipe
    assert len(next_output) in (20, 32) and any(next_output)
    assert rearm.stretched == bytearray(len(stretched))
    assert rearm.next_output == bytearray(len(next_output))
    assert opener._pending is None

    # With on_rearm the session takes the material over: handed on intact, for it to wipe.
    handed: list[hardware.Rearm] = []
    (opener,) = hardware.openers_for(slots_on_disk(vault_path), PASSWORD, QuietPrompter())
    opener.on_rearm = handed.append
    spy = _Spy(opener)
    with Vault.open(vault_path, openers=(opener,), wait=_no_wait):
        pass
    assert handed == spy.rearms and len(handed) == 1
    assert bytes(handed[0].stretched) == spy.copies[0][0] and any(handed[0].stretched)
    assert bytes(handed[0].next_output) == spy.copies[0][1] and any(handed[0].next_output)
    handed[0].wipe()
    assert not any(handed[0].stretched) and not any(handed[0].next_output)


# -- passwd ----------------------------------------------------------------------------------------


def test_new_password_rewraps_plugged_keys_and_drops_the_others(vault, vault_path, keys, monkeypatch):
    other = keys.with_name("not-plugged.json")
    yubikey = enrol(vault, "yubikey", {"otp_slot": 2})
    plug(monkeypatch, other)
    absent = enrol(vault, "fido2", {})
    plug(monkeypatch, keys)
    fido2 = enrol(vault, "fido2", {})
    rebuild, dropped = hardware.rewrap_for_new_password(vault, NEW_PASSWORD, QuietPrompter())
    assert dropped == (absent.id,)
    vault.change_password(NEW_PASSWORD, rebuilt=rebuild, dropped=dropped)
    assert {s.id for s in slots_on_disk(vault_path)} >= {yubikey.id, fido2.id}
    assert absent.id not in {s.id for s in slots_on_disk(vault_path)}
    remove_password_slot(vault)
    vault.lock()
    for kind in ("yubikey", "fido2"):
        with pytest.raises(WrongCredentials):
            open_with_key(vault_path, PASSWORD, kind)
        with open_with_key(vault_path, NEW_PASSWORD, kind) as opened:
            assert last_unlock_detail(opened) == f"{kind} slot {(yubikey if kind == 'yubikey' else fido2).id}"


@pytest.mark.parametrize("kind, options", [KINDS[0], KINDS[2]])
def test_a_rearm_racing_a_password_change_does_not_bring_the_old_password_back(vault, vault_path, keys, kind,
                                                                              options):
    """An unlock re-arms its slot after the key answered (after the touch): a password change
    saved by another process in between must stand, for the key slot too."""
    slot = enrol(vault, kind, options)
    vault.lock()
    (opener,) = hardware.openers_for(slots_on_disk(vault_path), PASSWORD, QuietPrompter())
    inner = opener.open

    def open_while_another_process_changes_the_password(slot: KeySlot, vault_id: str) -> bytearray:
        result = inner(slot, vault_id)  # the key has answered for the current and the next input
        with Vault.open(vault_path, PASSWORD, wait=_no_wait) as other:
            rebuild, dropped = hardware.rewrap_for_new_password(other, NEW_PASSWORD, QuietPrompter())
            assert dropped == ()
            other.change_password(NEW_PASSWORD, rebuilt=rebuild, dropped=dropped)
        return result

    opener.open = open_while_another_process_changes_the_password  # type: ignore[method-assign]
    with Vault.open(vault_path, openers=(opener,), wait=_no_wait):
        pass
    try:
        open_with_key(vault_path, NEW_PASSWORD, kind).lock()
    except WrongCredentials:
        pytest.fail(f"after passwd, the racing re-arm re-wrapped the {kind} slot under the old password: "
                    "the new password + key no longer opens")
    with pytest.raises(WrongCredentials):
        open_with_key(vault_path, PASSWORD, kind)
    assert slot_on_disk(vault_path, slot.id).kind == kind


# -- back-off --------------------------------------------------------------------------------------


@pytest.mark.parametrize("count, expected", [
    (0, 0.0), (1, 0.0), (2, 0.0), (3, 1.0), (4, 2.0), (5, 4.0), (6, 8.0), (7, 16.0), (8, 32.0),
    (9, 60.0), (10, 60.0), (200, 60.0),
])
def test_failures_delay_schedule(count, expected):
    assert throttle.Failures(count, 1000.0).delay(1000.0) == expected


def test_failures_delay_never_overflows_however_many_failures():
    # the count only grows while attempts keep failing (and anything can be in the file)
    for count in (1026, 1027, 5000, 10**9):
        assert throttle.Failures(count, 1000.0).delay(1000.0) == throttle.MAX_DELAY


def test_failures_delay_is_at_most_a_minute_even_after_a_clock_step_back():
    # the clock stepped back an hour after the failure (NTP, a wrong RTC): still at most 60 s
    assert throttle.Failures(3, 10_000.0).delay(10_000.0 - 3600) <= throttle.MAX_DELAY
    assert throttle.Failures(9, 10_000.0).delay(10_000.0 - 3600) <= throttle.MAX_DELAY


def test_failures_delay_counts_from_the_last_failure():
    assert throttle.Failures(4, 1000.0).delay(1000.5) == 1.5
    assert throttle.Failures(4, 1000.0).delay(1002.0) == 0.0
    assert throttle.Failures(4, 1000.0).delay(9999.0) == 0.0
    assert throttle.Failures().delay(time.time()) == 0.0


def test_record_and_clear_failures(tmp_path):
    path = tmp_path / "vault.its"
    assert throttle.read_failures(path) == throttle.Failures(0, 0.0)
    before = time.time()
    first = throttle.record_failure(path)
    second = throttle.record_failure(path)
    assert (first.count, second.count) == (1, 2)
    assert before <= first.last <= second.last <= time.time()
    assert throttle.read_failures(path) == second
    (counter,) = [p for p in tmp_path.iterdir()]
    assert stat.S_IMODE(counter.stat().st_mode) & 0o077 == 0
    throttle.clear_failures(path)
    assert throttle.read_failures(path).count == 0
    assert list(tmp_path.iterdir()) == []
    throttle.clear_failures(path)  # nothing to clear is fine
    counter.write_text("not json")
    assert throttle.read_failures(path) == throttle.Failures()
    assert throttle.record_failure(path).count == 1


def test_a_long_run_of_failures_still_lets_the_right_password_in(vault, vault_path):
    """Someone kept guessing for a day (1027 failures at up to 60 s each): the owner still gets in,
    after at most a minute."""
    vault.lock()
    for _ in range(1027):
        throttle.record_failure(vault_path)
    waits: list[float] = []
    with Vault.open(vault_path, PASSWORD, wait=waits.append) as opened:
        assert not opened.is_locked
    assert len(waits) == 1 and 50 < waits[0] <= throttle.MAX_DELAY
    assert throttle.read_failures(vault_path).count == 0


def test_vault_open_waits_with_the_right_delay_after_three_failures(vault, vault_path, keys, monkeypatch):
    vault.set("k", "v")
    enrol(vault, "fido2", {})
    vault.lock()
    waits: list[float] = []
    plug(monkeypatch, keys.with_name("someone-elses.json"))
    attempts = [
        lambda: Vault.open(vault_path, WRONG_PASSWORD, wait=waits.append),  # wrong password
        lambda: open_with_key(vault_path, PASSWORD, "fido2", wait=waits.append),  # wrong key
        lambda: Vault.open(vault_path, recovery_code="A" * 32, wait=waits.append),  # wrong code
        lambda: Vault.open(vault_path, WRONG_PASSWORD, wait=waits.append),
        lambda: Vault.open(vault_path, WRONG_PASSWORD, wait=waits.append),
    ]
    for number, attempt in enumerate(attempts, 1):
        with pytest.raises(WrongCredentials):
            attempt()
        assert throttle.read_failures(vault_path).count == number
        if number <= 3:
            assert waits == [], f"waited before attempt {number + 1}"
    assert len(waits) == 2
    assert 0.5 < waits[0] <= 1.0  # before attempt 4: 1 s after the third failure
    assert 1.5 < waits[1] <= 2.0  # before attempt 5: 2 s after the fourth
    plug(monkeypatch, keys)
    with open_with_key(vault_path, PASSWORD, "fido2", wait=waits.append) as opened:
        assert len(waits) == 3 and 3.5 < waits[2] <= 4.0
        failed = [r.event.detail for r in opened.audit_records()
                  if r.event.op == "unlock" and r.event.outcome == "failed"]
        assert failed == [f"failed attempt {n} in a row" for n in range(1, 6)]
    assert throttle.read_failures(vault_path).count == 0  # a success clears the count
    with Vault.open(vault_path, PASSWORD, wait=waits.append):
        pass
    assert len(waits) == 3

