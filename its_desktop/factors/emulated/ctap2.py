"""A software FIDO2 authenticator (CTAP 2.1) behind python-fido2's ``CtapHidDevice``.

``open_emulated_device(state)`` returns a real ``fido2.hid.CtapHidDevice`` whose connection is an
:class:`~.ctap2_hid.EmulatedHidConnection`, so ``Fido2Client``, ``Ctap2``, ``ClientPin`` and
``HmacSecretExtension`` run unchanged down to the 64-byte CTAPHID reports. The authenticator is
written from the CTAP 2.1 specification with ``cryptography`` primitives; python-fido2 is used
for its CBOR codec and its ``CtapHidDevice`` / ``CtapHidConnection`` classes only, so the tests
check the library against independent code.

Implemented: authenticatorGetInfo (§6.4), authenticatorMakeCredential (§6.1, ES256,
non-discoverable credentials, "packed" self attestation), authenticatorGetAssertion (§6.2,
allowList only), authenticatorClientPIN (§6.5: retries, key agreement, setPIN, changePIN,
getPinToken, getPinUvAuthTokenUsingPinWithPermissions; PIN/UV protocols 1 and 2),
authenticatorReset (§6.6), authenticatorSelection (§6.9) and the hmac-secret extension (§12.5).
Not implemented: discoverable credentials, built-in UV, credProtect and the other extensions,
enterprise attestation, large blobs, credential management, CTAP1/U2F.

**Credentials** are not stored: the credential id (94 bytes) is
``format(1) | nonce(12) | AES-256-GCM(wrap key, flags(1) | rpIdHash(32) | private scalar(32))``
with the format byte as associated data; the wrap key is derived from the device's master
secret. An id that does not decrypt, or names another RP, is not this device's credential. The
hmac-secret ``CredRandomWithUV`` / ``CredRandomWithoutUV`` of a credential are two HMACs of its
contents under a second key derived from the master secret.

**State** (JSON types only, see :func:`ensure_state`) lives in the caller's dict and
``persist()`` is called after every change, so processes sharing a JSON file see the same key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import uuid
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fido2 import cbor
from fido2.hid import CtapHidDevice
from fido2.hid.base import HidDescriptor

from .ctap2_hid import (
    PACKET_SIZE,
    CommandRun,
    EmulatedHidConnection,
    Presence,
    TouchPolicy,
)
from .ctap2_pin import (
    Permission,
    PinProtocolError,
    PinProtocolOne,
    PinProtocolTwo,
    PinUvAuthProtocol,
    TokenState,
)

__all__ = [
    "PRODUCT_NAME",
    "EmulatedAuthenticator",
    "EmulatedHidConnection",
    "Status",
    "TouchPolicy",
    "emulated_descriptor",
    "ensure_state",
    "open_emulated_connection",
    "open_emulated_device",
    "set_pin",
]

PRODUCT_NAME = "ITS Emulated FIDO2"
VENDOR_ID, PRODUCT_ID = 0x1209, 0x0001  # pid.codes' test VID/PID
FIRMWARE_VERSION = (1, 0, 0)

MAX_PIN_RETRIES = 8
MAX_CONSECUTIVE_PIN_MISMATCHES = 3  # then PIN_AUTH_BLOCKED until a power cycle (§6.5.5)
MIN_PIN_LENGTH = 4  # Unicode code points
MAX_PIN_BYTES = 63
PADDED_PIN_SIZE = 64
RESET_WINDOW_S = 10.0  # authenticatorReset only this soon after power-up (§6.6)

MAX_MSG_SIZE = 2048
MAX_CREDS_IN_LIST = 8
CRED_FORMAT = 1
CRED_FLAG_HMAC_SECRET = 0x01
CRED_ID_SIZE = 1 + 12 + (1 + 32 + 32) + 16

ES256 = -7
PUBLIC_KEY = "public-key"
HMAC_SECRET = "hmac-secret"
SALT_SIZE = 32

# authenticator data flags (WebAuthn §6.1)
FLAG_UP, FLAG_UV, FLAG_AT, FLAG_ED = 0x01, 0x04, 0x40, 0x80


class Status(IntEnum):
    """CTAP status codes returned by this authenticator (the spec's "Status codes" table)."""

    SUCCESS = 0x00
    INVALID_COMMAND = 0x01
    INVALID_PARAMETER = 0x02
    INVALID_LENGTH = 0x03
    CBOR_UNEXPECTED_TYPE = 0x11
    INVALID_CBOR = 0x12
    MISSING_PARAMETER = 0x14
    CREDENTIAL_EXCLUDED = 0x19
    UNSUPPORTED_ALGORITHM = 0x26
    UNSUPPORTED_OPTION = 0x2B
    INVALID_OPTION = 0x2C
    KEEPALIVE_CANCEL = 0x2D
    NO_CREDENTIALS = 0x2E
    USER_ACTION_TIMEOUT = 0x2F
    NOT_ALLOWED = 0x30
    PIN_INVALID = 0x31
    PIN_BLOCKED = 0x32
    PIN_AUTH_INVALID = 0x33
    PIN_AUTH_BLOCKED = 0x34
    PIN_NOT_SET = 0x35
    PIN_POLICY_VIOLATION = 0x37
    INVALID_SUBCOMMAND = 0x3E
    UNAUTHORIZED_PERMISSION = 0x40


class CtapStatusError(Exception):
    """Ends a command with a non-zero CTAP status."""

    def __init__(self, status: Status) -> None:
        super().__init__(status.name)
        self.status = status


class Command(IntEnum):
    """CTAP2 command bytes (§6)."""

    MAKE_CREDENTIAL = 0x01
    GET_ASSERTION = 0x02
    GET_INFO = 0x04
    CLIENT_PIN = 0x06
    RESET = 0x07
    GET_NEXT_ASSERTION = 0x08
    SELECTION = 0x0B


class PinCommand(IntEnum):
    """authenticatorClientPIN subcommands (§6.5.5)."""

    GET_PIN_RETRIES = 0x01
    GET_KEY_AGREEMENT = 0x02
    SET_PIN = 0x03
    CHANGE_PIN = 0x04
    GET_PIN_TOKEN = 0x05
    GET_TOKEN_USING_PIN_WITH_PERMISSIONS = 0x09


Reply = Mapping[Any, Any] | None
Steps = Generator[None, Presence, Reply]
Params = dict[Any, Any]
PinHandler = Callable[[PinUvAuthProtocol, Params], Reply]
T = TypeVar("T")


# -- persistent state -----------------------------------------------------------------------------


def ensure_state(state: dict[str, Any]) -> bool:
    """Fill in a fresh key's state in place; True if anything was added (the caller persists).

    Layout (JSON types only): ``master_secret`` (hex, 32 bytes; wraps every credential),
    ``aaguid`` (hex, 16 bytes), ``sign_count`` (int), ``pin_hash`` (hex of
    LEFT(SHA-256(PIN), 16), or None while no PIN is set), ``pin_retries`` (int).
    """
    before = len(state)
    state.setdefault("master_secret", secrets.token_bytes(32).hex())
    state.setdefault("aaguid", uuid.uuid4().bytes.hex())
    state.setdefault("sign_count", 0)
    state.setdefault("pin_hash", None)
    state.setdefault("pin_retries", MAX_PIN_RETRIES)
    return len(state) != before


def set_pin(state: dict[str, Any], pin: str) -> None:
    """Provision ``pin`` directly in ``state`` (as setPIN / changePIN would) and reset the
    retry counter. The caller persists. Raises ValueError for a PIN the key would refuse."""
    encoded = pin.encode()
    if len(pin) < MIN_PIN_LENGTH or len(encoded) > MAX_PIN_BYTES or b"\0" in encoded:
        raise ValueError(
            f"a FIDO2 PIN has at least {MIN_PIN_LENGTH} characters and at most "
            f"{MAX_PIN_BYTES} UTF-8 bytes"
        )
    ensure_state(state)
    _store_pin_hash(state, encoded)


def _store_pin_hash(state: dict[str, Any], pin: bytes) -> None:
    state["pin_hash"] = hashlib.sha256(pin).digest()[:16].hex()
    state["pin_retries"] = MAX_PIN_RETRIES


def _derive_key(master_secret: bytes, purpose: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"ITS emulated FIDO2 " + purpose
    ).derive(master_secret)


# -- credentials ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Credential:
    """A non-discoverable ES256 credential, as carried inside its own id."""

    id: bytes
    rp_id_hash: bytes
    scalar: bytes  # the P-256 private key, 32 bytes big-endian
    hmac_secret: bool

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return ec.derive_private_key(int.from_bytes(self.scalar, "big"), ec.SECP256R1())

    def cose_public_key(self) -> dict[int, Any]:
        """COSE_Key of the credential public key: EC2, ES256, P-256 (RFC 9053 §7.1.1)."""
        numbers = self.private_key.public_key().public_numbers()
        return {
            1: 2,
            3: ES256,
            -1: 1,
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }

    def sign(self, message: bytes) -> bytes:
        """ECDSA P-256 / SHA-256, DER-encoded, as ES256 attestation and assertion signatures
        are (WebAuthn, "Signature Formats")."""
        return self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))


