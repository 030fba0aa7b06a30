"""The emulated YubiKey OTP application, driven only through the real yubikit session."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from threading import Event
from typing import Any

import pytest
from yubikit.core import PID, TimeoutError as YkTimeoutError
from yubikit.core.otp import CommandRejectedError, OtpConnection, OtpProtocol, calculate_crc
from yubikit.support import read_info
from yubikit.yubiotp import (
    SLOT,
    HmacSha1SlotConfiguration,
    YubiOtpSession,
    YubiOtpSlotConfiguration,
)

from its_desktop.factors.emulated.yubikey_otp import (
    EmulatedOtpConnection,
    TouchPolicy,
    crc16,
    emulated_serial,
    provision_hmac_slot,
)

STATUS_UPNEEDED = 2  # yubikit's on_keepalive code for "touch the key"


def expected(key: bytes, challenge: bytes) -> bytes:
    return hmac.new(key, challenge, hashlib.sha1).digest()


def session(state: dict[str, Any], touch: TouchPolicy = TouchPolicy.immediate()) -> YubiOtpSession:
    return YubiOtpSession(EmulatedOtpConnection(state, touch=touch))


def test_crc16_is_the_x25_crc_and_agrees_with_yubikit():
    assert crc16(b"123456789") ^ 0xFFFF == 0x906E  # CRC-16/X-25 check value
    for n in range(80):
        data = os.urandom(n)
        assert crc16(data) == calculate_crc(data)


def test_hmac_for_every_challenge_length_and_stable_across_json_round_trip():
    state: dict[str, Any] = {}
    key = os.urandom(20)
    first = session(state)
    first.put_configuration(SLOT.TWO, HmacSha1SlotConfiguration(key))

    challenges = [os.urandom(n) for n in range(1, 64)]
    challenges += [b"\0" * 5, b"ab\0\0", b"ab\1\1"]  # trailing runs of yubikit's padding bytes
    answers = {c: first.calculate_hmac_sha1(SLOT.TWO, c) for c in challenges}
    for c, answer in answers.items():
        assert answer == expected(key, c)

    # A 64-byte challenge in variable-length mode loses its trailing run of the last byte.
    for c in (os.urandom(63) + b"\x07", b"x" * 60 + b"\x07" * 4, b"\x09" * 64):
        assert first.calculate_hmac_sha1(SLOT.TWO, c) == expected(key, c.rstrip(c[-1:]))

    reborn = session(json.loads(json.dumps(state)))
    assert all(reborn.calculate_hmac_sha1(SLOT.TWO, c) == a for c, a in answers.items())


def test_fixed_length_mode_hashes_all_64_bytes():
    state: dict[str, Any] = {}
    key = os.urandom(20)
    s = session(state)
    s.put_configuration(SLOT.TWO, HmacSha1SlotConfiguration(key).lt64(False))
    challenge = b"y" * 60 + b"\x07" * 4
    assert s.calculate_hmac_sha1(SLOT.TWO, challenge) == expected(key, challenge)


def test_slots_are_independent_and_shown_in_the_config_state():
    state: dict[str, Any] = {}
    key1, key2 = os.urandom(20), os.urandom(20)
    s = session(state)
    assert not s.get_config_state().is_configured(SLOT.ONE)
    s.put_configuration(SLOT.ONE, HmacSha1SlotConfiguration(key1))
    s.put_configuration(SLOT.TWO, HmacSha1SlotConfiguration(key2))
    state_now = s.get_config_state()
    assert state_now.is_configured(SLOT.ONE) and state_now.is_configured(SLOT.TWO)
    assert not state_now.is_touch_triggered(SLOT.TWO)  # challenge-response, not OTP typing
    c = b"same challenge"
    assert s.calculate_hmac_sha1(SLOT.ONE, c) == expected(key1, c)
    assert s.calculate_hmac_sha1(SLOT.TWO, c) == expected(key2, c)


def test_unconfigured_or_non_hmac_slot_is_rejected():
    state: dict[str, Any] = {}
    s = session(state)
    with pytest.raises(CommandRejectedError):
        s.calculate_hmac_sha1(SLOT.TWO, b"challenge")
    s.put_configuration(SLOT.ONE, YubiOtpSlotConfiguration(b"\1" * 6, b"\2" * 6, b"\3" * 16))
    assert s.get_config_state().is_touch_triggered(SLOT.ONE)
    with pytest.raises(CommandRejectedError):
        s.calculate_hmac_sha1(SLOT.ONE, b"challenge")


def test_delete_and_swap():
    state: dict[str, Any] = {}
    key = os.urandom(20)
    s = session(state)
    s.put_configuration(SLOT.ONE, HmacSha1SlotConfiguration(key))
    s.swap_slots()
    assert s.calculate_hmac_sha1(SLOT.TWO, b"c") == expected(key, b"c")
    with pytest.raises(CommandRejectedError):
        s.calculate_hmac_sha1(SLOT.ONE, b"c")
    s.delete_slot(SLOT.TWO)  # both empty now: the key resets its programming sequence to 0
    assert state["program_sequence"] == 0
    assert not s.get_config_state().is_configured(SLOT.TWO)
    with pytest.raises(CommandRejectedError):
        s.calculate_hmac_sha1(SLOT.TWO, b"c")


def test_access_code_protects_the_slot():
    state: dict[str, Any] = {}
    s = session(state)
    code = b"secret"
    s.put_configuration(SLOT.TWO, HmacSha1SlotConfiguration(os.urandom(20)), acc_code=code)
    with pytest.raises(CommandRejectedError):
        s.put_configuration(SLOT.TWO, HmacSha1SlotConfiguration(os.urandom(20)))
    with pytest.raises(CommandRejectedError):
        s.delete_slot(SLOT.TWO)
    s.delete_slot(SLOT.TWO, cur_acc_code=code)
    assert not s.get_config_state().is_configured(SLOT.TWO)


def test_touch_after_delay_reports_waiting_then_answers():
    state: dict[str, Any] = {}
    key = os.urandom(20)
    s = session(state, TouchPolicy.after_ms(150))
    s.put_configuration(SLOT.TWO, HmacSha1SlotConfiguration(key).require_touch(True))
    statuses: list[int] = []
    started = time.monotonic()
    answer = s.calculate_hmac_sha1(SLOT.TWO, b"touch me", on_keepalive=statuses.append)
    assert answer == expected(key, b"touch me")
    assert time.monotonic() - started >= 0.15
    assert statuses and set(statuses) == {STATUS_UPNEEDED}


def test_touch_never_times_out_quickly_and_the_key_recovers():
    state: dict[str, Any] = {}
    key = os.urandom(20)
    conn = EmulatedOtpConnection(state, touch=TouchPolicy.never(timeout_s=0.3))
    s = YubiOtpSession(conn)
    s.put_configuration(SLOT.TWO, HmacSha1SlotConfiguration(key).require_touch(True))
    started = time.monotonic()
    with pytest.raises(YkTimeoutError):
        s.calculate_hmac_sha1(SLOT.TWO, b"nobody home")
    assert 0.3 <= time.monotonic() - started < 2
    conn.touch = TouchPolicy.immediate()
    assert s.calculate_hmac_sha1(SLOT.TWO, b"now") == expected(key, b"now")


def test_event_cancels_a_pending_touch():
    state: dict[str, Any] = {}
    key = os.urandom(20)
    conn = EmulatedOtpConnection(state, touch=TouchPolicy.never())  # the key would wait 15 s
    s = YubiOtpSession(conn)
    s.put_configuration(SLOT.TWO, HmacSha1SlotConfiguration(key).require_touch(True))
    cancel = Event()
    started = time.monotonic()
    with pytest.raises(YkTimeoutError):
        s.calculate_hmac_sha1(SLOT.TWO, b"c", event=cancel, on_keepalive=lambda _: cancel.set())
    assert time.monotonic() - started < 2
    assert conn.receive()[7] == 0  # the host's reset report ended the touch wait
    assert s.get_serial() == emulated_serial(state)


def test_waiting_status_report_carries_the_touch_flag_and_seconds_left():
    state: dict[str, Any] = {}
    provision_hmac_slot(state, 2, os.urandom(20), require_touch=True)
    conn = EmulatedOtpConnection(state, touch=TouchPolicy.never(timeout_s=12))
    protocol = OtpProtocol(conn)
    cancel = Event()
    reports: list[bytes] = []

    def peek(status: int) -> None:
        reports.append(conn.receive())
        cancel.set()

    with pytest.raises(YkTimeoutError):
        protocol.send_and_receive(0x38, b"c" * 64, cancel, peek)
    assert reports[0][7] == 0x20 | 12
    assert reports[0][1:4] == bytes([5, 4, 3])


def test_serial_is_random_persisted_and_read_by_yubikit():
    state: dict[str, Any] = {}
    saves: list[str] = []
    conn = EmulatedOtpConnection(state, persist=lambda: saves.append(json.dumps(state)))
    assert len(saves) == 1  # the freshly made key
    s = YubiOtpSession(conn)
    assert s.get_serial() == emulated_serial(state) == json.loads(saves[0])["serial"]
    assert 10_000_000 <= emulated_serial(state) < 100_000_000
    assert read_info(conn, PID.YK4_OTP).serial == emulated_serial(state)
    s.put_configuration(SLOT.TWO, HmacSha1SlotConfiguration(os.urandom(20)))
    assert len(saves) == 2
    s.calculate_hmac_sha1(SLOT.TWO, b"reads do not persist")
    assert len(saves) == 2


def test_provisioned_slot_matches_what_yubikit_would_write():
    key16 = os.urandom(16)  # shorter keys are zero-padded on both paths
    by_helper: dict[str, Any] = {}
    provision_hmac_slot(by_helper, 1, key16, require_touch=True)
    by_yubikit: dict[str, Any] = {"serial": by_helper["serial"]}
    session(by_yubikit).put_configuration(
        SLOT.ONE, HmacSha1SlotConfiguration(key16).require_touch(True)
    )
    assert by_helper["slots"] == by_yubikit["slots"]
    assert session(by_helper).calculate_hmac_sha1(SLOT.ONE, b"c") == expected(key16, b"c")


class CorruptingConnection(OtpConnection):
    """Flips one payload bit of the next frame's first report, as a noisy line would."""

    def __init__(self, inner: OtpConnection) -> None:
        self.inner = inner
        self.armed = False

    def send(self, data: bytes) -> None:
        if self.armed and data[7] == 0x80:
            self.armed = False
            data = bytes([data[0] ^ 1]) + data[1:]
        self.inner.send(data)

    def receive(self) -> bytes:
        return self.inner.receive()


