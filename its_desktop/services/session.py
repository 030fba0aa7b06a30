"""The app's unlocked session, and quick unlock with a hardware key.

After a full unlock with password + key, locking (idle, screen lock) keeps the vault key only
sealed under a key derived from the hardware key's output for a fresh input: the plaintext key
is wiped, and reopening needs a touch of that key (and its PIN, if it has one), not the
password. Each quick unlock asks the key for that input and the next one in one go, re-arms the
on-disk slot with the next, and seals the next lock under it, so no output is ever used twice.
The sealed state lives only in this process's memory: an app restart, the end of the window
(8 hours by default) or too many failed touches mean a full unlock again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from ..core.audit import Actor
from ..core.crypto import KEY_SIZE, AuthenticationFailed, constant_time_equal, hkdf, open_sealed, random_bytes, seal
from ..core.errors import IncorrectFactor, VaultLocked, WrongCredentials
from ..core.secrets import utcnow
from ..core.vault.api import Vault
from ..factors.base import Prompter
from ..factors.hardware import INPUT_SIZE, Rearm, list_keys, openers_for

DEFAULT_WINDOW = 8 * 3600.0
DEFAULT_MAX_FAILED_TOUCHES = 3
_INFO = b"its-desktop/v1/quick-unlock"


@dataclass(frozen=True)
class QuickUnlockPolicy:
    window_seconds: float = DEFAULT_WINDOW
    max_failed_touches: int = DEFAULT_MAX_FAILED_TOUCHES


@dataclass(repr=False)
class _Sealed:
    """The locked session: vault key and stretched password under the quick key."""

    rearm: Rearm  # its stretched/next_output are wiped; slot, key and next_input remain
    blob: bytes
    failures: int = 0


@dataclass
class Session:
    path: Path
    actor: Actor
    policy: QuickUnlockPolicy = field(default_factory=QuickUnlockPolicy)
    clock: Callable[[], float] = time.monotonic  # for the quick-unlock window
    vault_clock: Callable[[], datetime] = utcnow  # for what the vault stamps (injectable in tests)
    vault: Vault | None = None
    _armed: Rearm | None = field(default=None, repr=False)
    _sealed: _Sealed | None = field(default=None, repr=False)
    _full_unlock_at: float = 0.0

    # -- full unlock --------------------------------------------------------------------------

    def unlock(self, password: str, prompter: Prompter, kind: str | None = None) -> Vault:
        """Full unlock: a plugged-in enrolled key + password (arming quick unlock), else the
        password slot."""
        self.lock(quick=False)
        from ..core.vault.header import peek_header

        openers = openers_for(peek_header(self.path).slots, password, prompter, kind, on_rearm=self._keep)
        self.vault = Vault.open(self.path, password, openers=tuple(openers), actor=self.actor, clock=self.vault_clock)
        self.vault.flush_audit()  # here, on the caller's (worker) thread
        self._full_unlock_at = self.clock()
        return self.vault

    def unlock_with_tpm(self, pin: str) -> Vault:
        """Full unlock with this workstation's TPM and its PIN (no password, no quick unlock:
        the PIN is as quick)."""
        self.lock(quick=False)
        from ..factors.tpm2 import TpmOpener

        self.vault = Vault.open(self.path, openers=(TpmOpener(pin),), actor=self.actor, clock=self.vault_clock)
        self.vault.flush_audit()
        self._full_unlock_at = self.clock()
        return self.vault

    def _keep(self, rearm: Rearm) -> None:
        if self._armed is not None:
            self._armed.wipe()
        self._armed = rearm

    # -- re-authentication ------------------------------------------------------------------

    def can_confirm_with_key(self) -> bool:
        return self._armed is not None and not self.is_locked

    def confirm_with_key(self, prompter: Prompter) -> bool:
        """Step-up with a touch: the key that unlocked this session must give the output it
        gave at unlock for the slot's current input (compared in constant time)."""
        armed = self._armed
        if armed is None:
            return False
        params = {**armed.slot.params, armed.key.input_param: _b64(armed.next_input)}
        try:
            keys = [k for k in list_keys(armed.key.kind) if k.serves(armed.slot)]
            (output,) = keys[0].respond(params, [armed.next_input], prompter) if keys else (b"",)
        except WrongCredentials:
            output = b""
        ok = bool(output) and constant_time_equal(bytes(output), bytes(armed.next_output))
        if self.vault is not None:
            self.vault.record("reauth", outcome="ok" if ok else "failed", detail=f"touch of {armed.slot.kind} key")
        return ok

    # -- locking ------------------------------------------------------------------------------

    def lock(self, quick: bool = True) -> None:
        """Lock. With ``quick`` and a hardware-armed session inside its window, keep the vault
        key sealed for a touch to reopen; otherwise forget everything."""
        vault, self.vault = self.vault, None
        armed, self._armed = self._armed, None
        if vault is not None and not vault.is_locked and armed is not None and quick and self._in_window():
            vault_key = vault._require_key()
            quick_key = hkdf(bytes(armed.next_output), _INFO)
            self._sealed = _Sealed(armed, seal(quick_key, bytes(vault_key) + bytes(armed.stretched), _INFO))
            armed.wipe()  # what stays is the slot, the key and the input to ask it for
        elif armed is not None:
            armed.wipe()
        if not quick:
            self._sealed = None
        if vault is not None:
            vault.lock()

    @property
    def is_locked(self) -> bool:
        return self.vault is None or self.vault.is_locked

    def can_quick_unlock(self) -> bool:
        return self._sealed is not None and self._in_window()

    def _in_window(self) -> bool:
        return self.clock() - self._full_unlock_at <= self.policy.window_seconds

    # -- quick unlock -------------------------------------------------------------------------

    def _count_failed_touch(self, sealed: _Sealed) -> None:
        sealed.failures += 1
        if sealed.failures >= self.policy.max_failed_touches:
            self._sealed = None  # from now on only the full unlock

    def quick_unlock(self, prompter: Prompter) -> Vault:
        """Reopen with a touch of the key that armed this session. Raises VaultLocked when a
        full unlock is needed, WrongCredentials when the touch failed (counted)."""
        sealed = self._sealed
        if sealed is None or not self._in_window():
            self._sealed = None
            raise VaultLocked("quick unlock is not available: unlock with the password")
        armed = sealed.rearm
        fresh = random_bytes(INPUT_SIZE)
        params = {**armed.slot.params, armed.key.input_param: _b64(armed.next_input)}
        try:
            keys = [k for k in list_keys(armed.key.kind) if k.serves(armed.slot)]
            if not keys:
                raise IncorrectFactor()
            output, next_output = keys[0].respond(params, [armed.next_input, fresh], prompter)
            plain = open_sealed(hkdf(output, _INFO), sealed.blob, _INFO)
        except (IncorrectFactor, AuthenticationFailed):
            self._count_failed_touch(sealed)
            raise WrongCredentials("that key did not unlock the session") from None
        except WrongCredentials:  # a touch timeout, a wrong PIN
            self._count_failed_touch(sealed)
            raise
        vault_key, stretched = bytearray(plain[:KEY_SIZE]), bytearray(plain[KEY_SIZE:])
        self._sealed = None
        self.vault = Vault.open_with_key(self.path, vault_key, actor=self.actor, clock=self.vault_clock,
                                         detail=f"quick unlock with {armed.slot.kind} slot {armed.slot.id}")
        rearm = Rearm(armed.slot, keys[0], fresh, stretched, bytearray(next_output))
        rearmed = self.vault.replace_slot(rearm.slot.id, rearm.rearmed_slot)
        if rearmed is not None:
            rearm.slot = rearmed
        self._keep(rearm)
        self.vault.flush_audit()
        return self.vault


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")
