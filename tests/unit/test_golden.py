"""Golden vaults: every format version's files open forever, with their expected outcomes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from its_desktop.core.crypto import checksum
from its_desktop.core.errors import VaultCorrupted, WrongCredentials
from its_desktop.core.vault.api import Vault

GOLDEN = Path(__file__).parents[1] / "data" / "golden"


@pytest.fixture
def v1(tmp_path) -> tuple[Path, dict]:
    for f in GOLDEN.glob("v1.its*"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path / "v1.its", json.loads((GOLDEN / "v1.json").read_text())


def test_v1_opens_with_password(v1):
    path, meta = v1
    with Vault.open(path, meta["password"]) as vault:
        assert vault.get("brokers/ibkr/api_key").value == "IBKR-KEY-0002"
        assert [v.value for v in vault.history("brokers/ibkr/api_key")] == ["IBKR-KEY-0001", "IBKR-KEY-0002"]
        db = vault.get("db/main")
        assert db.value == "pg-pass-ÅØ" and db.fields["dbname"] == "ticks" and db.type.value == "database"
        assert vault.get("notes/multi line").value == "line 1\nline 2\n"
        assert vault.verify_audit() > 0


def test_v1_opens_with_recovery_code(v1):
    path, meta = v1
    with Vault.open(path, recovery_code=meta["recovery_code"]) as vault:
        assert vault.get("db/main").fields["user"] == "bot"


def test_v1_wrong_password(v1):
    path, _ = v1
    with pytest.raises(WrongCredentials):
        Vault.open(path, "not it")


def test_v1_header_damage(v1):
    path, meta = v1
    data = bytearray(path.read_bytes())
    data[30] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(VaultCorrupted, match="checksum"):
        Vault.open(path, meta["password"])


def test_v1_body_mac_failure(v1):
    path, meta = v1
    data = bytearray(path.read_bytes()[:-32])
    data[-20] ^= 0x01  # inside the GCM ciphertext/tag, checksum recomputed
    path.write_bytes(bytes(data) + checksum(bytes(data)))
    with pytest.raises(VaultCorrupted, match="tampered"):
        Vault.open(path, meta["password"])
