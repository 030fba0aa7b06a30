"""Unlock factors: password, recovery code, YubiKey, FIDO2 keys; and emulated devices."""