def test_corrupted_frames_are_rejected_without_breaking_later_calls():
    state: dict[str, Any] = {}
    key = os.urandom(20)
    conn = CorruptingConnection(EmulatedOtpConnection(state))
    s = YubiOtpSession(conn)
    s.put_configuration(SLOT.TWO, HmacSha1SlotConfiguration(key))

    conn.armed = True
    with pytest.raises(CommandRejectedError):
        s.calculate_hmac_sha1(SLOT.TWO, b"challenge")
    conn.armed = True
    with pytest.raises(CommandRejectedError):
        s.put_configuration(SLOT.TWO, HmacSha1SlotConfiguration(os.urandom(20)))

    # A well-framed configuration whose own CRC is wrong is refused too.
    bad_config = bytearray(HmacSha1SlotConfiguration(os.urandom(20)).get_config())
    bad_config[-1] ^= 0xFF
    with pytest.raises(CommandRejectedError):
        OtpProtocol(conn).send_and_receive(0x03, bytes(bad_config) + bytes(6))

    assert s.calculate_hmac_sha1(SLOT.TWO, b"challenge") == expected(key, b"challenge")


def test_separate_processes_share_the_key_through_a_json_file(tmp_path: Path):
    path = tmp_path / "key.json"
    key = os.urandom(20)
    script = f"""
import json, sys
from pathlib import Path
from yubikit.yubiotp import SLOT, HmacSha1SlotConfiguration, YubiOtpSession
from its_desktop.factors.emulated.yubikey_otp import EmulatedOtpConnection
path = Path({str(path)!r})
state = {{}}
conn = EmulatedOtpConnection(state, persist=lambda: path.write_text(json.dumps(state)))
config = HmacSha1SlotConfiguration(bytes.fromhex(sys.argv[1]))
YubiOtpSession(conn).put_configuration(SLOT.TWO, config)
"""
    subprocess.run([sys.executable, "-c", script, key.hex()], check=True, timeout=60)
    state = json.loads(path.read_text())
    s = session(state)
    assert s.calculate_hmac_sha1(SLOT.TWO, b"shared") == expected(key, b"shared")
    assert s.get_serial() == emulated_serial(state)
