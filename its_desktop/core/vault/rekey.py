"""Re-keying: a new random vault key, every key slot re-wrapped, body and audit chain re-sealed.

A leaked vault key (a memory dump, a debugger, a copied process) opens every backup of the file
it came from; re-keying makes the copies on disk from now on useless to it. The order makes it
atomic (docs/vault-format.md, "Re-keying"):

1. under the writer lock, on the newest file, the slots are re-wrapped under a new random key
   (the password must open the password slots);
2. the audit chain is verified with the old key and, in the same pass, re-sealed under the new
   one into staging files beside the live ones (``<vault>.audit.rekey``,
   ``<vault>.audit-head.rekey``), fsynced; a chain that does not verify is never re-sealed
   (that would launder the tampering);
3. the new vault file replaces the old one: the commit point;
4. the staging files are renamed over the live log and head (``AuditLog.commit_staged``).

A process killed between 3 and 4 leaves a new-key vault beside an old-key log; whoever next opens
the vault or appends to its log settles that first (``AuditLog.settle``): a staged head that
authenticates under the key that opens the vault is rolled forward, anything else is stale and
deleted. So the vault opens with the old key or the new one, never neither, and its log always
verifies under the key that opens it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from ..audit import AuditEvent, AuditLog
from ..crypto import KEY_SIZE, AuthenticationFailed, constant_time_equal, open_sealed, random_bytes, wipe
from ..errors import AuditTampered, IncorrectFactor, InvalidInput, VaultError, WrongCredentials
from . import slots as slotlib
from .body import Body
from .header import KeySlot, VaultHeader, parse_file
from .storage import read_snapshot

HardwareRebuild = Callable[[bytearray, str], list[KeySlot]]


@dataclass(frozen=True, repr=False)
class Rewrap:
    """How the slots get the new key: password slots with ``password`` (which must open them),
    hardware slots through ``rebuild_hardware(new key, vault id)`` (same ids), the slots in
    ``dropped`` removed (keys that were not plugged in)."""

    password: str
    rebuild_hardware: HardwareRebuild | None = None
    dropped: tuple[str, ...] = ()


@dataclass(repr=False)
class Rekeyed:
    """A committed re-key: what the vault object continues with (the old key is its to wipe)."""

    key: bytearray
    header: VaultHeader
    audit: AuditLog
    recovery_code: str | None = None


def rekey_locked(path: Path, header: VaultHeader, body: Body, old_key: bytearray, audit: AuditLog, how: Rewrap,
                 event: Callable[[str], AuditEvent], save: Callable[[VaultHeader, bytearray], None]) -> Rekeyed:
    """Steps 1 to 3 above, under the writer lock the caller holds, on the newest file. ``save``
    writes ``body`` (whose anchor this sets to the re-sealed head) under a header and key.
    Raises only before the commit point, with nothing changed on disk (except when it cannot
    tell whether a failed save landed: the staging files then stay for the next settle)."""
    new_key = bytearray(random_bytes(KEY_SIZE))
    staged = AuditLog(path, new_key, header.vault_id)
    try:
        slots, code, detail = rewrapped_slots(header, old_key, new_key, how)
        new_header = replace(header, generation=header.generation + 1, slots=tuple(slots))
        body.anchor = audit.reseal(staged, [event(detail)], body.anchor)
        try:
            save(new_header, new_key)
        except BaseException:
            committed = _opens_with(path, new_key)
            if committed is False:
                staged.discard_staged()
            if not committed:  # (unknown: the staging stays for a settle with the key on disk)
                raise
            # The new file is in place; only what followed its rename (the folder's fsync) failed.
        return Rekeyed(new_key, new_header, staged, code)
    except BaseException:
        staged.wipe()
        wipe(new_key)
        raise


def rewrapped_slots(header: VaultHeader, old_key: bytearray, new_key: bytearray,
                    how: Rewrap) -> tuple[list[KeySlot], str | None, str]:
    """The slots under ``new_key``, a new recovery code if the vault had a recovery slot (the
    old code cannot be re-wrapped without being typed), and the audit detail. Ids, names and
    creation times are kept; password slots get a new salt. Never leaves only the recovery
    code as a way in, and refuses to leave a slot that would still hold the old key."""
    vault_id = header.vault_id
    check_password(header, old_key, how.password)
    rebuilt = {s.id: s for s in (how.rebuild_hardware(new_key, vault_id) if how.rebuild_hardware else [])}
    slots: list[KeySlot] = []
    code: str | None = None
    for slot in header.slots:
        if slot.kind == slotlib.PASSWORD:
            slots.append(_password_slot(slot, how.password, new_key, vault_id))
        elif slot.kind == slotlib.RECOVERY:
            if code is None:  # one recovery code: a second slot (never made by us) is revoked
                recovery, code = slotlib.new_recovery_slot(new_key, vault_id, name=slot.name)
                slots.append(recovery)
        elif slot.id in rebuilt:
            slots.append(rebuilt[slot.id])
        elif slot.id not in how.dropped:
            raise InvalidInput(f"cannot re-key: {slot.kind} slot {slot.id} was not re-wrapped "
                               "(plug its key in, or remove it)")
    if not any(s.kind != slotlib.RECOVERY for s in slots):
        raise InvalidInput("refusing to re-key: no way in would be left but the recovery code")
    removed = sum(1 for s in header.slots if s.kind not in (slotlib.PASSWORD, slotlib.RECOVERY) and s.id not in rebuilt)
    rewrapped = len(slots) - (code is not None)
    detail = f"{rewrapped} key slot{'' if rewrapped == 1 else 's'} re-wrapped"
    detail += f", {removed} removed" if removed else ""
    detail += ", recovery code replaced" if code is not None else ""
    return slots, code, detail


def check_password(header: VaultHeader, vault_key: bytearray, password: str) -> None:
    """``password`` must open every password slot, to this very key: re-wrapping them with a
    password the user did not unlock with would change it behind their back. A vault without a
    password slot was unlocked with this password plus a key: the caller vouches for it."""
    for slot in header.slots:
        if slot.kind != slotlib.PASSWORD:
            continue
        try:
            opened = slotlib.open_password_slot(slot, password, header.vault_id)
        except IncorrectFactor:
            raise WrongCredentials("that is not the vault's master password") from None
        try:
            if not constant_time_equal(bytes(opened), bytes(vault_key)):
                raise WrongCredentials("that is not the vault's master password")
        finally:
            wipe(opened)


def _password_slot(slot: KeySlot, password: str, new_key: bytearray, vault_id: str) -> KeySlot:
    assert slot.kdf is not None
    salt = random_bytes(slotlib.SALT_SIZE)
    stretched = slotlib.stretch_password(password, salt, slot.kdf)
    try:
        made = slotlib.make_slot(slot.kind, slot.name, stretched, salt, new_key, vault_id, kdf=slot.kdf,
                                 params=slot.params, slot_id=slot.id)
    finally:
        wipe(stretched)
    return replace(made, created=slot.created)


def _opens_with(path: Path, key: bytearray) -> bool | None:
    """Does the vault file on disk open with ``key``? None if it cannot be read to tell."""
    try:
        data, _ = read_snapshot(path)
        envelope = parse_file(data)
        open_sealed(key, envelope.sealed_body, envelope.aad)
        return True
    except AuthenticationFailed:
        return False
    except (OSError, VaultError):
        return None


def failure_detail(error: BaseException) -> str:
    """What a refused or failed re-key's audit record says (our messages carry no secret)."""
    if isinstance(error, AuditTampered):
        return "refused: the audit log does not verify"
    if isinstance(error, WrongCredentials):
        return "refused: wrong master password"
    if isinstance(error, VaultError):
        return f"refused: {error}"
    if isinstance(error, OSError):
        return f"save failed: {error.strerror or 'I/O error'}"
    return f"interrupted: {type(error).__name__}"
