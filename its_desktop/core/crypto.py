"""The few cryptographic primitives the vault format and the unlock factors use.

Nothing outside ``core.vault``, ``core.audit`` and ``factors`` should call these directly.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_SIZE = 32
NONCE_SIZE = 12

# Bounds on Argon2id parameters. The floor is what `--kdf-memory/--kdf-time` accept (with a
# warning below the defaults); the ceiling is what a file may ask of us, so that a hostile
# header cannot make us allocate gigabytes or spin for minutes.
MIN_MEMORY_KIB = 8 * 1024
MAX_MEMORY_KIB = 1024 * 1024
MIN_TIME_COST = 1
MAX_TIME_COST = 64
MAX_PARALLELISM = 16
DEFAULT_MEMORY_KIB = 64 * 1024
DEFAULT_TIME_COST = 3


class AuthenticationFailed(Exception):
    """An AEAD tag or MAC did not verify. Callers decide what that means."""


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost parameters, stored per key slot."""

    memory_kib: int = DEFAULT_MEMORY_KIB
    time_cost: int = DEFAULT_TIME_COST
    parallelism: int = 1

    @classmethod
    def default(cls) -> Argon2Params:
        return cls(DEFAULT_MEMORY_KIB, DEFAULT_TIME_COST, min(4, os.cpu_count() or 1))

    def within_bounds(self) -> bool:
        return (
            MIN_MEMORY_KIB <= self.memory_kib <= MAX_MEMORY_KIB
            and MIN_TIME_COST <= self.time_cost <= MAX_TIME_COST
            and 1 <= self.parallelism <= MAX_PARALLELISM
            and self.memory_kib >= 8 * self.parallelism
        )

    def below_defaults(self) -> bool:
        return self.memory_kib < DEFAULT_MEMORY_KIB or self.time_cost < DEFAULT_TIME_COST


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


def argon2id(secret: bytes, salt: bytes, params: Argon2Params) -> bytes:
    """Stretch a low-entropy secret (the master password) into 32 key bytes."""
    from argon2.low_level import Type, hash_secret_raw

    return hash_secret_raw(
        secret=secret,
        salt=salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=KEY_SIZE,
        type=Type.ID,
    )


def calibrate_argon2(target_seconds: float = 1.0, memory_kib: int = DEFAULT_MEMORY_KIB) -> Argon2Params:
    """Pick the time cost that makes one derivation take about ``target_seconds`` here."""
    parallelism = min(4, os.cpu_count() or 1)
    probe = Argon2Params(memory_kib, 1, parallelism)
    start = time.perf_counter()
    argon2id(b"calibration", b"\0" * 16, probe)
    per_pass = max(time.perf_counter() - start, 1e-4)
    time_cost = int(round(target_seconds / per_pass))
    return Argon2Params(memory_kib, max(MIN_TIME_COST, min(MAX_TIME_COST, time_cost)), parallelism)


def hkdf(key_material: bytes, info: bytes, salt: bytes | None = None, length: int = KEY_SIZE) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key_material)


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """AES-256-GCM with a fresh random nonce; returns nonce || ciphertext || tag."""
    nonce = os.urandom(NONCE_SIZE)
    return nonce + AESGCM(bytes(key)).encrypt(nonce, plaintext, associated_data)


def open_sealed(key: bytes, sealed: bytes | memoryview, associated_data: bytes) -> bytes:
    if len(sealed) < NONCE_SIZE + 16:
        raise AuthenticationFailed("sealed data too short")
    try:
        return AESGCM(bytes(key)).decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], associated_data)
    except InvalidTag:
        raise AuthenticationFailed("authentication tag mismatch") from None


def siv_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """Deterministic encryption (AES-SIV): equal names give equal ciphertexts, so the audit
    log can be searched by name without storing names in the clear."""
    return AESSIV(bytes(key)).encrypt(plaintext, None)


def siv_decrypt(key: bytes, ciphertext: bytes) -> bytes:
    try:
        return AESSIV(bytes(key)).decrypt(ciphertext, None)
    except InvalidTag:
        raise AuthenticationFailed("SIV tag mismatch") from None


def mac(key: bytes, *parts: bytes) -> bytes:
    h = hmac.new(bytes(key), digestmod=hashlib.sha256)
    for part in parts:
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def checksum(*parts: bytes | memoryview) -> bytes:
    """Unkeyed SHA-256 over the parts in order: tells accidental damage apart from a wrong
    password."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.digest()


def wipe(buffer: bytearray) -> None:
    """Overwrite key material in place. Immutable copies made by libraries cannot be wiped;
    docs/security-model.md says what Python can and cannot zero."""
    for i in range(len(buffer)):
        buffer[i] = 0
