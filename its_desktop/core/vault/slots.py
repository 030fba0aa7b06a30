"""Key slots: the vault key wrapped once per way in, as in LUKS or age.

A slot's key-encryption key (KEK) is HKDF over the factor's key material, bound to the slot's
kind and id. The password slot's material is Argon2id(password); the recovery slot's is a
high-entropy code; the hardware slots (``factors/``) add a device response to the Argon2id
output, so both are needed. The wrapped key's AEAD binds the vault id, slot id and kind, so a
slot cannot be moved to another vault or relabelled.
"""

from __future__ import annotations

import base64
import secrets
import unicodedata
from datetime import datetime, timezone

from ..crypto import (
    KEY_SIZE,
    Argon2Params,
    AuthenticationFailed,
    argon2id,
    hkdf,
    open_sealed,
    random_bytes,
    seal,
    wipe,
)
from ..errors import IncorrectFactor, InvalidInput
from .header import KeySlot

PASSWORD = "password"
RECOVERY = "recovery"
SALT_SIZE = 32
RECOVERY_CODE_BYTES = 20  # 160 bits: far beyond brute force, so no stretching is needed
_CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def new_slot_id() -> str:
    from ..secrets import new_id

    return new_id()[:16]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def password_bytes(password: str) -> bytes:
    """NFC-normalise so the same password typed on another OS or keyboard layout still opens."""
    if not password:
        raise InvalidInput("the master password must not be empty")
    return unicodedata.normalize("NFC", password).encode("utf-8")


def stretch_password(password: str, salt: bytes, params: Argon2Params) -> bytearray:
    return bytearray(argon2id(password_bytes(password), salt, params))


def slot_kek(material: bytes | bytearray, kind: str, slot_id: str, salt: bytes) -> bytearray:
    info = b"its-desktop/v1/kek/" + kind.encode() + b"/" + slot_id.encode()
    return bytearray(hkdf(bytes(material), info, salt=salt))


def _wrap_aad(vault_id: str, slot_id: str, kind: str) -> bytes:
    return b"its-desktop/v1/slot|" + vault_id.encode() + b"|" + slot_id.encode() + b"|" + kind.encode()


def wrap_key(kek: bytearray, vault_key: bytearray, vault_id: str, slot_id: str, kind: str) -> bytes:
    return seal(bytes(kek), bytes(vault_key), _wrap_aad(vault_id, slot_id, kind))


def unwrap_key(kek: bytearray, slot: KeySlot, vault_id: str) -> bytearray:
    """Raises IncorrectFactor when this slot does not open with this KEK."""
    try:
        key = open_sealed(bytes(kek), slot.wrapped, _wrap_aad(vault_id, slot.id, slot.kind))
    except AuthenticationFailed:
        raise IncorrectFactor() from None
    if len(key) != KEY_SIZE:
        raise IncorrectFactor()
    return bytearray(key)


def make_slot(kind: str, name: str, kek_material: bytes | bytearray, salt: bytes, vault_key: bytearray,
              vault_id: str, kdf: Argon2Params | None = None, params: dict | None = None,
              slot_id: str | None = None) -> KeySlot:
    """Build a slot whose KEK comes from ``kek_material`` (already stretched where needed)."""
    slot_id = slot_id or new_slot_id()
    kek = slot_kek(kek_material, kind, slot_id, salt)
    try:
        wrapped = wrap_key(kek, vault_key, vault_id, slot_id, kind)
    finally:
        wipe(kek)
    return KeySlot(id=slot_id, kind=kind, name=name, created=now_iso(), salt=salt, wrapped=wrapped,
                   kdf=kdf, params=dict(params or {}))


def new_password_slot(password: str, vault_key: bytearray, vault_id: str, kdf: Argon2Params,
                      name: str = "master password") -> KeySlot:
    salt = random_bytes(SALT_SIZE)
    stretched = stretch_password(password, salt, kdf)
    try:
        return make_slot(PASSWORD, name, stretched, salt, vault_key, vault_id, kdf=kdf)
    finally:
        wipe(stretched)


def open_password_slot(slot: KeySlot, password: str, vault_id: str) -> bytearray:
    assert slot.kdf is not None
    stretched = stretch_password(password, slot.salt, slot.kdf)
    try:
        return open_with_material(slot, stretched, vault_id)
    finally:
        wipe(stretched)


def open_with_material(slot: KeySlot, material: bytes | bytearray, vault_id: str) -> bytearray:
    """Derive the slot's KEK from its factor's material and unwrap; the KEK is wiped after."""
    kek = slot_kek(material, slot.kind, slot.id, slot.salt)
    try:
        return unwrap_key(kek, slot, vault_id)
    finally:
        wipe(kek)


def new_recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(RECOVERY_CODE_BYTES)).decode("ascii")
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def recovery_code_bytes(code: str) -> bytes:
    """Accept the code however it was typed: any case, with or without dashes and spaces."""
    cleaned = "".join(ch for ch in code.upper() if ch not in "- \t\r\n")
    if len(cleaned) != 32 or any(ch not in _CODE_ALPHABET for ch in cleaned):
        raise IncorrectFactor("that is not a valid recovery code")
    return base64.b32decode(cleaned)


def new_recovery_slot(vault_key: bytearray, vault_id: str, name: str = "recovery code") -> tuple[KeySlot, str]:
    code = new_recovery_code()
    salt = random_bytes(SALT_SIZE)
    slot = make_slot(RECOVERY, name, recovery_code_bytes(code), salt, vault_key, vault_id)
    return slot, code


def open_recovery_slot(slot: KeySlot, code: str, vault_id: str) -> bytearray:
    return open_with_material(slot, recovery_code_bytes(code), vault_id)
