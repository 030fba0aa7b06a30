"""A software YubiKey OTP application behind yubikit's ``OtpConnection``.

``yubikit.yubiotp.YubiOtpSession(EmulatedOtpConnection(state))`` runs unchanged against it:
the emulation sits at the lowest layer yubikit talks to, the 8-byte HID feature reports, so
yubikit's own framing, CRC checks, status polling, touch keep-alives and error mapping are what
the tests exercise. The device logic below is written from the documented protocol (ykpers'
``ykdef.h`` / ``ykcore``), not taken from yubikit, so the two check each other.

Wire protocol, as the key implements it:

* **Status report** (read while idle): ``[0, major, minor, patch, pgm_seq, touch_lo, touch_hi,
  flags]``. ``pgm_seq`` counts successful configuration writes; ``touch_level`` carries the
  slot-valid / slot-touch-triggered bits; ``flags`` is 0 when idle, ``0x20 | seconds_left``
  while waiting for a touch, ``0x40 | seq`` for a response report.
* **Command frame** (70 bytes): 64 payload bytes, the command ("slot") byte, the CRC16 of the
  payload (little-endian, not complemented), 3 zero bytes. It travels as 10 reports of 7 data
  bytes plus ``0x80 | index``; the host may skip all-zero reports except the first and the last.
  A frame whose CRC does not match is silently dropped: the host then sees an unchanged
  ``pgm_seq`` and no response, i.e. "rejected".
* **Response**: data followed by its complemented CRC16 (little-endian, so the CRC over data and
  CRC is the residual 0xF0B8), sent as reports flagged ``0x40 | seq``; after the last one the
  sequence wraps to 0, which tells the host the transfer is complete. The host then writes a
  report with ``flags = 0xFF`` (any write flag with an index past the frame) to return the key
  to status mode; the same report aborts a pending touch.

Everything persistent lives in a JSON-serialisable ``state`` dict (see :func:`ensure_state`);
the touch behaviour of the emulated user is a :class:`TouchPolicy` given per connection.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from yubikit.core.otp import OtpConnection

from .touch import TouchPolicy

# -- wire format -------------------------------------------------------------------------------

REPORT_SIZE = 8
REPORT_DATA_SIZE = 7
PAYLOAD_SIZE = 64
FRAME_SIZE = 70  # payload + command byte + CRC16 + 3 padding bytes
FRAME_REPORTS = FRAME_SIZE // REPORT_DATA_SIZE  # 10

WRITE_FLAG = 0x80  # host -> key: report carries frame data; low 7 bits = report index
RESPONSE_FLAG = 0x40  # key -> host: response report; low 5 bits = sequence number
TOUCH_WAIT_FLAG = 0x20  # key -> host: waiting for touch; low 5 bits = seconds left
SEQUENCE_MASK = 0x1F

CRC_RESIDUAL = 0xF0B8  # CRC16 over (data || ~CRC16(data) little-endian)

# -- commands (the frame's "slot" byte) ---------------------------------------------------------

CMD_CONFIG_1 = 0x01
CMD_CONFIG_2 = 0x03
CMD_SWAP = 0x06
CMD_DEVICE_SERIAL = 0x10
CMD_DEVICE_INFO = 0x13  # "YK4 capabilities": the management TLVs, read by ykman's read_info
CMD_CHAL_HMAC_1 = 0x30
CMD_CHAL_HMAC_2 = 0x38

# -- slot configuration record (52 bytes) -------------------------------------------------------
# fixed[16] uid[6] key[16] acc_code[6] fixed_size ext_flags tkt_flags cfg_flags rfu[2] crc[2]

CONFIG_SIZE = 52
ACC_CODE_SIZE = 6
TKT_CHAL_RESP = 0x40
CFG_CHAL_HMAC = 0x22  # both bits set: HMAC-SHA1 challenge-response (0x20 alone is Yubico OTP)
CFG_HMAC_LT64 = 0x04  # variable-length challenge: strip the trailing run of the last byte
CFG_CHAL_BTN_TRIG = 0x08  # challenge-response waits for a touch
EXT_LED_INV = 0x80
EXT_SERIAL_API_VISIBLE = 0x04
EXT_ALLOW_UPDATE = 0x20

# touch_level bits of the status report
SLOT_VALID = {1: 0x01, 2: 0x02}
SLOT_TOUCH_TRIGGERED = {1: 0x04, 2: 0x08}
LED_INVERTED = 0x10

DEFAULT_VERSION = (5, 4, 3)
HMAC_KEY_SIZE = 20


def crc16(data: bytes) -> int:
    """The key's CRC: ISO 13239 (X.25 polynomial, reflected, init 0xFFFF, no final XOR).

    Computed a byte at a time with the shift/XOR identity of the reflected CCITT polynomial
    (no bit loop, no table), so it shares no code with yubikit's bitwise version.
    """
    crc = 0xFFFF
    for byte in data:
        x = (byte ^ crc) & 0xFF
        x = (x ^ (x << 4)) & 0xFF
        crc = ((x << 8) | (crc >> 8)) ^ (x >> 4) ^ (x << 3)
    return crc & 0xFFFF


def append_crc(data: bytes) -> bytes:
    """``data`` followed by its complemented CRC, little-endian: how responses and slot
    configurations carry their checksum (the CRC over the whole then equals ``CRC_RESIDUAL``)."""
    return data + struct.pack("<H", ~crc16(data) & 0xFFFF)


# -- persistent state ---------------------------------------------------------------------------


def ensure_state(state: dict[str, Any]) -> bool:
    """Fill in a fresh key's state in place (random 8-digit serial, firmware version, empty
    slots); returns True if anything was added, so the caller knows to persist it.

    Layout (all JSON types): ``serial`` int, ``version`` [major, minor, patch],
    ``program_sequence`` int, ``slots`` {"1": record | None, "2": record | None}; a record holds
    the configuration fields as hex strings (``fixed``, ``uid``, ``key``, ``access_code``) and
    ints (``ext_flags``, ``tkt_flags``, ``cfg_flags``).
    """
    before = len(state), len(state.get("slots", {}))
    state.setdefault("serial", 10_000_000 + secrets.randbelow(90_000_000))
    state.setdefault("version", list(DEFAULT_VERSION))
    state.setdefault("program_sequence", 0)
    slots = state.setdefault("slots", {})
    slots.setdefault("1", None)
    slots.setdefault("2", None)
    return (len(state), len(slots)) != before


def emulated_serial(state: dict[str, Any]) -> int:
    """The serial number the emulated key reports (initialising ``state`` if it is empty)."""
    ensure_state(state)
    return int(state["serial"])


def provision_hmac_slot(
    state: dict[str, Any],
    slot: int,
    key: bytes,
    require_touch: bool = False,
    *,
    variable_length: bool = True,
) -> None:
    """Program ``slot`` for HMAC-SHA1 challenge-response directly in ``state``, as
    ``put_configuration(slot, HmacSha1SlotConfiguration(key).require_touch(...))`` would.

    The 20-byte key is stored the way the configuration record carries it: the first 16 bytes in
    the key field, the last 4 at the start of the uid field. Shorter keys are zero-padded, which
    leaves HMAC unchanged (HMAC zero-pads keys to the block size anyway). The caller persists.
    """
    if len(key) > HMAC_KEY_SIZE:
        raise ValueError(f"HMAC-SHA1 slot keys are at most {HMAC_KEY_SIZE} bytes")
    _check_slot(slot)
    ensure_state(state)
    key = key.ljust(HMAC_KEY_SIZE, b"\0")
    cfg = CFG_CHAL_HMAC | (CFG_HMAC_LT64 if variable_length else 0)
    cfg |= CFG_CHAL_BTN_TRIG if require_touch else 0
    state["slots"][str(slot)] = {
        "fixed": "",
        "uid": (key[16:] + b"\0\0").hex(),
        "key": key[:16].hex(),
        "access_code": bytes(ACC_CODE_SIZE).hex(),
        "ext_flags": EXT_SERIAL_API_VISIBLE | EXT_ALLOW_UPDATE,
        "tkt_flags": TKT_CHAL_RESP,
        "cfg_flags": cfg,
    }
    _bump_program_sequence(state)


def _check_slot(slot: int) -> None:
    if slot not in (1, 2):
        raise ValueError("slot must be 1 or 2")


def _parse_config(config: bytes) -> dict[str, Any]:
    fixed_size, ext, tkt, cfg = config[44:48]
    return {
        "fixed": config[: min(fixed_size, 16)].hex(),
        "uid": config[16:22].hex(),
        "key": config[22:38].hex(),
        "access_code": config[38:44].hex(),
        "ext_flags": ext,
        "tkt_flags": tkt,
        "cfg_flags": cfg,
    }


def _bump_program_sequence(state: dict[str, Any]) -> None:
    """After a successful write the key increments ``pgm_seq``; once both slots are empty it
    resets it to 0 (yubikit accepts either as "the write took")."""
    if not any(state["slots"].values()):
        state["program_sequence"] = 0
    else:
        state["program_sequence"] = (state["program_sequence"] + 1) & 0xFF


def _touch_level(state: dict[str, Any]) -> int:
    level = 0
    for slot in (1, 2):
        record = state["slots"][str(slot)]
        if record:
            level |= SLOT_VALID[slot]
            if not record["tkt_flags"] & TKT_CHAL_RESP:  # a touch types an OTP
                level |= SLOT_TOUCH_TRIGGERED[slot]
            if record["ext_flags"] & EXT_LED_INV:
                level |= LED_INVERTED
    return level


def _is_hmac_slot(record: dict[str, Any] | None) -> bool:
    return bool(
        record
        and record["tkt_flags"] & TKT_CHAL_RESP
        and record["cfg_flags"] & CFG_CHAL_HMAC == CFG_CHAL_HMAC
    )


def _hmac_response(record: dict[str, Any], challenge: bytes) -> bytes:
    """HMAC-SHA1 over the challenge, with the key reassembled from key[16] + uid[:4].

    In variable-length mode (HMAC_LT64, yubikit's default) the key treats the trailing run of
    bytes equal to the 64-byte challenge's last byte as padding and drops it.
    """
    key = bytes.fromhex(record["key"]) + bytes.fromhex(record["uid"])[:4]
    if record["cfg_flags"] & CFG_HMAC_LT64:
        challenge = challenge.rstrip(challenge[-1:])
    return hmac.new(key, challenge, hashlib.sha1).digest()


# -- touch ------------------------------------------------------------------------------------


@dataclass
class _PendingTouch:
    response: bytes
    started: float


# -- the connection ---------------------------------------------------------------------------


class EmulatedOtpConnection(OtpConnection):
    """An ``OtpConnection`` whose other end is a software YubiKey OTP application.

    Supported commands: write / delete a slot configuration (with access-code check), swap
    slots, HMAC-SHA1 challenge-response on either slot, serial number, device info. Anything
    else (updates, NDEF, Yubico OTP challenges, ...) is dropped like a rejected command.

    Time only moves when the host polls (``receive``), as with a real key's status reports, so
    no thread runs behind the connection. Use one connection at a time per state, like one
    open HID handle; ``state`` is read afresh at every command, so a caller that reloads a
    shared JSON file into the same dict sees another process's changes.
    """

    def __init__(
        self,
        state: dict[str, Any],
        persist: Callable[[], None] | None = None,
        touch: TouchPolicy = TouchPolicy(),
    ) -> None:
        self._state = state
        self._persist = persist
        self.touch = touch
        self._frame: bytearray | None = None  # command frame being received
        self._response: list[bytes] | None = None  # response reports being read out
        self._response_pos = 0
        self._pending: _PendingTouch | None = None
        if ensure_state(state):
            self._changed()

    # OtpConnection ----------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Take one 8-byte feature report from the host."""
        if len(data) != REPORT_SIZE:
            raise ValueError(f"feature reports are {REPORT_SIZE} bytes, got {len(data)}")
        flags = data[REPORT_DATA_SIZE]
        if not flags & WRITE_FLAG:
            return  # not addressed to the frame buffer; the key ignores it
        index = flags & 0x7F
        if index >= FRAME_REPORTS:  # 0xFF (yubikit) / 0x8F (ykpers): back to status mode
            self._abort()
            return
        if index == 0:  # a new frame replaces whatever the key was doing
            self._abort()
            self._frame = bytearray(FRAME_SIZE)
        if self._frame is None:
            return  # frame data without its first report
        start = index * REPORT_DATA_SIZE
        self._frame[start : start + REPORT_DATA_SIZE] = data[:REPORT_DATA_SIZE]
        if index == FRAME_REPORTS - 1:
            frame, self._frame = bytes(self._frame), None
            self._execute(frame)

    def receive(self) -> bytes:
        """Give the host the next 8-byte feature report: a response report if one is being read
        out, else a status report (flagged while a touch is awaited)."""
        self._advance_touch()
        if self._response is not None:
            seq = self._response_pos % len(self._response)  # wraps to 0: transfer complete
            self._response_pos += 1
            return self._response[seq] + bytes([RESPONSE_FLAG | seq])
        if self._pending is not None:
            left = self.touch.timeout_s - (time.monotonic() - self._pending.started)
            return self._status(TOUCH_WAIT_FLAG | min(max(math.ceil(left), 1), SEQUENCE_MASK))
        return self._status(0)

    # device logic -----------------------------------------------------------------------------

    def _status(self, flags: int) -> bytes:
        version, sequence = self._state["version"], self._state["program_sequence"]
        level = _touch_level(self._state)
        return bytes([0, *version, sequence, level & 0xFF, level >> 8, flags])

    def _abort(self) -> None:
        self._frame = None
        self._response = None
        self._pending = None

    def _changed(self) -> None:
        if self._persist is not None:
            self._persist()

    def _respond(self, data: bytes) -> None:
        body = append_crc(data)
        body += bytes(-len(body) % REPORT_DATA_SIZE)
        self._response = [
            body[i : i + REPORT_DATA_SIZE] for i in range(0, len(body), REPORT_DATA_SIZE)
        ]
        self._response_pos = 0

    def _advance_touch(self) -> None:
        if self._pending is None:
            return
        elapsed = time.monotonic() - self._pending.started
        if self.touch.touched(elapsed):
            response, self._pending = self._pending.response, None
            self._respond(response)
        elif self.touch.timed_out(elapsed):
            self._pending = None  # gave up: idle status, pgm_seq unchanged, no data

    def _execute(self, frame: bytes) -> None:
        payload, command = frame[:PAYLOAD_SIZE], frame[PAYLOAD_SIZE]
        (frame_crc,) = struct.unpack_from("<H", frame, PAYLOAD_SIZE + 1)
        if crc16(payload) != frame_crc:
            return  # corrupted in transit: dropped, the host sees "no data"
        if command in (CMD_CONFIG_1, CMD_CONFIG_2):
            self._write_config(1 if command == CMD_CONFIG_1 else 2, payload)
        elif command == CMD_SWAP:
            slots = self._state["slots"]
            slots["1"], slots["2"] = slots["2"], slots["1"]
            self._committed()
        elif command == CMD_DEVICE_SERIAL:
            self._respond(struct.pack(">I", self._state["serial"]))
        elif command == CMD_DEVICE_INFO:
            self._respond(self._device_info())
        elif command in (CMD_CHAL_HMAC_1, CMD_CHAL_HMAC_2):
            self._challenge(1 if command == CMD_CHAL_HMAC_1 else 2, payload)

    def _committed(self) -> None:
        _bump_program_sequence(self._state)
        self._changed()

    def _write_config(self, slot: int, payload: bytes) -> None:
        """Payload: the 52-byte configuration, then the slot's current access code. An all-zero
        configuration deletes the slot; anything else must carry a valid CRC."""
        config = payload[:CONFIG_SIZE]
        given_code = payload[CONFIG_SIZE : CONFIG_SIZE + ACC_CODE_SIZE]
        current = self._state["slots"][str(slot)]
        if current and any(required := bytes.fromhex(current["access_code"])):
            if not hmac.compare_digest(required, given_code):
                return  # wrong access code: rejected
        if not any(config):
            self._state["slots"][str(slot)] = None
        elif crc16(config) == CRC_RESIDUAL:
            self._state["slots"][str(slot)] = _parse_config(config)
        else:
            return
        self._committed()

    def _challenge(self, slot: int, challenge: bytes) -> None:
        """An HMAC slot answers at once, or after a touch if it has CHAL_BTN_TRIG; an empty or
        non-HMAC slot answers nothing, which yubikit reports as CommandRejectedError."""
        record = self._state["slots"][str(slot)]
        if not _is_hmac_slot(record):
            return
        response = _hmac_response(record, challenge)
        if record["cfg_flags"] & CFG_CHAL_BTN_TRIG and self.touch.delay_s != 0:
            self._pending = _PendingTouch(response, time.monotonic())
        else:
            self._respond(response)

    def _device_info(self) -> bytes:
        """Management TLVs, length-prefixed: USB supported/enabled (OTP only), serial, form
        factor (USB-A keychain), firmware version."""
        tlvs = b"".join(
            bytes([tag, len(value)]) + value
            for tag, value in (
                (0x01, b"\x00\x01"),
                (0x02, struct.pack(">I", self._state["serial"])),
                (0x03, b"\x00\x01"),
                (0x04, b"\x01"),
                (0x05, bytes(self._state["version"])),
            )
        )
        return bytes([len(tlvs)]) + tlvs
