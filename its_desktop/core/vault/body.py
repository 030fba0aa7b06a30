"""The sealed body's plaintext, decoded lazily so that opening 10,000 secrets stays cheap.

    u32 meta length | meta (JSON: audit anchor, settings, index of [name, record length])
    | the records, JSON each, concatenated in index order

Only the index is parsed on open; a record becomes a ``Secret`` when something reads it, and
an untouched record is written back byte for byte on save.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any, Iterator

from ..errors import VaultCorrupted
from ..secrets import Secret

_LEN = struct.Struct(">I")


@dataclass(frozen=True)
class AuditAnchor:
    """The audit chain's latest record at the time of a save."""

    seq: int
    mac: str


class Body:
    def __init__(self, anchor: AuditAnchor | None = None, settings: dict[str, Any] | None = None) -> None:
        self.anchor = anchor
        self.settings: dict[str, Any] = dict(settings or {})
        self._raw: dict[str, bytes] = {}
        self._parsed: dict[str, Secret] = {}

    def __repr__(self) -> str:
        return f"<Body {len(self)} secrets>"

    def __len__(self) -> int:
        return len(self._raw) + len(self._parsed)

    def __contains__(self, name: str) -> bool:
        return name in self._parsed or name in self._raw

    def names(self) -> list[str]:
        return sorted([*self._raw, *self._parsed])

    def get(self, name: str) -> Secret | None:
        secret = self._parsed.get(name)
        if secret is None and name in self._raw:
            secret = _decode_record(self._raw.pop(name))
            self._parsed[name] = secret
        return secret

    def put(self, secret: Secret) -> None:
        self._raw.pop(secret.name, None)
        self._parsed[secret.name] = secret

    def remove(self, name: str) -> None:
        self._raw.pop(name, None)
        self._parsed.pop(name, None)

    def secrets(self) -> Iterator[Secret]:
        for name in self.names():
            secret = self.get(name)
            assert secret is not None
            yield secret

    def encode(self) -> bytes:
        names = self.names()
        records = [self._raw[n] if n in self._raw else _encode_record(self._parsed[n]) for n in names]
        anchor = None if self.anchor is None else {"mac": self.anchor.mac, "seq": self.anchor.seq}
        meta = {"anchor": anchor, "index": [[n, len(r)] for n, r in zip(names, records)],
                "settings": self.settings}
        meta_bytes = json.dumps(meta, separators=(",", ":")).encode("utf-8")
        return b"".join([_LEN.pack(len(meta_bytes)), meta_bytes, *records])

    @classmethod
    def decode(cls, plaintext: bytes) -> Body:
        try:
            (meta_len,) = _LEN.unpack_from(plaintext)
            meta = json.loads(plaintext[4:4 + meta_len])
            anchor = meta["anchor"]
            body = cls(AuditAnchor(int(anchor["seq"]), str(anchor["mac"])) if anchor else None,
                       meta["settings"])
            offset = 4 + meta_len
            raw = body._raw
            for name, length in meta["index"]:
                raw[name] = plaintext[offset:offset + length]
                offset += length
        except (struct.error, ValueError, KeyError, TypeError):
            raise VaultCorrupted("vault body is malformed") from None
        if offset != len(plaintext):
            raise VaultCorrupted("vault body is malformed")
        return body


def _encode_record(secret: Secret) -> bytes:
    return json.dumps(secret.to_json(), separators=(",", ":")).encode("utf-8")


def _decode_record(raw: bytes) -> Secret:
    try:
        return Secret.from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError):
        raise VaultCorrupted("a secret record in the vault is malformed") from None
