"""The emulated FIDO2 key, driven by the real python-fido2 client stack.

Fido2Client / Ctap2 / ClientPin / HmacSecretExtension and CtapHidDevice's framing run unchanged
against the emulator's 64-byte CTAPHID reports, so these tests check both: the emulator against
the library, and the library's hmac-secret, PIN and cancel paths against independent code.
"""

from __future__ import annotations

import json
import os
import random
import struct
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from fido2.attestation import AttestationType, PackedAttestation
from fido2.client import ClientError, DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.ctap import STATUS, CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.extensions import HmacSecretExtension
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2
from fido2.hid import CAPABILITY, CtapHidDevice
from fido2.webauthn import (
    AuthenticatorData,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialCreationOptions,
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialParameters,
    PublicKeyCredentialRequestOptions,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialType,
    PublicKeyCredentialUserEntity,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from its_desktop.factors.emulated.ctap2 import (
    PRODUCT_NAME,
    TouchPolicy,
    emulated_descriptor,
    open_emulated_connection,
    open_emulated_device,
    set_pin,
)
from its_desktop.factors.emulated.ctap2_hid import EmulatedHidConnection

RP_ID = "its-desktop"
ORIGIN = "https://its-desktop"
PIN = "4321"
PUBLIC_KEY = PublicKeyCredentialType.PUBLIC_KEY
REQUIRED = UserVerificationRequirement.REQUIRED
DISCOURAGED = UserVerificationRequirement.DISCOURAGED
SALT = bytes(range(32))
OTHER_SALT = bytes(range(32, 64))


class Ui(UserInteraction):
    """Answers PIN prompts with a fixed PIN and counts touch prompts (KEEPALIVE UPNEEDED)."""

    def __init__(self, pin: str | None = None) -> None:
        self.pin = pin
        self.touch_prompts = 0

    def prompt_up(self) -> None:
        self.touch_prompts += 1

    def request_pin(self, permissions: Any, rp_id: str | None) -> str | None:
        return self.pin


def make_client(device: CtapHidDevice, ui: Ui | None = None, origin: str = ORIGIN) -> Fido2Client:
    return Fido2Client(
        device,
        DefaultClientDataCollector(origin),
        ui or Ui(),
        extensions=[HmacSecretExtension(allow_hmac_secret=True)],
    )


def enrol(client: Fido2Client, exclude: Sequence[bytes] = ()) -> bytes:
    """A non-resident credential with hmac-secret; returns its id."""
    result = client.make_credential(
        PublicKeyCredentialCreationOptions(
            rp=PublicKeyCredentialRpEntity(id=RP_ID, name="ITS Desktop"),
            user=PublicKeyCredentialUserEntity(id=b"vault", name="vault"),
            challenge=os.urandom(32),
            pub_key_cred_params=[PublicKeyCredentialParameters(type=PUBLIC_KEY, alg=-7)],
            exclude_credentials=[
                PublicKeyCredentialDescriptor(type=PUBLIC_KEY, id=i) for i in exclude
            ],
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.DISCOURAGED, user_verification=DISCOURAGED
            ),
            extensions={"hmacCreateSecret": True},
        )
    )
    assert result.client_extension_results.hmac_create_secret is True
    return result.raw_id


def derive(
    client: Fido2Client,
    cred_id: bytes,
    salt: bytes = SALT,
    uv: UserVerificationRequirement = DISCOURAGED,
    event: threading.Event | None = None,
    rp_id: str = RP_ID,
    timeout_ms: int | None = None,
) -> bytes:
    """hmac-secret output1 for ``salt`` from an assertion with ``cred_id``."""
    selection = client.get_assertion(
        PublicKeyCredentialRequestOptions(
            challenge=os.urandom(32),
            rp_id=rp_id,
            timeout=timeout_ms,
            allow_credentials=[PublicKeyCredentialDescriptor(type=PUBLIC_KEY, id=cred_id)],
            user_verification=uv,
            extensions={"hmacGetSecret": {"salt1": salt}},
        ),
        event=event,
    )
    output = selection.get_response(0).client_extension_results.hmac_get_secret
    assert output is not None
    return bytes(output.output1)


def reopen(state: dict[str, Any], **kwargs: Any) -> CtapHidDevice:
    """A fresh device ("another process") from the JSON round trip of ``state``."""
    return open_emulated_device(json.loads(json.dumps(state)), **kwargs)


def open_with_connection(
    state: dict[str, Any], touch: TouchPolicy = TouchPolicy()
) -> tuple[CtapHidDevice, EmulatedHidConnection]:
    connection = open_emulated_connection(state, touch=touch)
    return CtapHidDevice(emulated_descriptor(state), connection), connection


