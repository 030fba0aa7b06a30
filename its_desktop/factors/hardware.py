"""Hardware slots: enrol a key, unlock with password + key, re-arm, re-wrap on passwd.

KEK material = Argon2id(password, slot salt, slot KDF) ‖ device output(slot input), so the
password and the key are both needed. Each successful unlock asks the device for the current
input and a fresh one in the same session, then re-wraps the slot under the fresh one, so an
output captured once is useless afterwards (KeePassXC instead needs the key at every save).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ..core.crypto import Argon2Params, random_bytes, wipe
from ..core.errors import IncorrectFactor, VaultError
from ..core.vault import slots as slotlib
from ..core.vault.api import Vault
from ..core.vault.header import KeySlot
from .base import HardwareKey, Prompter
from .registry import HARDWARE_KINDS

INPUT_SIZE = 32


def list_keys(kind: str | None = None) -> list[HardwareKey]:
    """Every plugged-in hardware key of ``kind`` (or of both kinds)."""
    from .fido2 import list_fido2_keys
    from .yubikey import list_yubikeys

    keys: list[HardwareKey] = []
    if kind in (None, "yubikey"):
        keys.extend(list_yubikeys())
    if kind in (None, "fido2"):
        keys.extend(list_fido2_keys())
    return keys


def _input(slot_params: dict[str, Any], key: HardwareKey) -> bytes:
    return base64.b64decode(slot_params[key.input_param])


def _with_input(params: dict[str, Any], key: HardwareKey, value: bytes) -> dict[str, Any]:
    return {**params, key.input_param: base64.b64encode(value).decode("ascii")}


def _material(stretched: bytearray, output: bytes) -> bytearray:
    return bytearray(stretched) + bytearray(output)


def _password_kdf(vault: Vault) -> Argon2Params:
    """New hardware slots cost what the password slot costs."""
    existing = [s.kdf for s in vault.slots if s.kdf is not None]
    return existing[0] if existing else Argon2Params.default()


def enroll(vault: Vault, key: HardwareKey, password: str, prompter: Prompter, name: str,
           options: dict[str, Any] | None = None) -> KeySlot:
    """Add a slot for ``key`` bound to ``password``; returns it."""
    params = key.enroll(prompter, dict(options or {}))
    first = random_bytes(INPUT_SIZE)
    params = _with_input(params, key, first)
    (output,) = key.respond(params, [first], prompter)
    kdf = _password_kdf(vault)
    salt = random_bytes(slotlib.SALT_SIZE)
    stretched = slotlib.stretch_password(password, salt, kdf)
    material = _material(stretched, output)
    try:
        return vault.add_slot(lambda vault_key, vault_id: slotlib.make_slot(
            key.kind, name, material, salt, vault_key, vault_id, kdf=kdf, params=params))
    finally:
        wipe(stretched)
        wipe(material)


@dataclass
class Rearm:
    """What an unlock leaves for re-arming (and for a quick-unlock seal): wiped after use."""

    slot: KeySlot
    key: HardwareKey
    next_input: bytes
    stretched: bytearray = field(repr=False)
    next_output: bytearray = field(repr=False)

    def rearmed_slot(self, vault_key: bytearray, vault_id: str, on_disk: KeySlot) -> KeySlot | None:
        """The slot re-wrapped under the next input, or None when the slot on disk is no longer
        the one this unlock opened (a passwd or another unlock re-wrapped it meanwhile: re-arming
        from this unlock's password would bring an old password back)."""
        if on_disk.wrapped != self.slot.wrapped:
            return None
        material = _material(self.stretched, self.next_output)
        try:
            fresh = slotlib.make_slot(self.slot.kind, self.slot.name, material, self.slot.salt, vault_key, vault_id,
                                      kdf=self.slot.kdf, params=_with_input(self.slot.params, self.key, self.next_input),
                                      slot_id=self.slot.id)
        finally:
            wipe(material)
        return replace(fresh, created=self.slot.created)

    def wipe(self) -> None:
        wipe(self.stretched)
        wipe(self.next_output)


@dataclass(repr=False)
class HardwareOpener:
    """Unlock a hardware slot with the password and a plugged-in key of that kind."""

    password: str
    keys: list[HardwareKey]
    prompter: Prompter
    kinds: tuple[str, ...] = HARDWARE_KINDS
    on_rearm: Callable[[Rearm], None] | None = None  # a session may keep it for quick unlock
    _pending: Rearm | None = None

    def open(self, slot: KeySlot, vault_id: str) -> bytearray:
        candidates = [k for k in self.keys if k.serves(slot)]
        if not candidates:
            raise IncorrectFactor()
        for key in candidates:
            next_input = random_bytes(INPUT_SIZE)
            try:
                output, next_output = key.respond(slot.params, [_input(slot.params, key), next_input], self.prompter)
            except IncorrectFactor:
                continue
            assert slot.kdf is not None
            stretched = slotlib.stretch_password(self.password, slot.salt, slot.kdf)
            material = _material(stretched, output)
            try:
                vault_key = slotlib.open_with_material(slot, material, vault_id)
            except IncorrectFactor:
                wipe(stretched)
                raise
            finally:
                wipe(material)
            self._pending = Rearm(slot, key, next_input, stretched, bytearray(next_output))
            return vault_key
        raise IncorrectFactor()

    def after_unlock(self, vault: Vault, slot: KeySlot) -> None:
        rearm, self._pending = self._pending, None
        if rearm is None:
            return
        try:
            rearmed = vault.replace_slot(rearm.slot.id, rearm.rearmed_slot)
        except VaultError as exc:  # the unlock stands; the slot keeps its old input this time
            rearm.wipe()
            vault.record("factor-rearm", outcome="failed", detail=f"{slot.kind} slot {slot.id}: {exc}")
            return
        if rearmed is not None:
            rearm.slot = rearmed  # what is on disk now, for the next re-arm (quick unlock)
        if self.on_rearm is not None:
            self.on_rearm(rearm)
        else:
            rearm.wipe()


def openers_for(vault_slots: tuple[KeySlot, ...], password: str, prompter: Prompter,
                kind: str | None = None, on_rearm: Callable[[Rearm], None] | None = None) -> list[HardwareOpener]:
    """A hardware opener when the vault has hardware slots of ``kind`` and such a key is
    plugged in."""
    wanted = [s for s in vault_slots if s.kind in HARDWARE_KINDS and (kind is None or s.kind == kind)]
    if not wanted:
        return []
    keys = [k for k in list_keys(kind) if any(k.serves(s) for s in wanted)]
    # No matching key: no opener. The unlock then fails like any wrong factor (after the file
    # is verified, audited and counted), with the same message as a wrong password.
    return [HardwareOpener(password, keys, prompter, on_rearm=on_rearm)] if keys else []


def rewrap_for_new_password(vault: Vault, new_password: str, prompter: Prompter) -> tuple[
        Callable[[bytearray, str], list[KeySlot]], tuple[str, ...]]:
    """For ``passwd``: re-wrap every hardware slot whose key is plugged in under the new
    password (one touch each); the others are listed to be dropped, since they would keep
    opening with the old password."""
    plugged = list_keys()
    prepared: list[tuple[KeySlot, HardwareKey, bytes, bytes]] = []
    dropped: list[str] = []
    for slot in vault.slots:
        if slot.kind not in HARDWARE_KINDS:
            continue
        for key in (k for k in plugged if k.serves(slot)):
            fresh = random_bytes(INPUT_SIZE)
            try:
                (output,) = key.respond(slot.params, [fresh], prompter)
            except IncorrectFactor:
                continue
            prepared.append((slot, key, fresh, output))
            break
        else:
            dropped.append(slot.id)

    def rebuild(vault_key: bytearray, vault_id: str) -> list[KeySlot]:
        rebuilt = []
        for slot, key, fresh, output in prepared:
            assert slot.kdf is not None
            stretched = slotlib.stretch_password(new_password, slot.salt, slot.kdf)
            material = _material(stretched, output)
            try:
                made = slotlib.make_slot(slot.kind, slot.name, material, slot.salt, vault_key, vault_id, kdf=slot.kdf,
                                         params=_with_input(slot.params, key, fresh), slot_id=slot.id)
            finally:
                wipe(stretched)
                wipe(material)
            rebuilt.append(replace(made, created=slot.created))
        return rebuilt

    return rebuild, tuple(dropped)
