"""The primitives and the KDF helpers."""

import subprocess
import sys

import pytest

from its_desktop.core import crypto
from its_desktop.core.vault import slots


def test_calibrate_targets_the_requested_time():
    import time

    params = crypto.calibrate_argon2(target_seconds=0.2, memory_kib=8 * 1024)
    assert params.memory_kib == 8 * 1024 and params.within_bounds()
    start = time.perf_counter()
    crypto.argon2id(b"pw", b"s" * 16, params)
    took = time.perf_counter() - start
    assert 0.05 < took < 0.8, f"calibrated derivation took {took:.3f}s for a 0.2s target"


def test_kdf_bounds():
    assert crypto.Argon2Params.default().within_bounds()
    assert not crypto.Argon2Params(4 * 1024, 3, 1).within_bounds()
    assert not crypto.Argon2Params(2 * 1024 * 1024, 3, 1).within_bounds()
    assert not crypto.Argon2Params(64 * 1024, 0, 1).within_bounds()
    assert crypto.Argon2Params(8 * 1024, 1, 1).below_defaults()


def test_seal_detects_any_change():
    key = crypto.random_bytes(32)
    sealed = crypto.seal(key, b"plaintext", b"aad")
    assert crypto.open_sealed(key, sealed, b"aad") == b"plaintext"
    for tampered in (sealed[:-1] + bytes([sealed[-1] ^ 1]), sealed[:20]):
        with pytest.raises(crypto.AuthenticationFailed):
            crypto.open_sealed(key, tampered, b"aad")
    with pytest.raises(crypto.AuthenticationFailed):
        crypto.open_sealed(key, sealed, b"other aad")


def test_password_normalisation_makes_composed_and_decomposed_equal():
    assert slots.password_bytes("caf\u00e9") == slots.password_bytes("cafe\u0301")


def test_recovery_codes_are_high_entropy_and_forgiving():
    code = slots.new_recovery_code()
    assert len(code.replace("-", "")) == 32 and code.count("-") == 7
    assert slots.recovery_code_bytes(code.lower().replace("-", " ")) == slots.recovery_code_bytes(code)
    assert len({slots.new_recovery_code() for _ in range(100)}) == 100


def test_wipe_zeroes_in_place():
    buf = bytearray(b"key material")
    crypto.wipe(buf)
    assert buf == bytearray(len(b"key material"))


def test_python_m_its_desktop_dispatches_to_the_cli():
    result = subprocess.run([sys.executable, "-m", "its_desktop", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("its-vault ")