def _wrap_credential(wrap_key: bytes, rp_id_hash: bytes, hmac_secret: bool) -> _Credential:
    scalar = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    scalar_bytes = scalar.to_bytes(32, "big")
    flags = CRED_FLAG_HMAC_SECRET if hmac_secret else 0
    nonce = os.urandom(12)
    header = bytes([CRED_FORMAT])
    sealed = AESGCM(wrap_key).encrypt(nonce, bytes([flags]) + rp_id_hash + scalar_bytes, header)
    return _Credential(header + nonce + sealed, rp_id_hash, scalar_bytes, hmac_secret)


def _unwrap_credential(wrap_key: bytes, cred_id: bytes, rp_id_hash: bytes) -> _Credential | None:
    """The credential inside ``cred_id`` if this device made it for this RP, else None."""
    if len(cred_id) != CRED_ID_SIZE or cred_id[0] != CRED_FORMAT:
        return None
    try:
        plain = AESGCM(wrap_key).decrypt(cred_id[1:13], cred_id[13:], cred_id[:1])
    except InvalidTag:
        return None
    if not hmac.compare_digest(plain[1:33], rp_id_hash):
        return None
    return _Credential(cred_id, rp_id_hash, plain[33:], bool(plain[0] & CRED_FLAG_HMAC_SECRET))


