"""What a secret looks like on a remote, and the content hash sync compares.

A synced secret is one JSON object (the data of a KV v2 version, or an AWS ``SecretString``)::

    {"its": "its-desktop/1", "value": "…", "fields": {"account": "U1234567"}, "type": "api_key",
     "tags": {"env": "prod"}, "description": "…", "updated": "2026-11-23T07:41:00.000000+00:00"}

The content hash covers what makes a secret *the same secret* on both sides: value, fields and
type, never times, tags or the description, so a pull followed by a push is not a change.

Secrets written by other tools are read too: a JSON object without the ``its`` marker becomes
fields (a lone ``value`` key becomes the value), anything else becomes the value. Their hash is
computed the same way after that mapping, so what is pulled hashes as the remote did.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from dataclasses import dataclass, field
from typing import Any

from ..core.secrets import Secret, SecretType

FORMAT = "its-desktop/1"
_TYPES = {t.value for t in SecretType}


def content_hash(value: str, fields: dict[str, str], type: str) -> str:
    """SHA-256 over canonical JSON of ``[value, fields, type]`` (sorted keys, UTF-8)."""
    canonical = json.dumps([value, fields, type], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, repr=False)
class Content:
    """A secret's synced content. Holds a value: never logged, never in a repr."""

    value: str
    fields: dict[str, str] = field(default_factory=dict)
    type: str = SecretType.GENERIC.value
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""
    updated: str | None = None  # when it last changed where it was written (ISO 8601)
    foreign: bool = False  # written by another tool, mapped as the module docstring says

    def __repr__(self) -> str:
        return f"<Content {self.type} {self.hash[:12]}>"

    @property
    def hash(self) -> str:
        return content_hash(self.value, self.fields, self.type)

    def to_json(self) -> dict[str, Any]:
        return {"its": FORMAT, "value": self.value, "fields": dict(self.fields), "type": self.type,
                "tags": dict(self.tags), "description": self.description, "updated": self.updated}


def from_secret(secret: Secret) -> Content:
    return Content(secret.value, dict(secret.fields), secret.type.value, dict(secret.tags), secret.description,
                   _iso(secret.updated))


def secret_hash(secret: Secret) -> str:
    return content_hash(secret.value, secret.fields, secret.type.value)


def decode(raw: Any) -> Content:
    """The content of a remote secret: ours (marked), another tool's JSON object, or text."""
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return Content(raw, foreign=True)
        if not isinstance(parsed, dict):
            return Content(raw, foreign=True)
        raw = parsed
    if not isinstance(raw, dict):
        return Content(_text(raw), foreign=True)
    if raw.get("its") == FORMAT and isinstance(raw.get("value"), str):
        kind = raw.get("type")
        return Content(
            raw["value"], _strings(raw.get("fields")), kind if kind in _TYPES else SecretType.GENERIC.value,
            _strings(raw.get("tags")), _text(raw.get("description") or ""),
            raw["updated"] if isinstance(raw.get("updated"), str) else None,
        )
    value = raw.get("value")
    rest = {k: v for k, v in raw.items() if k != "value"} if isinstance(value, str) else raw
    return Content(value if isinstance(value, str) else "", _strings(rest), foreign=True)


def _strings(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): _text(v) for k, v in raw.items()}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat(timespec="microseconds")
