"""What every importer produces, and the rules they share: how a password manager's folders and
titles become vault names, how a file is read, and how an entry becomes secrets.

A parser never writes to the vault: it returns a ``Preview`` (the secrets it understood, the
problems it found line by line or entry by entry, and what it left out on purpose), so that
the CLI and the GUI can show it before anything is saved (``importers.apply`` saves).

Name mapping (docs/import.md): folders joined with ``/``, then the entry's title; the user's
case is kept; inside one folder name or title a ``/`` becomes ``-`` (it would otherwise make a
folder), control characters become spaces, surrounding spaces go, empty folder names are
dropped; ``--prefix`` goes in front. A name the vault still refuses (too long, no title) is a
problem of that entry, never a silent rename.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

from ..core.errors import InvalidInput, VaultError, VaultNotFound
from ..core.secrets import SecretType, validate_name
from ..core.totp import OtpAccount, account_to_fields

MAX_SOURCE_BYTES = 64 * 1024 * 1024  # an export of a few thousand entries is a few MiB
TOTP_LEAF = "totp"  # an entry's one-time-code account becomes the secret NAME/totp
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
MAX_LABEL = 60


class SourceNotFound(VaultNotFound):
    """The file to import is not there (exit 4, like any missing thing)."""

    def __init__(self, path: Path) -> None:
        VaultError.__init__(self, f"no such file: {path}")


class ImportRefused(InvalidInput):
    """The input has problems and the user did not accept importing the valid part."""

    def __init__(self, source: str, problems: int, valid: int) -> None:
        plural = "s" if problems != 1 else ""
        if valid:
            hint = (f"fix the file, or --accept-partial imports the {valid} valid "
                    f"secret{'s' if valid != 1 else ''}")
        else:
            hint = "nothing in it could be imported"
        super().__init__(f"{source}: {problems} problem{plural} found, nothing imported ({hint})")


@dataclass(frozen=True)
class ImportIssue:
    """One problem or one left-out thing, located by line (text formats) or entry number,
    with a label that names the entry (its title, never a value)."""

    number: int
    reason: str
    unit: str = "line"  # "line", "entry" (KeePass) or "item" (Bitwarden)
    label: str = ""

    def __str__(self) -> str:
        where = f"{self.unit} {self.number}" + (f" '{self.label}'" if self.label else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class ImportedSecret:
    """A secret as read from the file, before the vault sees it."""

    name: str
    value: str = field(repr=False)
    type: SecretType = SecretType.GENERIC
    fields: dict[str, str] = field(default_factory=dict, repr=False)
    tags: dict[str, str] = field(default_factory=dict)
    description: str = field(default="", repr=False)  # may be a password manager's notes
    expires_at: datetime | None = None
    high_value: bool = False  # Bitwarden's "master password re-prompt"
    origin: ImportIssue | None = field(default=None, repr=False, compare=False)  # where it came from


@dataclass(frozen=True)
class Preview:
    """What a file holds, as the user sees it before importing. ``issues`` block the import
    unless the user accepts the valid part; ``notes`` (attachments, recycle-bin entries, item
    kinds we do not store) are told but do not block."""

    kind: str
    source: str  # the file's name, for messages and audit details
    secrets: tuple[ImportedSecret, ...] = ()
    issues: tuple[ImportIssue, ...] = ()
    notes: tuple[ImportIssue, ...] = ()


# -- names ---------------------------------------------------------------------------------


def printable(text: str, limit: int = MAX_LABEL) -> str:
    """A title fit for a one-line message."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= limit else text[:limit - 1] + "…"


def clean_segment(text: str) -> str:
    """One folder name or title as one name segment."""
    return _CONTROL.sub(" ", text.replace("/", "-")).strip()


def secret_name(folders: Iterable[str], title: str) -> str:
    """The vault name of an entry titled ``title`` in ``folders`` (outermost first)."""
    leaf = clean_segment(title)
    if not leaf:
        raise InvalidInput("no title to name it by")
    parts = [part for part in (clean_segment(f) for f in folders) if part]
    return validate_name("/".join([*parts, leaf]))


def folder_path(text: str) -> list[str]:
    """A folder written as a path (``Brokers/IBKR``), as folder names."""
    return [part for part in text.split("/") if part.strip()]


def normalise_prefix(prefix: str | None) -> str:
    """``--prefix``: surrounding slashes dropped; the rest must be a valid folder path."""
    prefix = (prefix or "").strip().strip("/")
    if prefix:
        try:
            validate_name(prefix)
        except InvalidInput:
            raise InvalidInput(f"invalid prefix '{printable(prefix)}': use folder/sub") from None
    return prefix