# -- device identity -------------------------------------------------------------------------------


def test_descriptor_and_get_info() -> None:
    state: dict[str, Any] = {}
    device = open_emulated_device(state)
    assert device.product_name == PRODUCT_NAME
    assert device.capabilities & CAPABILITY.CBOR and device.capabilities & CAPABILITY.NMSG
    info = Ctap2(device).info
    assert info.versions == ["FIDO_2_0", "FIDO_2_1"]
    assert info.extensions == ["hmac-secret"]
    assert info.pin_uv_protocols == [2, 1]
    assert info.options["rk"] is False and info.options["up"] is True
    assert info.options["clientPin"] is False
    assert bytes(info.aaguid) == bytes.fromhex(state["aaguid"])

    set_pin(state, PIN)
    assert Ctap2(reopen(state)).info.options["clientPin"] is True
    with pytest.raises(ValueError):
        set_pin(state, "123")


# -- make credential / hmac-secret -----------------------------------------------------------------


def test_make_credential_is_self_attested_and_stores_nothing() -> None:
    state: dict[str, Any] = {}
    ctap = Ctap2(open_emulated_device(state))
    before = dict(state)
    client_data_hash = os.urandom(32)
    response = ctap.make_credential(
        client_data_hash,
        {"id": RP_ID, "name": RP_ID},
        {"id": b"user", "name": "user"},
        [{"type": "public-key", "alg": -7}],
        extensions={"hmac-secret": True},
    )
    assert response.fmt == "packed"
    result = PackedAttestation().verify(response.att_stmt, response.auth_data, client_data_hash)
    assert result.attestation_type == AttestationType.SELF
    flags = response.auth_data.flags
    assert flags & AuthenticatorData.FLAG.UP and flags & AuthenticatorData.FLAG.AT
    assert not flags & AuthenticatorData.FLAG.UV
    assert response.auth_data.extensions == {"hmac-secret": True}
    assert {k for k, v in state.items() if before[k] != v} == {"sign_count"}

    with pytest.raises(CtapError) as caught:
        ctap.make_credential(
            client_data_hash, {"id": RP_ID}, {"id": b"u"}, [{"type": "public-key", "alg": -257}]
        )
    assert caught.value.code == CtapError.ERR.UNSUPPORTED_ALGORITHM


def test_hmac_secret_is_stable_salt_dependent_and_survives_a_json_round_trip(tmp_path) -> None:
    path = tmp_path / "key.json"
    state: dict[str, Any] = {}
    persists = 0

    def persist() -> None:
        nonlocal persists
        persists += 1
        path.write_text(json.dumps(state))

    client = make_client(open_emulated_device(state, persist))
    cred_id = enrol(client)
    first = derive(client, cred_id)
    assert len(first) == 32
    assert derive(client, cred_id) == first
    assert derive(client, cred_id, OTHER_SALT) != first
    assert persists > 0

    other_process = open_emulated_device(json.loads(path.read_text()))
    assert derive(make_client(other_process), cred_id) == first


def test_hmac_secret_differs_with_and_without_user_verification() -> None:
    state: dict[str, Any] = {}
    set_pin(state, PIN)
    ui = Ui(PIN)
    client = make_client(open_emulated_device(state), ui)
    cred_id = enrol(client)
    without_uv = derive(client, cred_id, uv=DISCOURAGED)
    with_uv = derive(client, cred_id, uv=REQUIRED)
    assert with_uv != without_uv
    assert derive(client, cred_id, uv=REQUIRED) == with_uv
    assert derive(make_client(reopen(state), Ui(PIN)), cred_id, uv=REQUIRED) == with_uv
    assert derive(client, cred_id, uv=DISCOURAGED) == without_uv


