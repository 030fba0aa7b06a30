"""The vault file's envelope and header (format version 1; docs/vault-format.md).

Layout, all integers big-endian:

    magic "ITSVAULT" (8) | format version u16 | header length u32 | header (canonical JSON)
    | sealed body (nonce 12 | AES-256-GCM ciphertext | tag 16) | SHA-256 of all the above (32)

The header is parsed canonically: it must be exactly the bytes we would write for the values
it holds, so there is one encoding per header and no room for ambiguous duplicates.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass, field
from typing import Any

from ..crypto import Argon2Params, checksum, constant_time_equal
from ..errors import UnsupportedVersion, VaultCorrupted

MAGIC = b"ITSVAULT"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
PREFIX = struct.Struct(">8sHI")
CHECKSUM_SIZE = 32
MAX_HEADER_BYTES = 1 << 20
MAX_SLOTS = 64
MIN_SEALED_BODY = 12 + 16


@dataclass(frozen=True)
class KeySlot:
    """One way in: the vault key wrapped under a key-encryption key.

    ``kind`` says how the KEK is derived (password, recovery, and the hardware factors);
    ``params`` holds that kind's public parameters (a challenge, a credential id, a serial).
    """

    id: str
    kind: str
    name: str
    created: str
    salt: bytes
    wrapped: bytes
    kdf: Argon2Params | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        kdf = None
        if self.kdf is not None:
            kdf = {"memory_kib": self.kdf.memory_kib, "parallelism": self.kdf.parallelism,
                   "time_cost": self.kdf.time_cost}
        return {"created": self.created, "id": self.id, "kdf": kdf, "kind": self.kind,
                "name": self.name, "params": self.params, "salt": _b64(self.salt),
                "wrapped": _b64(self.wrapped)}

    @classmethod
    def from_json(cls, raw: Any) -> KeySlot:
        obj = _require(raw, dict, "slot")
        _require_keys(obj, {"created", "id", "kdf", "kind", "name", "params", "salt", "wrapped"}, "slot")
        kdf = None
        if obj["kdf"] is not None:
            k = _require(obj["kdf"], dict, "slot kdf")
            _require_keys(k, {"memory_kib", "parallelism", "time_cost"}, "slot kdf")
            kdf = Argon2Params(_int(k["memory_kib"]), _int(k["time_cost"]), _int(k["parallelism"]))
            if not kdf.within_bounds():
                raise VaultCorrupted("vault header asks for KDF parameters outside the allowed range")
        return cls(
            id=_require(obj["id"], str, "slot id"),
            kind=_require(obj["kind"], str, "slot kind"),
            name=_require(obj["name"], str, "slot name"),
            created=_require(obj["created"], str, "slot created"),
            salt=_unb64(obj["salt"]),
            wrapped=_unb64(obj["wrapped"]),
            kdf=kdf,
            params=_require(obj["params"], dict, "slot params"),
        )


@dataclass(frozen=True)
class VaultHeader:
    vault_id: str
    generation: int
    created: str
    slots: tuple[KeySlot, ...]

    def encode(self) -> bytes:
        doc = {"created": self.created, "generation": self.generation,
               "slots": [s.to_json() for s in self.slots], "vault_id": self.vault_id}
        return _canonical(doc)

    def slot(self, slot_id: str) -> KeySlot | None:
        return next((s for s in self.slots if s.id == slot_id), None)


@dataclass(frozen=True)
class Envelope:
    """A vault file split into its parts; ``aad`` is everything the body's tag covers."""

    header: VaultHeader
    aad: bytes
    sealed_body: bytes | memoryview


def encode_file(header_bytes: bytes, sealed_body: bytes) -> list[bytes]:
    """The file as chunks to write in order (no 5 MB concatenation on every save)."""
    prefix = body_aad(header_bytes)
    return [prefix, sealed_body, checksum(prefix, sealed_body)]


def body_aad(header_bytes: bytes) -> bytes:
    return PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes)) + header_bytes


def parse_file(data: bytes) -> Envelope:
    """Split and check a vault file. Raises VaultCorrupted for anything but a sound file."""
    if len(data) < PREFIX.size or data[:8] != MAGIC:
        raise VaultCorrupted("not an ITS vault file (bad magic)")
    magic, version, header_len = PREFIX.unpack_from(data)
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedVersion(f"vault format version {version} is not supported by this build")
    if header_len > MAX_HEADER_BYTES:
        raise VaultCorrupted("vault header is implausibly large")
    body_start = PREFIX.size + header_len
    if len(data) < body_start + MIN_SEALED_BODY + CHECKSUM_SIZE:
        raise VaultCorrupted("vault file is truncated")
    view = memoryview(data)
    if not constant_time_equal(checksum(view[:-CHECKSUM_SIZE]), data[-CHECKSUM_SIZE:]):
        raise VaultCorrupted("vault file is damaged (checksum mismatch)")
    header_bytes = data[PREFIX.size:body_start]
    header = parse_header(header_bytes)
    return Envelope(header, data[:body_start], view[body_start:-CHECKSUM_SIZE])


def peek_header(path) -> VaultHeader:
    """Only the header, unverified: enough to choose which factors to offer before unlocking
    (``Vault.open`` verifies the whole file)."""
    with open(path, "rb") as fh:
        prefix = fh.read(PREFIX.size)
        if len(prefix) < PREFIX.size or prefix[:8] != MAGIC:
            raise VaultCorrupted("not an ITS vault file (bad magic)")
        _, version, header_len = PREFIX.unpack(prefix)
        if version not in SUPPORTED_VERSIONS:
            raise UnsupportedVersion(f"vault format version {version} is not supported by this build")
        if header_len > MAX_HEADER_BYTES:
            raise VaultCorrupted("vault header is implausibly large")
        return parse_header(fh.read(header_len))


def parse_header(header_bytes: bytes) -> VaultHeader:
    try:
        doc = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: "[[[[…" nesting
        raise VaultCorrupted("vault header is not valid") from None
    obj = _require(doc, dict, "header")
    _require_keys(obj, {"created", "generation", "slots", "vault_id"}, "header")
    slots_raw = _require(obj["slots"], list, "slots")
    if not 0 < len(slots_raw) <= MAX_SLOTS:
        raise VaultCorrupted("vault header has no key slots or too many")
    header = VaultHeader(
        vault_id=_require(obj["vault_id"], str, "vault id"),
        generation=_int(obj["generation"]),
        created=_require(obj["created"], str, "created"),
        slots=tuple(KeySlot.from_json(s) for s in slots_raw),
    )
    if len({s.id for s in header.slots}) != len(header.slots):
        raise VaultCorrupted("vault header has duplicate slot ids")
    if header.encode() != header_bytes:
        raise VaultCorrupted("vault header is not in canonical form")
    return header


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any) -> bytes:
    try:
        return base64.b64decode(_require(value, str, "base64 field"), validate=True)
    except ValueError:  # binascii.Error, or a non-ASCII string
        raise VaultCorrupted("vault header has a malformed base64 field") from None


def _require(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise VaultCorrupted(f"vault header: {what} has the wrong type")
    return value


def _int(value: Any) -> int:
    value = _require(value, int, "integer field")
    if not 0 <= value < 1 << 62:
        raise VaultCorrupted("vault header: integer out of range")
    return value


def _require_keys(obj: dict, keys: set[str], what: str) -> None:
    if set(obj) != keys:
        raise VaultCorrupted(f"vault header: {what} has unexpected fields")