# -- CBOR parameter access ------------------------------------------------------------------------


def _optional(params: Mapping[Any, Any], key: Any, kind: type[T]) -> T | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CtapStatusError(Status.CBOR_UNEXPECTED_TYPE)
    return value


def _required(params: Mapping[Any, Any], key: Any, kind: type[T]) -> T:
    value = _optional(params, key, kind)
    if value is None:
        raise CtapStatusError(Status.MISSING_PARAMETER)
    return value


def _options(params: Mapping[Any, Any], key: int) -> dict[str, bool]:
    options = _optional(params, key, dict) or {}
    if not all(isinstance(k, str) and isinstance(v, bool) for k, v in options.items()):
        raise CtapStatusError(Status.CBOR_UNEXPECTED_TYPE)
    return options


def _credential_ids(descriptors: list[Any]) -> list[bytes]:
    """The ids of the "public-key" entries of an allowList / excludeList (§6.1, §6.2)."""
    ids = []
    for descriptor in descriptors:
        if not isinstance(descriptor, dict):
            raise CtapStatusError(Status.CBOR_UNEXPECTED_TYPE)
        kind = _required(descriptor, "type", str)
        cred_id = _required(descriptor, "id", bytes)
        if kind == PUBLIC_KEY:
            ids.append(cred_id)
    return ids


def _is_es256(parameters: Any) -> bool:
    """Whether a pubKeyCredParams entry (§6.1) asks for a "public-key" ES256 credential."""
    if not isinstance(parameters, dict):
        raise CtapStatusError(Status.CBOR_UNEXPECTED_TYPE)
    kind = _required(parameters, "type", str)
    return kind == PUBLIC_KEY and _required(parameters, "alg", int) == ES256


def _rp_id_hash(rp_id: str) -> bytes:
    return hashlib.sha256(rp_id.encode()).digest()


# -- the authenticator ----------------------------------------------------------------------------