@pytest.mark.parametrize("protocol", [PinProtocolV1, PinProtocolV2])
def test_hmac_secret_is_the_same_over_either_pin_protocol(protocol: type) -> None:
    """The transport encryption of salts and outputs must not change the secret."""
    state: dict[str, Any] = {}
    device = open_emulated_device(state)
    cred_id = enrol(make_client(device))
    expected = derive(make_client(device), cred_id)  # the client picks protocol 2

    ctap = Ctap2(device)
    pin_protocol = protocol()
    peer_key = ctap.client_pin(pin_protocol.VERSION, ClientPin.CMD.GET_KEY_AGREEMENT)[1]
    key_agreement, shared_secret = pin_protocol.encapsulate(peer_key)
    salt_enc = pin_protocol.encrypt(shared_secret, SALT)
    request = {
        1: key_agreement,
        2: salt_enc,
        3: pin_protocol.authenticate(shared_secret, salt_enc),
        4: pin_protocol.VERSION,
    }
    assertion = ctap.get_assertion(
        RP_ID, os.urandom(32), [{"type": "public-key", "id": cred_id}], {"hmac-secret": request}
    )
    assert assertion.auth_data.extensions is not None
    encrypted = assertion.auth_data.extensions["hmac-secret"]
    assert pin_protocol.decrypt(shared_secret, encrypted) == expected

    request[3] = bytes(len(request[3]))  # wrong saltAuth
    with pytest.raises(CtapError) as caught:
        ctap.get_assertion(
            RP_ID, os.urandom(32), [{"type": "public-key", "id": cred_id}], {"hmac-secret": request}
        )
    assert caught.value.code == CtapError.ERR.PIN_AUTH_INVALID


# -- PIN -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [PinProtocolV1, PinProtocolV2])
def test_client_pin_over_both_protocols(protocol: type) -> None:
    state: dict[str, Any] = {}
    device = open_emulated_device(state)
    ctap = Ctap2(device)
    client_pin = ClientPin(ctap, protocol())
    with pytest.raises(CtapError) as caught:
        client_pin.get_pin_token(PIN)  # "clientPin": false still means "supported"
    assert caught.value.code == CtapError.ERR.PIN_NOT_SET

    client_pin.set_pin(PIN)
    ctap = Ctap2(device)  # fresh info: clientPin is now true
    client_pin = ClientPin(ctap, protocol())
    assert client_pin.get_pin_retries()[0] == 8
    with pytest.raises(CtapError) as caught:
        client_pin.set_pin("9999")
    assert caught.value.code == CtapError.ERR.NOT_ALLOWED

    permissions = ClientPin.PERMISSION.GET_ASSERTION | ClientPin.PERMISSION.MAKE_CREDENTIAL
    token = client_pin.get_pin_token(PIN, permissions, RP_ID)
    assert len(token) == 32
    client_data_hash = os.urandom(32)
    pin_auth = client_pin.protocol.authenticate(token, client_data_hash)
    made = ctap.make_credential(
        client_data_hash, {"id": RP_ID}, {"id": b"u"}, [{"type": "public-key", "alg": -7}],
        pin_uv_param=pin_auth, pin_uv_protocol=client_pin.protocol.VERSION,
    )
    assert made.auth_data.flags & AuthenticatorData.FLAG.UV
    # the touch used the token up
    with pytest.raises(CtapError) as caught:
        ctap.make_credential(
            client_data_hash, {"id": RP_ID}, {"id": b"u"}, [{"type": "public-key", "alg": -7}],
            pin_uv_param=pin_auth, pin_uv_protocol=client_pin.protocol.VERSION,
        )
    assert caught.value.code == CtapError.ERR.PIN_AUTH_INVALID

    client_pin.change_pin(PIN, "5678")
    with pytest.raises(CtapError) as caught:
        client_pin.get_pin_token(PIN)
    assert caught.value.code == CtapError.ERR.PIN_INVALID
    assert client_pin.get_pin_retries()[0] == 7
    assert len(client_pin.get_pin_token("5678")) == 32  # legacy getPinToken
    assert client_pin.get_pin_retries()[0] == 8


def test_wrong_pin_counts_down_and_blocks_until_power_cycle() -> None:
    state: dict[str, Any] = {}
    set_pin(state, PIN)
    device = open_emulated_device(state)
    client = make_client(device, Ui(PIN))
    cred_id = enrol(client)

    wrong = make_client(device, Ui("0000"))
    for expected_retries in (7, 6):
        with pytest.raises(ClientError) as caught:
            derive(wrong, cred_id, uv=REQUIRED)
        assert caught.value.code == ClientError.ERR.BAD_REQUEST
        assert caught.value.cause.code == CtapError.ERR.PIN_INVALID
        assert ClientPin(Ctap2(device)).get_pin_retries()[0] == expected_retries
    with pytest.raises(ClientError) as caught:
        derive(wrong, cred_id, uv=REQUIRED)
    assert caught.value.cause.code == CtapError.ERR.PIN_AUTH_BLOCKED  # third in a row
    with pytest.raises(ClientError) as caught:
        derive(client, cred_id, uv=REQUIRED)  # even the right PIN, until a power cycle
    assert caught.value.cause.code == CtapError.ERR.PIN_AUTH_BLOCKED
    assert state["pin_retries"] == 5

    power_cycled = reopen(state)
    assert ClientPin(Ctap2(power_cycled)).get_pin_retries() == (5, False)
    assert len(derive(make_client(power_cycled, Ui(PIN)), cred_id, uv=REQUIRED)) == 32
    assert ClientPin(Ctap2(power_cycled)).get_pin_retries()[0] == 8


