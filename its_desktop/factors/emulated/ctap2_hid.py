"""CTAPHID transport of the emulated FIDO2 key: 64-byte HID reports (CTAP 2.1 §11.2).

Framing (§11.2, "Message and packet structure"): an *initialization* packet is ``CID(4) |
CMD(1, high bit set) | BCNT(2, big-endian) | DATA(57)``; *continuation* packets are ``CID(4) |
SEQ(1, 0..127) | DATA(59)``. A message is therefore at most 57 + 128 × 59 = 7609 bytes.
Continuation packets that belong to no message being received are ignored.

Commands (§11.2.9): ``INIT`` on the broadcast channel 0xFFFFFFFF allocates a channel and answers
``nonce(8) | CID(4) | protocol version 2 | major | minor | build | capabilities``; on an existing
channel it resynchronises it. ``PING`` echoes, ``WINK`` answers empty, ``CBOR`` carries a CTAP2
command byte and CBOR parameters, ``CANCEL`` (no reply) aborts a request waiting for a touch,
which then answers CTAP2_ERR_KEEPALIVE_CANCEL. While waiting for a touch the key sends
``KEEPALIVE`` with status UPNEEDED about every 100 ms. Errors travel as ``ERROR`` with one code
byte. ``MSG`` (CTAP1/U2F) and ``LOCK`` are not supported (capability NMSG).

No thread runs behind the connection: time moves when the host reads, as with a HID handle the
host polls. A CTAP2 command is a generator (:data:`CommandRun`) that pauses at each request for
user presence; :meth:`EmulatedHidConnection.read_packet` decides the touch with the
:class:`TouchPolicy`, emitting KEEPALIVE packets until it happens, the host cancels or the key
gives up. python-fido2's ``CtapHidDevice`` checks its cancel event between two reads, so those
keep-alives are also what make a cancel possible.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from enum import Enum, IntEnum

from fido2.hid.base import CtapHidConnection

from .touch import TouchPolicy

logger = logging.getLogger(__name__)

PACKET_SIZE = 64
INIT_DATA_SIZE = PACKET_SIZE - 7
CONT_DATA_SIZE = PACKET_SIZE - 5
MAX_MESSAGE_SIZE = INIT_DATA_SIZE + 128 * CONT_DATA_SIZE  # 7609
BROADCAST_CID = 0xFFFFFFFF
TYPE_INIT = 0x80
CTAPHID_VERSION = 2
KEEPALIVE_INTERVAL_S = 0.1
CTAP1_ERR_OTHER = 0x7F


class Cmd(IntEnum):
    """CTAPHID command codes (§11.2.9)."""

    PING = 0x01
    MSG = 0x03
    LOCK = 0x04
    INIT = 0x06
    WINK = 0x08
    CBOR = 0x10
    CANCEL = 0x11
    KEEPALIVE = 0x3B
    ERROR = 0x3F


class HidError(IntEnum):
    """CTAPHID_ERROR codes (§11.2.9)."""

    INVALID_CMD = 0x01
    INVALID_PAR = 0x02
    INVALID_LEN = 0x03
    INVALID_SEQ = 0x04
    MSG_TIMEOUT = 0x05
    CHANNEL_BUSY = 0x06
    INVALID_CHANNEL = 0x0B
    OTHER = 0x7F


class KeepaliveStatus(IntEnum):
    """CTAPHID_KEEPALIVE status byte (§11.2.9)."""

    PROCESSING = 1
    UPNEEDED = 2


class Capability(IntEnum):
    """Capability flags of the INIT response (§11.2.9)."""

    WINK = 0x01
    CBOR = 0x04
    NMSG = 0x08  # no CTAPHID_MSG: CTAP1/U2F not implemented


class Presence(Enum):
    """How a request for user presence ended."""

    GRANTED = "granted"
    CANCELLED = "cancelled"  # CTAPHID_CANCEL from the host
    TIMED_OUT = "timed out"  # nobody touched the key in time


CommandRun = Generator[None, Presence, bytes]
"""A CTAP2 command in progress: yields each time it needs user presence, is sent the outcome,
and returns the CTAPHID_CBOR response payload (status byte followed by CBOR)."""


def touch_outcome(policy: TouchPolicy, waited_s: float) -> Presence | None:
    """The user's answer after ``waited_s`` seconds, or None while still undecided."""
    if policy.touched(waited_s):
        return Presence.GRANTED
    if policy.timed_out(waited_s):
        return Presence.TIMED_OUT
    return None


