"""The sealed body's plaintext, decoded lazily so that opening 10,000 secrets stays cheap.

    u32 meta length | meta (JSON: audit anchor, settings,
                            index of [name, summary length, record length])
    | for each secret in index order: its summary (JSON array: the listing metadata, no value)
                                      then its record (JSON: value, fields, history)

Only the index is parsed on open; a record becomes a ``Secret`` when something reads it, a
listing parses only the summaries (in one go), and untouched records and summaries are
written back byte for byte on save.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from itertools import starmap
from typing import Any, Iterator

from ..errors import VaultCorrupted
from ..secrets import Secret, SecretSummary

_LEN = struct.Struct(">I")


@dataclass(frozen=True)
class AuditAnchor:
    """The audit chain's latest record at the time of a save."""

    seq: int
    mac: str


class Body:
    """Each secret is held as encoded bytes while unchanged (``_raw``, ``_raw_summary``), and
    as a ``Secret`` once read (a cache beside the bytes) or changed (then the bytes are gone)."""

    def __init__(self, anchor: AuditAnchor | None = None, settings: dict[str, Any] | None = None) -> None:
        self.anchor = anchor
        self.settings: dict[str, Any] = dict(settings or {})
        self._raw: dict[str, bytes] = {}  # name -> record bytes of an unchanged secret
        self._raw_summary: dict[str, bytes] = {}  # name -> summary bytes of an unchanged secret
        self._parsed: dict[str, Secret] = {}  # decoded (read) or changed secrets
        self._summaries: dict[str, SecretSummary] = {}
        self._order: list[str] | None = None  # sorted names, until a secret comes or goes

    def __repr__(self) -> str:
        return f"<Body {len(self)} secrets>"

    def __len__(self) -> int:
        return len(self.names())

    def __contains__(self, name: str) -> bool:
        return name in self._parsed or name in self._raw

    def names(self) -> list[str]:
        if self._order is None:
            self._order = sorted(self._raw.keys() | self._parsed.keys())
        return self._order

    def get(self, name: str) -> Secret | None:
        secret = self._parsed.get(name)
        if secret is None and name in self._raw:
            # The bytes stay: it is still unchanged.
            secret = _decode_record(self._raw_summary[name], self._raw[name])
            self._parsed[name] = secret
        return secret

    def put(self, secret: Secret) -> None:
        if secret.name not in self:
            self._order = None
        self._raw.pop(secret.name, None)
        self._raw_summary.pop(secret.name, None)
        self._summaries.pop(secret.name, None)
        self._parsed[secret.name] = secret

    def remove(self, name: str) -> None:
        for table in (self._raw, self._raw_summary, self._parsed, self._summaries):
            table.pop(name, None)
        self._order = None

    def summaries(self) -> list[SecretSummary]:
        """Every secret's listing row, sorted by name, without decoding any record."""
        missing = [n for n in self._raw_summary if n not in self._summaries]
        if missing:
            try:
                rows = json.loads(b"[" + b",".join(self._raw_summary[n] for n in missing) + b"]")
                self._summaries.update(zip(missing, starmap(SecretSummary, rows)))
            except (ValueError, KeyError, TypeError, RecursionError):
                raise VaultCorrupted("a secret summary in the vault is malformed") from None
        for name, secret in self._parsed.items():
            if name not in self._summaries:
                self._summaries[name] = secret.summary()
        return [self._summaries[n] for n in self.names()]

    def secrets(self) -> Iterator[Secret]:
        for name in self.names():
            secret = self.get(name)
            assert secret is not None
            yield secret

    def encode(self) -> bytes:
        names = self.names()
        parts: list[bytes] = []
        index = []
        for name in names:
            if name in self._raw:
                summary, record = self._raw_summary[name], self._raw[name]
            else:
                secret = self._parsed[name]
                summary, record = _encode_json(list(secret.summary())), _encode_json(secret.record())
                # Written now, so unchanged from here on: the next save reuses these bytes.
                self._raw_summary[name], self._raw[name] = summary, record
            parts += (summary, record)
            index.append([name, len(summary), len(record)])
        anchor = None if self.anchor is None else {"mac": self.anchor.mac, "seq": self.anchor.seq}
        meta = {"anchor": anchor, "index": index, "settings": self.settings}
        meta_bytes = json.dumps(meta, separators=(",", ":")).encode("utf-8")
        return b"".join([_LEN.pack(len(meta_bytes)), meta_bytes, *parts])

    @classmethod
    def decode(cls, plaintext: bytes) -> Body:
        try:
            (meta_len,) = _LEN.unpack_from(plaintext)
            meta = json.loads(plaintext[4:4 + meta_len])
            anchor = meta["anchor"]
            body = cls(AuditAnchor(int(anchor["seq"]), str(anchor["mac"])) if anchor else None,
                       meta["settings"])
            offset = 4 + meta_len
            raw, raw_summary = body._raw, body._raw_summary
            body._order = [entry[0] for entry in meta["index"]]  # written sorted
            for name, summary_length, length in meta["index"]:
                raw_summary[name] = plaintext[offset:offset + summary_length]
                offset += summary_length
                raw[name] = plaintext[offset:offset + length]
                offset += length
        except (struct.error, ValueError, KeyError, TypeError, RecursionError):
            raise VaultCorrupted("vault body is malformed") from None
        if offset != len(plaintext):
            raise VaultCorrupted("vault body is malformed")
        return body


def _encode_json(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def _decode_record(summary: bytes, record: bytes) -> Secret:
    try:
        return Secret.from_parts(SecretSummary.from_row(json.loads(summary)), json.loads(record))
    except (ValueError, KeyError, TypeError, RecursionError):
        raise VaultCorrupted("a secret record in the vault is malformed") from None