def with_prefix(preview: Preview, prefix: str | None) -> Preview:
    """The preview with every name under ``prefix``; a name that becomes too long turns into
    a problem of its entry. Parsing happens once: the GUI re-applies a changed prefix here."""
    prefix = normalise_prefix(prefix)
    if not prefix:
        return preview
    secrets, issues = [], list(preview.issues)
    for secret in preview.secrets:
        try:
            secrets.append(replace(secret, name=validate_name(f"{prefix}/{secret.name}")))
        except InvalidInput as error:
            origin = secret.origin or ImportIssue(0, "", "secret", printable(secret.name))
            issues.append(replace(origin, reason=str(error)))
    return replace(preview, secrets=tuple(secrets), issues=tuple(issues))


# -- files ---------------------------------------------------------------------------------


def read_bytes(path: Path) -> bytes:
    """The whole file, with a size cap; a missing file is SourceNotFound (exit 4) and any
    other failure one line naming the file."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SOURCE_BYTES + 1)
    except FileNotFoundError:
        raise SourceNotFound(path) from None
    except OSError as error:
        raise InvalidInput(f"{path}: cannot read it ({error.strerror or 'I/O error'})") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise InvalidInput(f"{path.name}: larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MiB, not an export")
    return data


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 (with or without a byte-order mark), the encoding every supported exporter writes."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{source}: not a UTF-8 text file") from None


# -- entries -------------------------------------------------------------------------------


def add_field(fields: dict[str, str], key: str, value: str | None) -> None:
    """Add a field without replacing one already there (``key (2)``, ``key (3)``…); empty
    values and empty keys are dropped."""
    key = printable(key or "", 200)
    if not value or not key:
        return
    name, n = key, 2
    while name in fields:
        name, n = f"{key} ({n})", n + 1
    fields[name] = value


def labels_to_tags(labels: Iterable[str]) -> dict[str, str]:
    """A password manager's tags (plain words) as vault tags (``key=value``): ``env=prod``
    splits, a plain word becomes a key with an empty value."""
    tags: dict[str, str] = {}
    for label in labels:
        key, _, value = printable(label, 200).partition("=")
        if key.strip():
            tags[key.strip()] = value.strip()
    return tags


@dataclass
class Entry:
    """One password-manager entry before it becomes secrets: what KeePass, Bitwarden and
    1Password have in common."""

    folders: Sequence[str]
    title: str
    password: str = field(default="", repr=False)
    username: str = field(default="", repr=False)
    url: str = field(default="", repr=False)
    notes: str = field(default="", repr=False)
    fields: dict[str, str] = field(default_factory=dict, repr=False)
    tags: dict[str, str] = field(default_factory=dict)
    expires_at: datetime | None = None
    type: SecretType = SecretType.PASSWORD
    otp: OtpAccount | None = field(default=None, repr=False)
    high_value: bool = False


def entry_secrets(entry: Entry, origin: ImportIssue) -> list[ImportedSecret]:
    """The secrets an entry becomes: the password (else the notes, as a note) under the
    entry's name with username/url/custom fields and the notes as the field ``notes`` (notes
    often hold recovery codes: a field is secret, a description is listed and searched), plus
    its one-time-code account as ``NAME/totp``. InvalidInput if it holds nothing to import."""
    name = secret_name(entry.folders, entry.title)
    fields: dict[str, str] = {}
    add_field(fields, "username", entry.username)
    add_field(fields, "url", entry.url)
    for key, value in entry.fields.items():
        add_field(fields, key, value)
    common = dict(tags=dict(entry.tags), expires_at=entry.expires_at, high_value=entry.high_value, origin=origin)
    secrets = []
    if entry.password:
        add_field(fields, "notes", entry.notes)
        secrets.append(ImportedSecret(name, entry.password, entry.type, fields, **common))
    elif entry.notes:
        kind = SecretType.NOTE if entry.type is SecretType.PASSWORD else entry.type
        secrets.append(ImportedSecret(name, entry.notes, kind, fields, **common))
    elif fields:
        secrets.append(ImportedSecret(name, "", SecretType.GENERIC, fields, **common))
    if entry.otp is not None:
        secrets.append(ImportedSecret(f"{name}/{TOTP_LEAF}", entry.otp.secret, SecretType.TOTP,
                                      account_to_fields(entry.otp), **common))
    if not secrets:
        raise InvalidInput("nothing to import (no password, notes, fields or one-time code)")
    return secrets


def tag_source(preview: Preview) -> Preview:
    """Every secret tagged with the file it came from (``source=NAME``), as import-env always
    did, unless the entry carried a ``source`` tag of its own."""
    secrets = tuple(replace(s, tags={"source": preview.source, **s.tags}) for s in preview.secrets)
    return replace(preview, secrets=secrets)