def test_pin_blocks_after_eight_wrong_attempts() -> None:
    state: dict[str, Any] = {}
    set_pin(state, PIN)
    codes = []
    for attempts in (3, 3, 2):  # a power cycle (new device) after each PIN_AUTH_BLOCKED
        client_pin = ClientPin(Ctap2(open_emulated_device(state)), PinProtocolV1())
        for _ in range(attempts):
            with pytest.raises(CtapError) as caught:
                client_pin.get_pin_token("0000")
            codes.append(caught.value.code)
    invalid, auth_blocked = CtapError.ERR.PIN_INVALID, CtapError.ERR.PIN_AUTH_BLOCKED
    assert codes == [invalid, invalid, auth_blocked] * 2 + [invalid, CtapError.ERR.PIN_BLOCKED]
    assert state["pin_retries"] == 0
    with pytest.raises(CtapError) as caught:
        ClientPin(Ctap2(open_emulated_device(state))).get_pin_token(PIN)
    assert caught.value.code == CtapError.ERR.PIN_BLOCKED


# -- credentials that are not ours ----------------------------------------------------------------


def test_credential_of_another_key_or_rp_is_not_found() -> None:
    cred_id = enrol(make_client(open_emulated_device({})))

    other_key = make_client(open_emulated_device({}))
    with pytest.raises(ClientError) as caught:
        derive(other_key, cred_id)
    assert caught.value.code == ClientError.ERR.DEVICE_INELIGIBLE
    assert caught.value.cause.code == CtapError.ERR.NO_CREDENTIALS

    state: dict[str, Any] = {}
    device = open_emulated_device(state)
    cred_id = enrol(make_client(device))
    other_rp = make_client(device, origin="https://example.com")
    with pytest.raises(ClientError) as caught:
        derive(other_rp, cred_id, rp_id="example.com")
    assert caught.value.code == ClientError.ERR.DEVICE_INELIGIBLE

    with pytest.raises(ClientError) as caught:
        enrol(make_client(device), exclude=[cred_id])
    assert caught.value.cause.code == CtapError.ERR.CREDENTIAL_EXCLUDED


def test_reset_forgets_credentials_and_pin() -> None:
    state: dict[str, Any] = {}
    set_pin(state, PIN)
    device = open_emulated_device(state)
    cred_id = enrol(make_client(device))
    Ctap2(device).reset()
    assert state["pin_hash"] is None
    with pytest.raises(ClientError) as caught:
        derive(make_client(device), cred_id)
    assert caught.value.code == ClientError.ERR.DEVICE_INELIGIBLE


# -- touch -----------------------------------------------------------------------------------------


def test_touch_after_a_delay_sends_upneeded_keepalives() -> None:
    state: dict[str, Any] = {}
    device, connection = open_with_connection(state)
    cred_id = enrol(make_client(device))
    connection.touch = TouchPolicy.after_ms(250)
    ui = Ui()
    started = time.monotonic()
    assert len(derive(make_client(device, ui), cred_id)) == 32
    assert 0.25 <= time.monotonic() - started < 2
    assert ui.touch_prompts == 1

    statuses: list[int] = []
    Ctap2(device).selection(on_keepalive=statuses.append)
    assert statuses == [STATUS.UPNEEDED]


def test_no_touch_is_cancelled_by_the_clients_event() -> None:
    state: dict[str, Any] = {}
    device, connection = open_with_connection(state)
    cred_id = enrol(make_client(device))
    connection.touch = TouchPolicy.never()
    event = threading.Event()
    timer = threading.Timer(0.3, event.set)
    ui = Ui()
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(ClientError) as caught:
            derive(make_client(device, ui), cred_id, event=event)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 2
    assert caught.value.code == ClientError.ERR.TIMEOUT
    assert caught.value.cause.code == CtapError.ERR.KEEPALIVE_CANCEL
    assert ui.touch_prompts == 1

    with pytest.raises(ClientError) as caught:  # the request's own timeout sets the event too
        derive(make_client(device), cred_id, timeout_ms=200)
    assert caught.value.code == ClientError.ERR.TIMEOUT

    connection.touch = TouchPolicy.immediate()  # the key still works afterwards
    assert len(derive(make_client(device), cred_id)) == 32


