"""The tamper sweep: every byte of a small vault file flipped in turn, and the file cut at every
length. Each damaged file is refused as damage (``VaultCorrupted``, exit 5 in the CLI), never
read as a wrong password and never opened with a value; nothing is written to it or beside it,
and nothing but a typed error comes out.

The CLI is driven in-process (``its_desktop.cli.main.main``, the console script's own function,
with its argument parser built once: that is 97 % of an in-process call), so every byte goes
through the same path as ``its-vault get``, the error mapping included. A few real subprocesses
check what the terminal shows: exit 5, one line on stderr, no traceback.

A second sweep plays the attacker who recomputes the unkeyed checksum (docs/vault-format.md:
the checksum catches accidents, the AEAD catches an attacker): a change to the header or body
must still never open, and reads as damage, except where it breaks the very slot being
opened (the vault id, or the password slot itself), which is "this password does not open
this slot": ``WrongCredentials``, exit 3, as the format documents.

``ITS_TAMPER_FULL=1`` (``make soak``): a vault of 40 secrets, all eight bits and 0xFF at every
byte.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from its_desktop.cli import main as cli_main
from its_desktop.core.crypto import checksum
from its_desktop.core.errors import VaultCorrupted, WrongCredentials
from its_desktop.core.vault import header as hdr
from its_desktop.core.vault.api import Vault, _open_body
from its_desktop.core.vault.slots import open_password_slot
from tests.conftest import FAST_KDF, ITS_VAULT, PASSWORD

from . import figures

FULL = os.environ.get("ITS_TAMPER_FULL") == "1"
NAME = "brokers/ibkr/api_key"


def _no_wait(seconds: float) -> None:
    """Failed unlocks slow the next ones down; a sweep of them must not sleep."""


def _make_vault(folder: Path, extra: int) -> tuple[Path, dict[str, str]]:
    """A small vault: secrets with fields and history, and the audit records of making them."""
    path = folder / "vault.its"
    with Vault.create(path, PASSWORD, kdf=FAST_KDF) as vault:
        vault.set(NAME, "IBKR-KEY-0001", type="api_key", fields={"account": "U1234567"}, tags={"env": "prod"})
        vault.set(NAME, "IBKR-KEY-0002")
        vault.set("db/main", "pg-pass-ÅØ", type="password", fields={"user": "bot", "dbname": "ticks"})
        for i in range(extra):
            vault.set(f"bots/b{i:02}/token", f"token-{i}", fields={"n": str(i)})
            if i % 3 == 0:
                vault.set(f"bots/b{i:02}/token", f"token-{i}-v2")
        expected = {n: vault.get(n).value for n in vault.names()}
        assert vault.verify_audit() >= 3
    return path, expected


def _siblings(folder: Path, vault: Path) -> dict[str, bytes]:
    """Every other file of the vault's folder (audit log, head, lock), by content."""
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p != vault}


