"""Every unlock factor, in one explicit tuple. A test fails when a factor lacks its CLI
choice, its device discovery or its emulated-device test (tests/unit/test_factor_registry.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Factor:
    kind: str  # the key slot's kind, and the word the CLI uses
    title: str
    hardware: bool


FACTORS: tuple[Factor, ...] = (
    Factor("password", "Master password", hardware=False),
    Factor("yubikey", "YubiKey (HMAC-SHA1 challenge-response)", hardware=True),
    Factor("fido2", "FIDO2 key (hmac-secret)", hardware=True),
    Factor("recovery", "Recovery code", hardware=False),
    Factor("tpm2", "This workstation's TPM 2.0 + PIN", hardware=False),
)
HARDWARE_KINDS: tuple[str, ...] = tuple(f.kind for f in FACTORS if f.hardware)
KINDS: tuple[str, ...] = tuple(f.kind for f in FACTORS)