def test_no_touch_times_out_on_the_key() -> None:
    state: dict[str, Any] = {}
    device, connection = open_with_connection(state)
    cred_id = enrol(make_client(device))
    connection.touch = TouchPolicy.never(timeout_s=0.2)
    with pytest.raises(ClientError) as caught:
        derive(make_client(device), cred_id)
    assert caught.value.code == ClientError.ERR.TIMEOUT
    assert caught.value.cause.code == CtapError.ERR.USER_ACTION_TIMEOUT


# -- CTAPHID framing -------------------------------------------------------------------------------


def _packet(cid: int, cmd: int, payload: bytes = b"", length: int | None = None) -> bytes:
    n = len(payload) if length is None else length
    return struct.pack(">IBH", cid, 0x80 | cmd, n) + payload


def _replies(connection: EmulatedHidConnection) -> list[bytes]:
    packets = []
    while True:
        try:
            packets.append(connection.read_packet())
        except TimeoutError:
            return packets


def _allocate(connection: EmulatedHidConnection) -> int:
    nonce = os.urandom(8)
    connection.write_packet(_packet(0xFFFFFFFF, 0x06, nonce))
    (reply,) = _replies(connection)
    assert reply[:4] == b"\xff\xff\xff\xff" and reply[4] == 0x86 and reply[7:15] == nonce
    return int.from_bytes(reply[15:19], "big")


def _error_code(reply: bytes, cid: int) -> int:
    assert int.from_bytes(reply[:4], "big") == cid and reply[4] == 0xBF
    return reply[7]


def test_malformed_packets_get_ctaphid_errors() -> None:
    connection = open_emulated_connection({})
    cid = _allocate(connection)
    cases = [
        (_packet(cid, 0x7E), 0x01),  # unknown command
        (_packet(cid, 0x03, b"\0" * 7), 0x01),  # CTAPHID_MSG: no CTAP1
        (_packet(cid + 1, 0x01, b"hi"), 0x0B),  # channel never allocated
        (_packet(0xFFFFFFFF, 0x01, b"hi"), 0x0B),  # broadcast is for INIT only
        (_packet(cid, 0x06, b"short"), 0x03),  # INIT nonce must be 8 bytes
        (_packet(cid, 0x01, length=7610), 0x03),  # longer than 57 + 128 * 59
        (_packet(cid, 0x10), 0x03),  # empty CBOR request
    ]
    for packet, code in cases:
        connection.write_packet(packet)
        (reply,) = _replies(connection)
        assert _error_code(reply, int.from_bytes(packet[:4], "big")) == code, packet.hex()

    connection.write_packet(struct.pack(">IB", cid, 0) + b"stray")  # continuation: ignored
    assert _replies(connection) == []

    connection.write_packet(_packet(cid, 0x01, b"x" * 57, length=200))
    connection.write_packet(struct.pack(">IB", cid, 1) + b"x" * 59)  # should be seq 0
    (reply,) = _replies(connection)
    assert _error_code(reply, cid) == 0x04

    connection.write_packet(_packet(cid, 0x10, b"\x04\xa1"))  # getInfo, truncated CBOR map
    (reply,) = _replies(connection)
    assert reply[4] == 0x90 and reply[7] == CtapError.ERR.INVALID_CBOR
    connection.write_packet(_packet(cid, 0x10, b"\x55"))  # no such CTAP2 command
    (reply,) = _replies(connection)
    assert reply[7] == CtapError.ERR.INVALID_COMMAND


def test_random_garbage_leaves_the_key_working() -> None:
    state: dict[str, Any] = {}
    connection = open_emulated_connection(state)
    cid = _allocate(connection)
    rng = random.Random(20240611)
    for _ in range(400):
        packet = bytearray(rng.randbytes(64))
        if rng.random() < 0.7:
            packet[:4] = cid.to_bytes(4, "big")
        if rng.random() < 0.5:
            packet[5:7] = rng.randrange(0, 200).to_bytes(2, "big")  # plausible lengths too
        connection.write_packet(bytes(packet))
        for reply in _replies(connection):
            assert len(reply) == 64
            if reply[4] == 0xBF:
                assert reply[7] in (0x01, 0x03, 0x04, 0x06, 0x0B)
    connection.write_packet(_packet(cid, 0x06, os.urandom(8)))  # resync our channel
    _replies(connection)

    device = CtapHidDevice(emulated_descriptor(state), connection)
    assert device.ping(b"still here" * 20) == b"still here" * 20
    cred_id = enrol(make_client(device))
    assert len(derive(make_client(device), cred_id)) == 32
