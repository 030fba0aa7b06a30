"""Authenticator side of the PIN/UV auth protocols one and two (CTAP 2.1 §6.5.6, §6.5.7).

Both protocols share one key agreement scheme: the authenticator holds an ephemeral P-256
key pair (``authenticatorKeyAgreementKey``, new at every power-up and after a wrong PIN), hands
its public half to the platform as a COSE_Key, and turns the ECDH x-coordinate ``Z`` into a
shared secret with the protocol's KDF. They differ in that KDF and in the symmetric primitives:

=====================  ==========================================  ===========================
operation              protocol 1 (§6.5.6)                         protocol 2 (§6.5.7)
=====================  ==========================================  ===========================
kdf(Z)                 SHA-256(Z) (32 bytes)                       HKDF-SHA-256(salt = 32 zero
                                                                   bytes, info "CTAP2 HMAC
                                                                   key") || same with "CTAP2
                                                                   AES key" (64 bytes)
encrypt(key, m)        AES-256-CBC, all-zero IV                    random IV || AES-256-CBC
                                                                   under key[32:]
authenticate(key, m)   first 16 bytes of HMAC-SHA-256(key, m)      HMAC-SHA-256(key[:32], m)
=====================  ==========================================  ===========================

Each protocol also owns a ``pinUvAuthToken`` (32 random bytes, new at power-up and whenever a
token is issued, §6.5). Written from the specification on top of ``cryptography``'s
primitives, independent of python-fido2's client-side implementation.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeGuard

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

AES_BLOCK = 16
TOKEN_SIZE = 32

# COSE_Key labels and values (RFC 9052/9053) used by the key agreement key
COSE_KTY, COSE_ALG, COSE_CRV, COSE_X, COSE_Y = 1, 3, -1, -2, -3
KTY_EC2, CRV_P256 = 2, 1
ALG_ECDH_ES_HKDF_256 = -25  # what §6.5.6 says to advertise, "although not the algorithm used"


class PinProtocolError(ValueError):
    """A malformed platform key or ciphertext; the caller maps it to a CTAP status."""


class PinUvAuthProtocol(ABC):
    """One PIN/UV auth protocol as the authenticator runs it: key agreement key and token."""

    VERSION: ClassVar[int]

    def __init__(self) -> None:
        self.regenerate()
        self.reset_token()

    def regenerate(self) -> None:
        """New key agreement key pair (§6.5.6 ``regenerate()``)."""
        self._key = ec.generate_private_key(ec.SECP256R1())

    def reset_token(self) -> None:
        """New random pinUvAuthToken (§6.5 ``resetPinUvAuthToken()``)."""
        self.token = os.urandom(TOKEN_SIZE)

    def public_key(self) -> dict[int, Any]:
        """The key agreement public key as a COSE_Key (§6.5.6 ``getPublicKey()``)."""
        point = self._key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return {
            COSE_KTY: KTY_EC2,
            COSE_ALG: ALG_ECDH_ES_HKDF_256,
            COSE_CRV: CRV_P256,
            COSE_X: point[1:33],
            COSE_Y: point[33:],
        }

    def decapsulate(self, peer: object) -> bytes:
        """The shared secret with the platform key ``peer`` (§6.5.6 ``decapsulate()``):
        ECDH on P-256, then this protocol's KDF over the x-coordinate."""
        if not isinstance(peer, Mapping) or peer.get(COSE_KTY) != KTY_EC2:
            raise PinProtocolError("keyAgreement is not an EC2 COSE_Key")
        x, y = peer.get(COSE_X), peer.get(COSE_Y)
        if peer.get(COSE_CRV) != CRV_P256 or not _is_coordinate(x) or not _is_coordinate(y):
            raise PinProtocolError("keyAgreement is not a P-256 point")
        try:
            point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
        except ValueError as exc:
            raise PinProtocolError("keyAgreement point is not on the curve") from exc
        return self.kdf(self._key.exchange(ec.ECDH(), point))

    def verify(self, key: bytes, message: bytes, signature: bytes) -> bool:
        """Constant-time check of ``signature == authenticate(key, message)``."""
        return hmac.compare_digest(self.authenticate(key, message), signature)

    @abstractmethod
    def kdf(self, z: bytes) -> bytes:
        """Shared secret from the ECDH x-coordinate."""

    @abstractmethod
    def encrypt(self, key: bytes, plaintext: bytes) -> bytes:
        """Encrypt a whole number of AES blocks."""

    @abstractmethod
    def decrypt(self, key: bytes, ciphertext: bytes) -> bytes:
        """Decrypt; raises PinProtocolError on a malformed ciphertext."""

    @abstractmethod
    def authenticate(self, key: bytes, message: bytes) -> bytes:
        """The MAC used for pinUvAuthParam, saltAuth and friends."""


class PinProtocolOne(PinUvAuthProtocol):
    """PIN/UV auth protocol one (CTAP 2.1 §6.5.6)."""

    VERSION = 1

    def kdf(self, z: bytes) -> bytes:
        return hashlib.sha256(z).digest()

    def encrypt(self, key: bytes, plaintext: bytes) -> bytes:
        return _aes_cbc(key, bytes(AES_BLOCK), plaintext, encrypt=True)

    def decrypt(self, key: bytes, ciphertext: bytes) -> bytes:
        return _aes_cbc(key, bytes(AES_BLOCK), ciphertext, encrypt=False)

    def authenticate(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, hashlib.sha256).digest()[:16]


class PinProtocolTwo(PinUvAuthProtocol):
    """PIN/UV auth protocol two (CTAP 2.1 §6.5.7): HKDF-separated HMAC and AES keys."""

    VERSION = 2

    def kdf(self, z: bytes) -> bytes:
        return _hkdf_sha256(z, b"CTAP2 HMAC key") + _hkdf_sha256(z, b"CTAP2 AES key")

    def encrypt(self, key: bytes, plaintext: bytes) -> bytes:
        iv = os.urandom(AES_BLOCK)
        return iv + _aes_cbc(key[32:], iv, plaintext, encrypt=True)

    def decrypt(self, key: bytes, ciphertext: bytes) -> bytes:
        if len(ciphertext) < AES_BLOCK:
            raise PinProtocolError("ciphertext shorter than its IV")
        iv, body = ciphertext[:AES_BLOCK], ciphertext[AES_BLOCK:]
        return _aes_cbc(key[32:], iv, body, encrypt=False)

    def authenticate(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key[:32], message, hashlib.sha256).digest()


@dataclass
class TokenState:
    """What the authenticator remembers about the issued pinUvAuthToken (§6.5):
    whether one is in use, its permissions (``Permission`` bits) and its permissions RP ID."""

    in_use: bool = False
    permissions: int = 0
    rp_id: str | None = None


class Permission:
    """pinUvAuthToken permission bits (§6.5.5); the emulator grants only mc and ga."""

    MAKE_CREDENTIAL = 0x01
    GET_ASSERTION = 0x02
    SUPPORTED = MAKE_CREDENTIAL | GET_ASSERTION


def _is_coordinate(value: object) -> TypeGuard[bytes]:
    return isinstance(value, bytes) and len(value) == 32


def _hkdf_sha256(ikm: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=bytes(32), info=info).derive(ikm)


def _aes_cbc(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    if len(data) % AES_BLOCK:
        raise PinProtocolError("not a whole number of AES blocks")
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = cipher.encryptor() if encrypt else cipher.decryptor()
    return op.update(data) + op.finalize()