class EmulatedAuthenticator:
    """The CTAP2 command layer of the emulated key.

    Per power cycle (i.e. per instance) it holds the PIN/UV protocols' key agreement keys and
    tokens, the pinUvAuthToken state and the consecutive-wrong-PIN counter; everything else is
    read from ``state`` at each command and ``persist()`` is called after each change.
    """

    def __init__(
        self, state: dict[str, Any], persist: Callable[[], None] | None = None
    ) -> None:
        self._state = state
        self._persist = persist
        self._protocols: dict[int, PinUvAuthProtocol] = {2: PinProtocolTwo(), 1: PinProtocolOne()}
        self._token = TokenState()
        self._pin_mismatches = 0
        self._powered_up = time.monotonic()
        self._handlers: dict[int, Callable[[Params], Reply | Steps]] = {
            Command.GET_INFO: self._get_info,
            Command.MAKE_CREDENTIAL: self._make_credential,
            Command.GET_ASSERTION: self._get_assertion,
            Command.CLIENT_PIN: self._client_pin,
            Command.RESET: self._reset,
            Command.GET_NEXT_ASSERTION: self._get_next_assertion,
            Command.SELECTION: self._selection,
        }
        self._pin_handlers: dict[int, PinHandler] = {
            PinCommand.GET_KEY_AGREEMENT: self._get_key_agreement,
            PinCommand.SET_PIN: self._set_pin,
            PinCommand.CHANGE_PIN: self._change_pin,
            PinCommand.GET_PIN_TOKEN: self._get_pin_token,
            PinCommand.GET_TOKEN_USING_PIN_WITH_PERMISSIONS: self._get_token_with_permissions,
        }
        if ensure_state(state):
            self._save()

    def process(self, request: bytes) -> CommandRun:
        """Run one CTAPHID_CBOR request: command byte, then CBOR parameters (§8). A generator:
        it yields while it waits for user presence and returns status byte + CBOR response."""
        try:
            handler = self._handlers.get(request[0])
            if handler is None:
                raise CtapStatusError(Status.INVALID_COMMAND)
            result = handler(_decode_parameters(request[1:]))
            reply = (yield from result) if isinstance(result, Generator) else result
        except CtapStatusError as error:
            return bytes([error.status])
        return b"\0" + (cbor.encode(reply) if reply else b"")

    # state helpers ----------------------------------------------------------------------------

    def _save(self) -> None:
        if self._persist is not None:
            self._persist()

    @property
    def _pin_is_set(self) -> bool:
        return self._state["pin_hash"] is not None

    def _keys(self) -> tuple[bytes, bytes]:
        """(credential wrap key, CredRandom key), derived from the master secret."""
        master = bytes.fromhex(self._state["master_secret"])
        return _derive_key(master, b"credential wrap"), _derive_key(master, b"hmac-secret")

    def _next_sign_count(self) -> int:
        self._state["sign_count"] = (self._state["sign_count"] + 1) & 0xFFFFFFFF
        self._save()
        return int(self._state["sign_count"])

    def _authenticator_data(
        self,
        rp_id_hash: bytes,
        *,
        up: bool,
        uv: bool,
        credential: _Credential | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> bytes:
        """``rpIdHash(32) | flags(1) | signCount(4) | [attestedCredentialData] | [extensions]``
        (WebAuthn §6.1); attested credential data is ``aaguid(16) | idLength(2) | id |
        COSE public key`` (WebAuthn §6.5.1)."""
        flags = (FLAG_UP if up else 0) | (FLAG_UV if uv else 0)
        flags |= (FLAG_AT if credential else 0) | (FLAG_ED if extensions else 0)
        data = rp_id_hash + bytes([flags]) + self._next_sign_count().to_bytes(4, "big")
        if credential is not None:
            data += bytes.fromhex(self._state["aaguid"])
            data += len(credential.id).to_bytes(2, "big") + credential.id
            data += cbor.encode(credential.cose_public_key())
        if extensions:
            data += cbor.encode(dict(extensions))
        return data

    # user presence and pinUvAuthParam -----------------------------------------------------------

    def _user_presence(self) -> Generator[None, Presence, None]:
        """Wait for a touch; the transport sends KEEPALIVE UPNEEDED meanwhile (§11.2.9)."""
        outcome = yield
        if outcome is Presence.CANCELLED:
            raise CtapStatusError(Status.KEEPALIVE_CANCEL)
        if outcome is Presence.TIMED_OUT:
            raise CtapStatusError(Status.USER_ACTION_TIMEOUT)

    def _touch_consuming_token(self) -> Generator[None, Presence, None]:
        """The touch of makeCredential / getAssertion: this evidence of user interaction uses
        up the pinUvAuthToken's permissions (§6.1.2, §6.2.2:
        clearUserPresentFlag, clearUserVerifiedFlag, clearPinUvAuthTokenPermissionsExceptLbw)."""
        yield from self._user_presence()
        self._token.permissions = 0

    def _empty_pin_uv_auth_param(self) -> Steps:
        """A zero-length pinUvAuthParam asks for a touch, then reports whether a PIN is set
        (§6.1.2, §6.2.2): how CTAP 2.0 platforms let the user pick a key."""
        yield from self._user_presence()
        raise CtapStatusError(Status.PIN_INVALID if self._pin_is_set else Status.PIN_NOT_SET)

    def _protocol(self, version: Any) -> PinUvAuthProtocol:
        if not isinstance(version, int) or isinstance(version, bool):
            raise CtapStatusError(
                Status.MISSING_PARAMETER if version is None else Status.CBOR_UNEXPECTED_TYPE
            )
        protocol = self._protocols.get(version)
        if protocol is None:
            raise CtapStatusError(Status.INVALID_PARAMETER)
        return protocol

    def _verify_pin_uv_auth_param(
        self, protocol: PinUvAuthProtocol, param: bytes, client_data_hash: bytes,
        permission: int, rp_id: str,
    ) -> None:
        """pinUvAuthParam must be authenticate(pinUvAuthToken, clientDataHash) with a token that
        carries ``permission`` for this RP (§6.1.2, §6.2.2). A token without an
        RP ID gets this one."""
        token = self._token
        if not token.in_use or not protocol.verify(protocol.token, client_data_hash, param):
            raise CtapStatusError(Status.PIN_AUTH_INVALID)
        if not token.permissions & permission or token.rp_id not in (None, rp_id):
            raise CtapStatusError(Status.PIN_AUTH_INVALID)
        token.rp_id = rp_id

    # authenticatorGetInfo (§6.4) ----------------------------------------------------------------

    def _get_info(self, params: Params) -> Reply:
        return {
            0x01: ["FIDO_2_0", "FIDO_2_1"],
            0x02: [HMAC_SECRET],
            0x03: bytes.fromhex(self._state["aaguid"]),
            0x04: {
                "rk": False,
                "up": True,
                "plat": False,
                "clientPin": self._pin_is_set,
                "pinUvAuthToken": True,
                "makeCredUvNotRqd": True,
            },
            0x05: MAX_MSG_SIZE,
            0x06: [2, 1],
            0x07: MAX_CREDS_IN_LIST,
            0x08: CRED_ID_SIZE,
            0x09: ["usb"],
            0x0A: [{"type": PUBLIC_KEY, "alg": ES256}],
            0x0D: MIN_PIN_LENGTH,
            0x0E: FIRMWARE_VERSION[0] << 16 | FIRMWARE_VERSION[1] << 8 | FIRMWARE_VERSION[2],
        }

    # authenticatorMakeCredential (§6.1) ---------------------------------------------------------

    def _make_credential(self, params: Params) -> Steps:
        """Parameters: 1 clientDataHash, 2 rp, 3 user, 4 pubKeyCredParams,
        5 excludeList, 6 extensions, 7 options, 8 pinUvAuthParam, 9 pinUvAuthProtocol.
        Response: 1 fmt, 2 authData, 3 attStmt."""
        pin_uv_auth_param = _optional(params, 8, bytes)
        if pin_uv_auth_param == b"":
            return (yield from self._empty_pin_uv_auth_param())
        protocol = self._protocol(params.get(9)) if pin_uv_auth_param is not None else None
        client_data_hash = _required(params, 1, bytes)
        rp_id = _required(_required(params, 2, dict), "id", str)
        _required(_required(params, 3, dict), "id", bytes)
        algorithms = _required(params, 4, list)
        exclude_ids = _credential_ids(_optional(params, 5, list) or [])
        extensions = _optional(params, 6, dict) or {}
        options = _options(params, 7)

        if not any(_is_es256(entry) for entry in algorithms):
            raise CtapStatusError(Status.UNSUPPORTED_ALGORITHM)
        if options.get("rk"):
            raise CtapStatusError(Status.UNSUPPORTED_OPTION)  # no discoverable credentials
        if options.get("up") is False or (options.get("uv") and protocol is None):
            raise CtapStatusError(Status.INVALID_OPTION)  # no built-in UV either

        uv = False
        if protocol is not None and pin_uv_auth_param is not None:
            self._verify_pin_uv_auth_param(
                protocol, pin_uv_auth_param, client_data_hash, Permission.MAKE_CREDENTIAL, rp_id
            )
            uv = True

        wrap_key, _ = self._keys()
        rp_id_hash = _rp_id_hash(rp_id)
        if any(_unwrap_credential(wrap_key, i, rp_id_hash) for i in exclude_ids):
            yield from self._user_presence()
            raise CtapStatusError(Status.CREDENTIAL_EXCLUDED)
        yield from self._touch_consuming_token()

        credential = _wrap_credential(wrap_key, rp_id_hash, extensions.get(HMAC_SECRET) is True)
        outputs = {HMAC_SECRET: True} if credential.hmac_secret else {}
        auth_data = self._authenticator_data(
            rp_id_hash, up=True, uv=uv, credential=credential, extensions=outputs
        )
        # "packed" self attestation (WebAuthn §8.2): signed by the credential key itself
        statement = {"alg": ES256, "sig": credential.sign(auth_data + client_data_hash)}
        return {1: "packed", 2: auth_data, 3: statement}

    # authenticatorGetAssertion (§6.2) -----------------------------------------------------------

    def _get_assertion(self, params: Params) -> Steps:
        """Parameters: 1 rpId, 2 clientDataHash, 3 allowList, 4 extensions, 5 options,
        6 pinUvAuthParam, 7 pinUvAuthProtocol. Response: 1 credential, 2 authData,
        3 signature. "up": false gives a silent assertion (UP flag clear)."""
        pin_uv_auth_param = _optional(params, 6, bytes)
        if pin_uv_auth_param == b"":
            return (yield from self._empty_pin_uv_auth_param())
        protocol = self._protocol(params.get(7)) if pin_uv_auth_param is not None else None
        rp_id = _required(params, 1, str)
        client_data_hash = _required(params, 2, bytes)
        allow_ids = _credential_ids(_optional(params, 3, list) or [])
        extensions = _optional(params, 4, dict) or {}
        options = _options(params, 5)
        if "rk" in options:
            raise CtapStatusError(Status.UNSUPPORTED_OPTION)
        if options.get("uv") and protocol is None:
            raise CtapStatusError(Status.INVALID_OPTION)

        uv = False
        if protocol is not None and pin_uv_auth_param is not None:
            self._verify_pin_uv_auth_param(
                protocol, pin_uv_auth_param, client_data_hash, Permission.GET_ASSERTION, rp_id
            )
            uv = True

        wrap_key, cred_random_key = self._keys()
        rp_id_hash = _rp_id_hash(rp_id)
        found = (_unwrap_credential(wrap_key, i, rp_id_hash) for i in allow_ids)
        credential = next((c for c in found if c is not None), None)
        if credential is None:
            raise CtapStatusError(Status.NO_CREDENTIALS)
        up = options.get("up", True)
        if up:
            yield from self._touch_consuming_token()

        outputs = {}
        hmac_input = extensions.get(HMAC_SECRET)
        if hmac_input is not None and credential.hmac_secret:
            outputs[HMAC_SECRET] = self._hmac_secret(hmac_input, credential, cred_random_key, uv)
        auth_data = self._authenticator_data(rp_id_hash, up=up, uv=uv, extensions=outputs)
        return {
            1: {"id": credential.id, "type": PUBLIC_KEY},
            2: auth_data,
            3: credential.sign(auth_data + client_data_hash),
        }

    def _hmac_secret(
        self, request: Any, credential: _Credential, cred_random_key: bytes, uv: bool
    ) -> bytes:
        """The hmac-secret extension at getAssertion (§12.5). Input: 1 keyAgreement, 2 saltEnc,
        3 saltAuth, 4 pinUvAuthProtocol (default 1). The platform's key agreement gives the
        shared secret; saltAuth must be authenticate(sharedSecret, saltEnc); saltEnc decrypts
        to salt1 (32 bytes) or salt1 || salt2. The output is encrypt(sharedSecret, output1
        [|| output2]) with outputN = HMAC-SHA-256(CredRandom, saltN), where CredRandom is
        CredRandomWithUV if the UV flag is set, else CredRandomWithoutUV."""
        if not isinstance(request, dict):
            raise CtapStatusError(Status.CBOR_UNEXPECTED_TYPE)
        key_agreement = _required(request, 1, dict)
        salt_enc = _required(request, 2, bytes)
        salt_auth = _required(request, 3, bytes)
        protocol = self._protocol(request.get(4, 1))
        shared_secret = self._decapsulate(protocol, key_agreement)
        if not protocol.verify(shared_secret, salt_enc, salt_auth):
            raise CtapStatusError(Status.PIN_AUTH_INVALID)
        try:
            salts = protocol.decrypt(shared_secret, salt_enc)
        except PinProtocolError:
            raise CtapStatusError(Status.INVALID_LENGTH) from None
        if len(salts) not in (SALT_SIZE, 2 * SALT_SIZE):
            raise CtapStatusError(Status.INVALID_LENGTH)
        label = b"CredRandomWithUV" if uv else b"CredRandomWithoutUV"
        cred_random = hmac.new(
            cred_random_key, label + credential.rp_id_hash + credential.scalar, hashlib.sha256
        ).digest()
        outputs = b"".join(
            hmac.new(cred_random, salts[i : i + SALT_SIZE], hashlib.sha256).digest()
            for i in range(0, len(salts), SALT_SIZE)
        )
        return protocol.encrypt(shared_secret, outputs)

    def _get_next_assertion(self, params: Params) -> Reply:
        raise CtapStatusError(Status.NOT_ALLOWED)  # never more than one assertion (§6.3)

    # authenticatorClientPIN (§6.5) --------------------------------------------------------------

    def _client_pin(self, params: Params) -> Reply:
        """Parameters (§6.5.5): 1 pinUvAuthProtocol, 2 subCommand, 3 keyAgreement,
        4 pinUvAuthParam, 5 newPinEnc, 6 pinHashEnc, 9 permissions, 10 rpId. Response: 1
        keyAgreement, 2 pinUvAuthToken (encrypted), 3 pinRetries, 4 powerCycleState."""
        sub_command = _required(params, 2, int)
        if sub_command == PinCommand.GET_PIN_RETRIES:
            return {3: self._state["pin_retries"], 4: self._power_cycle_needed}
        handler = self._pin_handlers.get(sub_command)
        if handler is None:
            raise CtapStatusError(Status.INVALID_SUBCOMMAND)  # no built-in UV: 0x06, 0x07
        return handler(self._protocol(params.get(1)), params)

    @property
    def _power_cycle_needed(self) -> bool:
        return self._pin_mismatches >= MAX_CONSECUTIVE_PIN_MISMATCHES

    def _decapsulate(self, protocol: PinUvAuthProtocol, key_agreement: Any) -> bytes:
        try:
            return protocol.decapsulate(key_agreement)
        except PinProtocolError:
            raise CtapStatusError(Status.INVALID_PARAMETER) from None

    def _get_key_agreement(self, protocol: PinUvAuthProtocol, params: Params) -> Reply:
        """getKeyAgreement (§6.5.5): the authenticator's key agreement public key."""
        return {1: protocol.public_key()}

    def _set_pin(self, protocol: PinUvAuthProtocol, params: Params) -> Reply:
        """setPIN (§6.5.5): pinUvAuthParam = authenticate(sharedSecret, newPinEnc)."""
        key_agreement = _required(params, 3, dict)
        pin_uv_auth_param = _required(params, 4, bytes)
        new_pin_enc = _required(params, 5, bytes)
        if self._pin_is_set:
            raise CtapStatusError(Status.NOT_ALLOWED)
        shared_secret = self._decapsulate(protocol, key_agreement)
        if not protocol.verify(shared_secret, new_pin_enc, pin_uv_auth_param):
            raise CtapStatusError(Status.PIN_AUTH_INVALID)
        self._store_new_pin(protocol, shared_secret, new_pin_enc)
        return None

    def _change_pin(self, protocol: PinUvAuthProtocol, params: Params) -> Reply:
        """changePIN (§6.5.5): pinUvAuthParam = authenticate(sharedSecret, newPinEnc ||
        pinHashEnc); the current PIN is checked like getPinToken does."""
        key_agreement = _required(params, 3, dict)
        pin_uv_auth_param = _required(params, 4, bytes)
        new_pin_enc = _required(params, 5, bytes)
        pin_hash_enc = _required(params, 6, bytes)
        self._check_pin_usable()
        shared_secret = self._decapsulate(protocol, key_agreement)
        if not protocol.verify(shared_secret, new_pin_enc + pin_hash_enc, pin_uv_auth_param):
            raise CtapStatusError(Status.PIN_AUTH_INVALID)
        self._check_pin_hash(protocol, shared_secret, pin_hash_enc)
        self._store_new_pin(protocol, shared_secret, new_pin_enc)
        self._token = TokenState()
        for each in self._protocols.values():
            each.reset_token()
        return None

    def _get_pin_token(self, protocol: PinUvAuthProtocol, params: Params) -> Reply:
        """getPinToken (§6.5.5): a token with the default permissions mc and ga."""
        if 9 in params or 10 in params:
            raise CtapStatusError(Status.INVALID_PARAMETER)
        return self._issue_token(protocol, params, Permission.SUPPORTED, None)

    def _get_token_with_permissions(self, protocol: PinUvAuthProtocol, params: Params) -> Reply:
        """getPinUvAuthTokenUsingPinWithPermissions (§6.5.5): 9 permissions, 10 rpId."""
        permissions = _required(params, 9, int)
        rp_id = _optional(params, 10, str)
        if permissions == 0:
            raise CtapStatusError(Status.INVALID_PARAMETER)
        if permissions & ~Permission.SUPPORTED:
            raise CtapStatusError(Status.UNAUTHORIZED_PERMISSION)
        return self._issue_token(protocol, params, permissions, rp_id)

    def _issue_token(
        self, protocol: PinUvAuthProtocol, params: Params, permissions: int, rp_id: str | None
    ) -> Reply:
        """Check the PIN (3 keyAgreement, 6 pinHashEnc = encrypt(sharedSecret,
        LEFT(SHA-256(PIN), 16))) and answer 2: encrypt(sharedSecret, new pinUvAuthToken)."""
        key_agreement = _required(params, 3, dict)
        pin_hash_enc = _required(params, 6, bytes)
        self._check_pin_usable()
        shared_secret = self._decapsulate(protocol, key_agreement)
        self._check_pin_hash(protocol, shared_secret, pin_hash_enc)
        for each in self._protocols.values():
            each.reset_token()
        self._token = TokenState(in_use=True, permissions=permissions, rp_id=rp_id)
        return {2: protocol.encrypt(shared_secret, protocol.token)}

    def _check_pin_usable(self) -> None:
        if not self._pin_is_set:
            raise CtapStatusError(Status.PIN_NOT_SET)
        if self._state["pin_retries"] <= 0:
            raise CtapStatusError(Status.PIN_BLOCKED)
        if self._power_cycle_needed:
            raise CtapStatusError(Status.PIN_AUTH_BLOCKED)

    def _check_pin_hash(
        self, protocol: PinUvAuthProtocol, shared_secret: bytes, pin_hash_enc: bytes
    ) -> None:
        """The PIN check of getPinToken / changePIN (§6.5.5): decrement pinRetries first
        (persisted), then compare decrypt(pinHashEnc) with the stored LEFT(SHA-256(PIN), 16).
        A mismatch regenerates the key agreement keys and answers PIN_INVALID, PIN_AUTH_BLOCKED
        after 3 in a row (until a power cycle), PIN_BLOCKED when no retries are left. A match
        restores the retries."""
        self._state["pin_retries"] -= 1
        self._save()
        try:
            pin_hash = protocol.decrypt(shared_secret, pin_hash_enc)
        except PinProtocolError:
            pin_hash = b""
        if not hmac.compare_digest(pin_hash, bytes.fromhex(self._state["pin_hash"])):
            self._pin_mismatches += 1
            for each in self._protocols.values():
                each.regenerate()
            if self._state["pin_retries"] <= 0:
                raise CtapStatusError(Status.PIN_BLOCKED)
            if self._power_cycle_needed:
                raise CtapStatusError(Status.PIN_AUTH_BLOCKED)
            raise CtapStatusError(Status.PIN_INVALID)
        self._pin_mismatches = 0
        self._state["pin_retries"] = MAX_PIN_RETRIES
        self._save()

    def _store_new_pin(
        self, protocol: PinUvAuthProtocol, shared_secret: bytes, new_pin_enc: bytes
    ) -> None:
        """newPinEnc decrypts to the PIN's UTF-8 bytes zero-padded to 64 bytes (setPIN, §6.5.5)."""
        try:
            padded = protocol.decrypt(shared_secret, new_pin_enc)
        except PinProtocolError:
            raise CtapStatusError(Status.INVALID_PARAMETER) from None
        if len(padded) != PADDED_PIN_SIZE:
            raise CtapStatusError(Status.INVALID_PARAMETER)
        pin = padded.split(b"\0", 1)[0]
        try:
            code_points = len(pin.decode())
        except UnicodeDecodeError:
            raise CtapStatusError(Status.PIN_POLICY_VIOLATION) from None
        if code_points < MIN_PIN_LENGTH or len(pin) > MAX_PIN_BYTES:
            raise CtapStatusError(Status.PIN_POLICY_VIOLATION)
        _store_pin_hash(self._state, pin)
        self._save()

    # authenticatorReset (§6.6), authenticatorSelection (§6.9) -----------------------------------

    def _reset(self, params: Params) -> Steps:
        """Forget every credential (new master secret) and the PIN; needs a touch, and only
        within 10 s of power-up."""
        if time.monotonic() - self._powered_up > RESET_WINDOW_S:
            raise CtapStatusError(Status.NOT_ALLOWED)
        yield from self._user_presence()
        self._state["master_secret"] = secrets.token_bytes(32).hex()
        self._state["pin_hash"] = None
        self._state["pin_retries"] = MAX_PIN_RETRIES
        self._save()
        self._token = TokenState()
        self._pin_mismatches = 0
        for each in self._protocols.values():
            each.regenerate()
            each.reset_token()
        return None

    def _selection(self, params: Params) -> Steps:
        yield from self._user_presence()
        return None


def _decode_parameters(body: bytes) -> dict[Any, Any]:
    """The CBOR map of a command's parameters (§8); an absent body is an empty map."""
    if not body:
        return {}
    try:
        params = cbor.decode(body)
    except Exception:  # the codec raises whatever its parser trips over
        raise CtapStatusError(Status.INVALID_CBOR) from None
    if not isinstance(params, dict):
        raise CtapStatusError(Status.CBOR_UNEXPECTED_TYPE)
    return params


# -- opening the device ---------------------------------------------------------------------------


def emulated_descriptor(state: dict[str, Any]) -> HidDescriptor:
    """A HID descriptor for the emulated key: 64-byte reports, product "ITS Emulated FIDO2"."""
    ensure_state(state)
    serial = state["aaguid"][:12].upper()
    return HidDescriptor(
        path=f"emulated-fido2:{serial}",
        vid=VENDOR_ID,
        pid=PRODUCT_ID,
        report_size_in=PACKET_SIZE,
        report_size_out=PACKET_SIZE,
        product_name=PRODUCT_NAME,
        serial_number=serial,
    )


def open_emulated_connection(
    state: dict[str, Any],
    persist: Callable[[], None] | None = None,
    touch: TouchPolicy = TouchPolicy(),
) -> EmulatedHidConnection:
    """A CTAPHID connection to a freshly powered-up emulated key backed by ``state``."""
    authenticator = EmulatedAuthenticator(state, persist)
    return EmulatedHidConnection(authenticator.process, touch, FIRMWARE_VERSION)


def open_emulated_device(
    state: dict[str, Any],
    persist: Callable[[], None] | None = None,
    touch: TouchPolicy = TouchPolicy(),
) -> CtapHidDevice:
    """python-fido2's ``CtapHidDevice`` talking to an emulated key backed by ``state``:
    pass it to ``Fido2Client`` / ``Ctap2`` like a device from ``CtapHidDevice.list_devices()``."""
    connection = open_emulated_connection(state, persist, touch)
    return CtapHidDevice(emulated_descriptor(state), connection)