@dataclass
class _Message:
    """A request being received over several packets."""

    cid: int
    cmd: int
    length: int
    data: bytearray
    next_seq: int = 0

    @property
    def complete(self) -> bool:
        return len(self.data) >= self.length


@dataclass
class _AwaitingTouch:
    """A CTAP2 command paused at a request for user presence."""

    cid: int
    run: CommandRun
    since: float
    cancelled: bool = False


class EmulatedHidConnection(CtapHidConnection):
    """A ``CtapHidConnection`` whose other end is an emulated CTAPHID device.

    ``process`` starts a CTAP2 command from a CTAPHID_CBOR payload (see :data:`CommandRun`).
    ``touch`` may be replaced between requests. Use from one thread at a time, like a HID
    handle. Reading when the device has nothing to send raises TimeoutError instead of
    blocking forever.
    """

    def __init__(
        self,
        process: Callable[[bytes], CommandRun],
        touch: TouchPolicy = TouchPolicy(),
        device_version: tuple[int, int, int] = (1, 0, 0),
    ) -> None:
        self._process = process
        self.touch = touch
        self._device_version = device_version
        self._channels: set[int] = set()
        self._next_cid = 1
        self._message: _Message | None = None
        self._waiting: _AwaitingTouch | None = None
        self._outbox: deque[bytes] = deque()
        self._closed = False

    # CtapHidConnection -------------------------------------------------------------------------

    def write_packet(self, data: bytes) -> None:
        """Take one report from the host; shorter reports are zero-padded like HID does."""
        self._check_open()
        if len(data) > PACKET_SIZE:
            raise ValueError(f"CTAPHID reports are {PACKET_SIZE} bytes, got {len(data)}")
        packet = bytes(data).ljust(PACKET_SIZE, b"\0")
        (cid,) = struct.unpack_from(">I", packet)
        if packet[4] & TYPE_INIT:
            self._on_init_packet(cid, packet[4] & ~TYPE_INIT, packet)
        else:
            self._on_continuation_packet(cid, packet[4], packet[5:])

    def read_packet(self) -> bytes:
        """The next report for the host; while a touch is awaited, a KEEPALIVE (UPNEEDED) about
        every 100 ms until the touch policy, a CANCEL or the timeout decides."""
        self._check_open()
        while not self._outbox:
            waiting = self._waiting
            if waiting is None:
                raise TimeoutError("the emulated FIDO2 key has nothing to send")
            outcome = self._touch_outcome(waiting)
            if outcome is None:
                pause = self.touch.seconds_to_outcome(time.monotonic() - waiting.since)
                time.sleep(min(KEEPALIVE_INTERVAL_S, pause + 0.001))
                if self._touch_outcome(waiting) is None:
                    return _frames(waiting.cid, Cmd.KEEPALIVE, bytes([KeepaliveStatus.UPNEEDED]))[0]
                continue
            self._run(waiting.cid, waiting.run, outcome)
        return self._outbox.popleft()

    def close(self) -> None:
        if self._waiting is not None:
            self._waiting.run.close()
            self._waiting = None
        self._closed = True

    # framing ---------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise OSError("the emulated FIDO2 connection is closed")

    def _on_init_packet(self, cid: int, cmd: int, packet: bytes) -> None:
        (length,) = struct.unpack_from(">H", packet, 5)
        data = packet[7 : 7 + min(length, INIT_DATA_SIZE)]
        if cid == 0:
            return self._error(cid, HidError.INVALID_CHANNEL)
        if cmd == Cmd.INIT:
            return self._init(cid, length, data)
        if cid not in self._channels:  # includes the broadcast channel
            return self._error(cid, HidError.INVALID_CHANNEL)
        if cmd == Cmd.CANCEL:
            if self._waiting is not None and self._waiting.cid == cid:
                self._waiting.cancelled = True
            return None
        if self._waiting is not None:
            return self._error(cid, HidError.CHANNEL_BUSY)
        if self._message is not None:
            if self._message.cid != cid:
                return self._error(cid, HidError.CHANNEL_BUSY)
            self._message = None  # a new request in the middle of the previous one
            return self._error(cid, HidError.INVALID_SEQ)
        if length > MAX_MESSAGE_SIZE:
            return self._error(cid, HidError.INVALID_LEN)
        message = _Message(cid, cmd, length, bytearray(data))
        if message.complete:
            self._dispatch(message)
        else:
            self._message = message
        return None

    def _on_continuation_packet(self, cid: int, seq: int, data: bytes) -> None:
        message = self._message
        if message is None or message.cid != cid:
            return  # spurious continuation packet: ignored (§11.2)
        if seq != message.next_seq:
            self._message = None
            return self._error(cid, HidError.INVALID_SEQ)
        message.next_seq += 1
        message.data += data
        if message.complete:
            self._message = None
            self._dispatch(message)
        return None

    def _init(self, cid: int, length: int, nonce: bytes) -> None:
        """CTAPHID_INIT (§11.2.9): allocate a channel, or resynchronise an existing one."""
        if length != 8:
            return self._error(cid, HidError.INVALID_LEN)
        if cid == BROADCAST_CID:
            new_cid = self._allocate_channel()
        elif cid in self._channels:
            new_cid = cid
            if self._message is not None and self._message.cid == cid:
                self._message = None
            if self._waiting is not None and self._waiting.cid == cid:
                self._waiting.run.close()
                self._waiting = None
        else:
            return self._error(cid, HidError.INVALID_CHANNEL)
        capabilities = Capability.WINK | Capability.CBOR | Capability.NMSG
        reply = nonce + struct.pack(
            ">IB3BB", new_cid, CTAPHID_VERSION, *self._device_version, capabilities
        )
        self._send(cid, Cmd.INIT, reply)
        return None

    def _allocate_channel(self) -> int:
        cid = self._next_cid
        self._next_cid = self._next_cid % (BROADCAST_CID - 1) + 1  # never 0 nor broadcast
        self._channels.add(cid)
        return cid

    def _dispatch(self, message: _Message) -> None:
        payload = bytes(message.data[: message.length])
        cid = message.cid
        if message.cmd == Cmd.PING:
            self._send(cid, Cmd.PING, payload)
        elif message.cmd == Cmd.WINK:
            self._send(cid, Cmd.WINK, b"")
        elif message.cmd == Cmd.CBOR:
            if not payload:
                self._error(cid, HidError.INVALID_LEN)
            else:
                self._run(cid, self._process(payload), None)
        else:
            self._error(cid, HidError.INVALID_CMD)

    # CTAP2 commands and touch -----------------------------------------------------------------

    def _run(self, cid: int, run: CommandRun, outcome: Presence | None) -> None:
        """Advance a command until it finishes or waits for a touch the policy does not grant
        at once."""
        self._waiting = None
        while True:
            try:
                run.send(outcome)  # type: ignore[arg-type]  # None starts the generator
            except StopIteration as done:
                self._send(cid, Cmd.CBOR, done.value)
                return
            except Exception:  # a bug in the emulator must not take the host down with it
                logger.exception("emulated FIDO2 command failed")
                self._send(cid, Cmd.CBOR, bytes([CTAP1_ERR_OTHER]))
                return
            outcome = touch_outcome(self.touch, 0.0)
            if outcome is None:
                self._waiting = _AwaitingTouch(cid, run, time.monotonic())
                return

    def _touch_outcome(self, waiting: _AwaitingTouch) -> Presence | None:
        if waiting.cancelled:
            return Presence.CANCELLED
        return touch_outcome(self.touch, time.monotonic() - waiting.since)

    # replies ---------------------------------------------------------------------------------

    def _send(self, cid: int, cmd: int, payload: bytes) -> None:
        self._outbox.extend(_frames(cid, cmd, payload))

    def _error(self, cid: int, code: HidError) -> None:
        self._send(cid, Cmd.ERROR, bytes([code]))


def _frames(cid: int, cmd: int, payload: bytes) -> list[bytes]:
    """Split a message into an initialization packet and continuation packets (§11.2)."""
    packets = [struct.pack(">IBH", cid, TYPE_INIT | cmd, len(payload)) + payload[:INIT_DATA_SIZE]]
    rest = payload[INIT_DATA_SIZE:]
    for seq in range(0, (len(rest) + CONT_DATA_SIZE - 1) // CONT_DATA_SIZE):
        chunk = rest[seq * CONT_DATA_SIZE : (seq + 1) * CONT_DATA_SIZE]
        packets.append(struct.pack(">IB", cid, seq) + chunk)
    return [p.ljust(PACKET_SIZE, b"\0") for p in packets]