@pytest.fixture
def in_process_cli(tmp_path, monkeypatch):
    """``main(argv)`` with the test password in the environment, no agent, a private log
    folder, and the argument parser built once."""
    for key in list(os.environ):
        if key.startswith("ITS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ITS_MASTER_PASSWORD", PASSWORD)
    monkeypatch.setenv("ITS_AGENT_DIR", str(tmp_path / "agent"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    parser = cli_main.build_parser()
    monkeypatch.setattr(cli_main, "build_parser", lambda: parser)
    return cli_main.main


def _masks(offset: int) -> tuple[int, ...]:
    """One bit (a different one from byte to byte) and every bit; every bit of it in full mode."""
    if FULL:
        return (1, 2, 4, 8, 16, 32, 64, 128, 0xFF)
    return (1 << (offset % 8), 0xFF)


@pytest.mark.slow
def test_every_flipped_byte_and_every_truncation_is_refused_with_exit_5(tmp_path, in_process_cli, capsys):
    folder = tmp_path / "vault"
    path, expected = _make_vault(folder, 40 if FULL else 0)
    original = path.read_bytes()
    with Vault.open(path, PASSWORD) as vault:  # the sweep's reference: the sound file opens
        assert {n: vault.get(n).value for n in vault.names()} == expected
    assert in_process_cli(["--vault", str(path), "get", NAME]) == 0
    assert capsys.readouterr().out == expected[NAME] + "\n"
    around = _siblings(folder, path)
    argv = ["--vault", str(path), "get", NAME]

    def refused(damaged: bytes, what: str) -> None:
        path.write_bytes(damaged)
        try:
            Vault.open(path, PASSWORD, wait=_no_wait).lock()
        except VaultCorrupted:
            pass
        except Exception as error:  # noqa: BLE001 - the point: name what escaped, and where
            pytest.fail(f"{what}: Vault.open raised {type(error).__name__}: {error}")
        else:
            pytest.fail(f"{what}: the damaged vault opened")
        code = in_process_cli(argv)
        out, err = capsys.readouterr()
        assert (code, out) == (5, ""), f"{what}: exit {code}, stderr {err!r}"
        assert err.startswith("its-vault: error: ") and err.count("\n") == 1, f"{what}: stderr {err!r}"
        assert path.read_bytes() == damaged, f"{what}: the damaged file was changed"

    flipped = 0
    for offset in range(len(original)):
        for mask in _masks(offset):
            damaged = bytearray(original)
            damaged[offset] ^= mask
            refused(bytes(damaged), f"byte {offset} ^ {mask:#04x}")
            flipped += 1
    truncations = 0
    for length in range(len(original)):
        refused(original[:length], f"cut to {length} bytes")
        truncations += 1
    refused(original + b"\0", "one byte appended")

    assert _siblings(folder, path) == around, "a refused open wrote beside the vault"
    assert not (tmp_path / "state").exists(), "an unexpected error was logged"
    path.write_bytes(original)
    with Vault.open(path, PASSWORD) as vault:
        assert {n: vault.get(n).value for n in vault.names()} == expected
    figures.say("tamper", f"bytes flipped: {flipped} (every byte of a {len(original)}-byte vault, "
                          f"{len(_masks(0))} ways), truncations: {truncations}, all refused with exit 5")


def _with_checksum(data: bytes | bytearray) -> bytes:
    body = bytes(data[:-hdr.CHECKSUM_SIZE])
    return body + checksum(body)


def _opens_password_slot(header: hdr.VaultHeader, reference: hdr.VaultHeader) -> bool:
    """Whether the password slot ``reference`` opens is still there, as it was, in ``header``."""
    slot = next(s for s in reference.slots if s.kind == "password")
    return header.vault_id == reference.vault_id and slot in header.slots


@pytest.mark.slow
def test_a_change_under_a_recomputed_checksum_never_opens(tmp_path):
    """The attacker's sweep: every header byte flipped (checksum recomputed) is refused through
    ``Vault.open``; every body byte through the body's authentication (the key derived once)."""
    folder = tmp_path / "vault"
    path, _ = _make_vault(folder, 40 if FULL else 0)
    original = path.read_bytes()
    envelope = hdr.parse_file(original)
    reference = envelope.header
    body_start = len(envelope.aad)

    corrupted = wrong_credentials = 0
    for offset in range(body_start):
        for mask in _masks(offset):
            damaged = bytearray(original)
            damaged[offset] ^= mask
            damaged = _with_checksum(damaged)
            path.write_bytes(damaged)
            what = f"header byte {offset} ^ {mask:#04x} (checksum recomputed)"
            try:
                Vault.open(path, PASSWORD, wait=_no_wait).lock()
            except VaultCorrupted:
                corrupted += 1
            except WrongCredentials:
                # Only when the slot this password opens (or the vault id it is bound to) changed.
                changed = hdr.parse_file(damaged).header
                assert not _opens_password_slot(changed, reference), f"{what}: WrongCredentials"
                wrong_credentials += 1
            except Exception as error:  # noqa: BLE001
                pytest.fail(f"{what}: Vault.open raised {type(error).__name__}: {error}")
            else:
                pytest.fail(f"{what}: the tampered vault opened")
            assert path.read_bytes() == damaged

    slot = next(s for s in reference.slots if s.kind == "password")
    key = open_password_slot(slot, PASSWORD, reference.vault_id)
    assert len(_open_body(envelope, key)) >= 2
    bodies = 0
    for offset in range(body_start, len(original) - hdr.CHECKSUM_SIZE):
        for mask in _masks(offset):
            damaged = bytearray(original)
            damaged[offset] ^= mask
            try:
                _open_body(hdr.parse_file(_with_checksum(damaged)), key)
            except VaultCorrupted:
                bodies += 1
            except Exception as error:  # noqa: BLE001
                pytest.fail(f"body byte {offset} ^ {mask:#04x}: {type(error).__name__}: {error}")
            else:
                pytest.fail(f"body byte {offset} ^ {mask:#04x}: the tampered body opened")
    assert corrupted > wrong_credentials > 0
    figures.say("tamper-attacker", f"checksum recomputed: {corrupted + bodies} changes refused as damage, "
                                   f"{wrong_credentials} to the password slot or vault id refused as wrong "
                                   "credentials, none opened")


@pytest.mark.parametrize("damage", ["magic", "version", "header length", "header", "body", "checksum",
                                    "half", "empty"])
def test_the_real_command_says_one_line_and_exits_5(tmp_path, cli_env, damage):
    path, _ = _make_vault(tmp_path / "vault", 0)
    data = bytearray(path.read_bytes())
    body_start = len(hdr.parse_file(bytes(data)).aad)
    offsets = {"magic": 3, "version": 9, "header length": 12, "header": 40, "body": (body_start + len(data)) // 2,
               "checksum": len(data) - 1}
    if damage in offsets:
        data[offsets[damage]] ^= 0x10
    else:
        data = data[:len(data) // 2] if damage == "half" else bytearray()
    path.write_bytes(bytes(data))
    result = subprocess.run([*ITS_VAULT, "--vault", str(path), "get", NAME], env=cli_env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 5, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("its-vault: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_bytes() == bytes(data)
