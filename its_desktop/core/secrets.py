"""Secrets and their versions. Values and fields never appear in a repr."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any, NamedTuple

from .errors import FieldNotFound, InvalidInput, VersionNotFound
from .passwords import ValuePolicy
from .rotation import RotationPolicy, RotationStatus, rotation_due, rotation_status

HISTORY_DEPTH = 10
MAX_NAME_LENGTH = 256
_BAD_SEGMENT = re.compile(r"[\x00-\x1f\x7f]")


class SecretType(str, Enum):
    API_KEY = "api_key"
    PASSWORD = "password"
    DATABASE = "database"
    CERTIFICATE = "certificate"
    SSH_KEY = "ssh_key"
    TOTP = "totp"
    NOTE = "note"
    GENERIC = "generic"

    @classmethod
    def parse(cls, text: str) -> SecretType:
        try:
            return cls(text)
        except ValueError:
            choices = ", ".join(t.value for t in cls)
            raise InvalidInput(f"unknown secret type '{text}' (choose from {choices})") from None


def new_id() -> str:
    import uuid  # lazily: `its-vault get` never makes one

    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def validate_name(name: str) -> str:
    """Names are folder paths like ``brokers/ibkr/api_key``: no empty segment, no control
    characters, no surrounding spaces."""
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"a secret name must be 1 to {MAX_NAME_LENGTH} characters")
    for segment in name.split("/"):
        if not segment or segment != segment.strip() or _BAD_SEGMENT.search(segment):
            raise InvalidInput(f"invalid secret name '{_printable(name)}': use folder/sub/name")
    return name


def _printable(text: str) -> str:
    return _BAD_SEGMENT.sub("?", text)


@dataclass(frozen=True)
class SecretVersion:
    """A former value, kept so that it can be restored."""

    version: int
    value: str = field(repr=False)
    fields: dict[str, str] = field(repr=False, default_factory=dict)
    created: datetime = field(default_factory=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "value": self.value, "fields": self.fields,
                "created": _iso(self.created)}

    @classmethod
    def from_json(cls, raw: dict) -> SecretVersion:
        return cls(int(raw["version"]), str(raw["value"]), dict(raw.get("fields", {})),
                   _parse_time(raw["created"]))


@dataclass(frozen=True)
class PendingRotation:
    """A rotation's new value between its create and finish steps.

    It is saved before the owner of the credential (a database, a remote store) is touched, so
    whichever of the current and the pending value works, the vault holds it; the next
    rotation of the secret resumes from here."""

    value: str = field(repr=False)
    rotator: str
    started: datetime

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "rotator": self.rotator, "started": _iso(self.started)}

    @classmethod
    def from_json(cls, raw: dict) -> PendingRotation:
        return cls(str(raw["value"]), str(raw["rotator"]), _parse_time(raw["started"]))


@dataclass(frozen=True)
class Secret:
    name: str
    value: str = field(repr=False)
    type: SecretType = SecretType.GENERIC
    fields: dict[str, str] = field(repr=False, default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""
    id: str = field(default_factory=lambda: new_id())
    created: datetime = field(default_factory=utcnow)
    updated: datetime = field(default_factory=utcnow)
    value_updated: datetime = field(default_factory=utcnow)
    expires_at: datetime | None = None
    rotation: RotationPolicy | None = None
    rotation_count: int = 0
    last_rotated: datetime | None = None
    version: int = 1
    history: tuple[SecretVersion, ...] = field(repr=False, default=())
    high_value: bool = False  # reveal or copy asks for the password or a key touch again
    rotator: str | None = None  # how `rotate` makes the next value (None: by hand)
    value_policy: ValuePolicy | None = None  # what a generated value looks like
    rotate_requested: datetime | None = None  # "rotate now" (an emergency lockdown sets it)
    pending: PendingRotation | None = field(repr=False, default=None)

    def with_value(self, value: str, fields: dict[str, str] | None = None, *, now: datetime,
                   rotated: bool = False, answers_request: bool = True) -> Secret:
        """A new version: the current value goes into history (the last 10 are kept). A new
        value answers a "rotate now" request (a restored old one does not)."""
        previous = SecretVersion(self.version, self.value, dict(self.fields), self.value_updated)
        history = (self.history + (previous,))[-HISTORY_DEPTH:]
        return replace(
            self, value=value, fields=dict(self.fields if fields is None else fields),
            version=self.version + 1, history=history, updated=now, value_updated=now,
            rotation_count=self.rotation_count + (1 if rotated else 0),
            last_rotated=now if rotated else self.last_rotated,
            rotate_requested=None if answers_request else self.rotate_requested,
        )

    def restored(self, version: int, *, now: datetime) -> Secret:
        old = next((v for v in self.history if v.version == version), None)
        if old is None:
            raise VersionNotFound(self.name, version)
        return self.with_value(old.value, old.fields, now=now, answers_request=False)

    def field(self, key: str) -> str:
        if key not in self.fields:
            raise FieldNotFound(self.name, key)
        return self.fields[key]

    def versions(self) -> list[SecretVersion]:
        """Every version still held, oldest first, the current one last."""
        return [*self.history, SecretVersion(self.version, self.value, dict(self.fields), self.value_updated)]

    def rotation_due(self) -> datetime | None:
        """Counted from the last change of value, so any new value re-arms the schedule."""
        due = rotation_due(self.rotation, self.value_updated)
        # A "rotate now" request, or a rotation left half-done, makes it due at once.
        for urgent in (self.rotate_requested, self.pending.started if self.pending else None):
            if urgent is not None:
                due = urgent if due is None else min(due, urgent)
        return due

    def status(self, now: datetime) -> RotationStatus:
        notify = self.rotation.notify_days if self.rotation else 7
        return rotation_status(self.rotation_due(), self.expires_at, notify, now)

    def record(self) -> dict[str, Any]:
        """What the vault stores beside the summary: the value, the fields' values and the
        history (``metadata()`` holds the rest), so nothing is written twice."""
        record: dict[str, Any] = {"value": self.value, "fields": self.fields,
                                  "history": [v.to_json() for v in self.history]}
        if self.pending is not None:
            record["pending"] = self.pending.to_json()
        return record

    @classmethod
    def from_parts(cls, summary: SecretSummary, record: dict) -> Secret:
        every = summary.rotation_every_days
        return cls(
            id=str(summary.id), name=str(summary.name), type=SecretType(summary.type),
            value=str(record["value"]), fields=dict(record["fields"]), tags=dict(summary.tags),
            description=str(summary.description), created=_parse_time(summary.created),
            updated=_parse_time(summary.updated), value_updated=_parse_time(summary.value_updated),
            expires_at=_parse_time(summary.expires_at),
            rotation=RotationPolicy(int(every), int(summary.notify_days or 7)) if every else None,
            rotation_count=int(summary.rotation_count), last_rotated=_parse_time(summary.last_rotated),
            version=int(summary.version),
            history=tuple(SecretVersion.from_json(v) for v in record["history"]),
            high_value=bool(summary.high_value), rotator=summary.rotator,
            value_policy=ValuePolicy(*summary.value_policy) if summary.value_policy else None,
            rotate_requested=_parse_time(summary.rotate_requested),
            pending=PendingRotation.from_json(record["pending"]) if record.get("pending") else None,
        )

    def metadata(self) -> dict[str, Any]:
        """Everything a listing may show: never the value, fields' values or history values.
        Stored beside each record as its summary, so listings never decode records."""
        return {
            "name": self.name, "id": self.id, "type": self.type.value, "tags": self.tags,
            "fields": sorted(self.fields), "description": self.description,
            "created": _iso(self.created), "updated": _iso(self.updated),
            "value_updated": _iso(self.value_updated), "expires_at": _iso(self.expires_at),
            "version": self.version,
            "rotation_every_days": self.rotation.every_days if self.rotation else None,
            "notify_days": self.rotation.notify_days if self.rotation else None,
            "rotation_due": _iso(self.rotation_due()), "rotation_count": self.rotation_count,
            "last_rotated": _iso(self.last_rotated), "high_value": self.high_value,
            "rotator": self.rotator,
            "value_policy": [self.value_policy.length, self.value_policy.alphabet] if self.value_policy else None,
            "rotate_requested": _iso(self.rotate_requested),
            "pending_since": _iso(self.pending.started) if self.pending else None,
        }

    def summary(self) -> SecretSummary:
        return SecretSummary.from_metadata(self.metadata())


class SecretSummary(NamedTuple):
    """A secret's listing row: what ``metadata()`` holds, times kept as ISO strings (UTC, so
    they sort as text) and parsed only when asked. Holds no value. Stored in the vault as a
    JSON array in this field order, which parses and builds fast for 10,000 rows. Fields
    added later have defaults and come last, so rows written before them still read."""

    name: str
    id: str
    type: str
    tags: dict[str, str]
    fields: list[str]
    description: str
    created: str
    updated: str
    value_updated: str
    expires_at: str | None
    version: int
    rotation_every_days: int | None
    notify_days: int | None
    rotation_due: str | None
    rotation_count: int
    last_rotated: str | None
    high_value: bool
    rotator: str | None = None
    value_policy: list | None = None  # [length, alphabet]
    rotate_requested: str | None = None
    pending_since: str | None = None  # a rotation started then and has not finished

    @classmethod
    def from_metadata(cls, raw: dict[str, Any]) -> SecretSummary:
        return cls._make(raw[name] for name in cls._fields)

    @classmethod
    def from_row(cls, row: list) -> SecretSummary:
        """A stored row; one from before the later fields gets their defaults."""
        return cls(*row)

    def metadata(self) -> dict[str, Any]:
        return self._asdict()

    def due(self) -> datetime | None:
        return _parse_time(self.rotation_due)

    def expires(self) -> datetime | None:
        return _parse_time(self.expires_at)

    def status(self, now: datetime) -> RotationStatus:
        if self.rotation_due is None and self.expires_at is None:
            return RotationStatus.OK
        return rotation_status(self.due(), self.expires(), self.notify_days or 7, now)


def _iso(moment: datetime | None) -> str | None:
    """UTC, microseconds always written: fixed width, so the strings sort as the times do."""
    return None if moment is None else moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _parse_time(text: Any) -> Any:
    if text is None:
        return None
    moment = datetime.fromisoformat(str(text))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
