"""Encrypted backups, restores and plaintext exports: what ``its-vault backup``,
``restore-backup`` and ``export`` and the app's File menu do (docs/backup.md).

A backup is a whole vault file under a new key, a new vault id and a passphrase of its own; a
restore makes a new vault (new key, id, slots and audit chain) from a backup or from a rolling
generation. An export writes every value in plain text, after the caller re-authenticated.
Each is audited in the live vault, with file names and counts, never a value.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from ..core.audit import Actor, AuditEvent
from ..core.crypto import Argon2Params, wipe
from ..core.errors import InvalidInput, VaultError, VaultNotFound, WrongCredentials
from ..core.secrets import Secret, validate_name
from ..core.vault import backups
from ..core.vault import slots as slotlib
from ..core.vault.api import SlotOpener, Vault
from ..core.vault.body import Body
from ..envconfig import env_name

FORMATS = ("json", "csv", "env")
SHORT_PASSPHRASE = 12


# -- backup ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupDone:
    path: Path
    secrets: int
    recovery_code: str | None = field(default=None, repr=False)


def backup_vault(vault: Vault, target: str | Path, passphrase: str, *, kdf: Argon2Params | None = None,
                 recovery: bool = False, force: bool = False) -> BackupDone:
    """Every secret (values, fields, history, pending rotations) and the settings but the agent
    grants, sealed under a new key and vault id with one password slot for ``passphrase`` (and a
    recovery slot with ``recovery``), written atomically (0600) to ``target``. Audited
    write-ahead in ``vault`` (``backup``, the file name and count)."""
    target = Path(target).expanduser()
    _refuse_vault_files(vault.path, target)
    if target.exists() and not force:  # before a second of key derivation
        raise InvalidInput(f"{target} already exists (--force replaces it)")
    keys = backups.new_keys(passphrase, kdf or Argon2Params.default(), recovery)
    try:
        body = Body(settings=backups.copy_settings(vault.settings()))
        for secret in vault.secrets():
            body.put(secret)
        body.settings[backups.ORIGIN] = {"created": _now_iso(), "generation": vault.generation,
                                         "secrets": len(body), "vault_id": vault.vault_id}
        detail = f"{count_of(len(body))} to {target.name}"
        vault.record("backup", detail=detail)
        try:
            backups.write_backup(target, body, keys, force=force)
        except BaseException as error:
            vault.record("backup", outcome="failed", detail=f"{detail}: {_reason(error)}")
            raise
        return BackupDone(target, len(body), keys.recovery_code)
    finally:
        keys.wipe()


def passphrase_warning(passphrase: str, master_password: str | None = None) -> str | None:
    """What to say about a backup passphrase that is easy to guess offline (a backup travels)."""
    if master_password is not None and passphrase == master_password:
        return "the backup passphrase is the master password: whoever learns one opens both"
    if len(passphrase) < SHORT_PASSPHRASE:
        return "this backup passphrase is short; a backup can be guessed at offline, use a long passphrase"
    return None


def _refuse_vault_files(vault_path: Path, target: Path) -> None:
    """Never write over the vault, its log, its lock or its rolling generations."""
    live = vault_path.resolve()
    own = {live, live.with_name(live.name + ".lock"), *backups.companions(live)}
    where = target.resolve()
    if where in own or where.parent == backups.folder_of(live):
        raise InvalidInput(f"{target} is one of the vault's own files: choose another file")


# -- restore --------------------------------------------------------------------------------


class BackupNotFound(VaultNotFound):
    def __init__(self, path: str) -> None:
        VaultError.__init__(self, f"no backup at {path}")


@dataclass(repr=False)
class OpenedBackup:
    """A backup's (or a rolling generation's) secrets and settings, read and decrypted, ready to
    become a new vault; its key is already wiped."""

    source: Path
    body: Body
    described: str  # what the restored vault's first audit record names

    @property
    def secrets(self) -> int:
        return len(self.body)


@dataclass(frozen=True)
class RestoreDone:
    path: Path
    secrets: int
    recovery_code: str | None = field(repr=False)
    replaced: Path | None  # where the vault that was at the target went


def refuse_existing(target: Path, force: bool) -> None:
    """Before any passphrase is asked for: a vault is only replaced on purpose."""
    if target.exists() and not force:
        raise InvalidInput(f"a vault already exists at {target} (--force replaces it; it is kept beside)")


def open_backup(source: str | Path, openers: Sequence[SlotOpener]) -> OpenedBackup:
    """Open a backup or a rolling generation read-only (nothing is written beside it). Wrong
    passphrase: WrongCredentials; damaged or tampered: VaultCorrupted."""
    source = Path(source).expanduser()
    if not source.is_file():
        raise BackupNotFound(str(source))
    opened = backups.open_copy(source, openers)
    try:
        described = _describe(source, opened.header.generation, opened.body.settings)
        opened.body.settings = backups.copy_settings(opened.body.settings)
        return OpenedBackup(source, opened.body, described)
    finally:
        opened.wipe()


def restore(backup: OpenedBackup, target: str | Path, password: str, *, kdf: Argon2Params | None = None,
            force: bool = False, actor: Actor | None = None) -> RestoreDone:
    """Write an opened backup as a new vault at ``target``: its secrets and settings (agent
    grants excepted) under ``password``, a new key, id and slots (with a recovery code, returned
    once) and a new audit chain whose first record names the backup. An existing vault is
    refused, or with ``force`` kept beside under ``<name>.replaced-<time>``."""
    target = Path(target).expanduser()
    refuse_existing(target, force)
    keys = backups.new_keys(password, kdf or Argon2Params.default(), recovery=True)
    try:
        event = AuditEvent("restore", "ok", actor or Actor.current("api"),
                           detail=f"restored from {backup.described}, {count_of(backup.secrets)}")
        done = backups.restore(target, backup.body, keys, event, force=force)
    finally:
        keys.wipe()
    return RestoreDone(target, backup.secrets, done.recovery_code, done.replaced)


def _describe(source: Path, generation: int, settings: dict[str, Any]) -> str:
    """``backup.its (a backup of vault 1a2b… made 2026-11-23T07:41:00+00:00)``, or for a rolling
    generation its number and the time of its save."""
    origin = settings.get(backups.ORIGIN)
    if isinstance(origin, dict):
        return (f"{source.name} (a backup of vault {str(origin.get('vault_id', '?'))[:12]} made "
                f"{origin.get('created', '?')})")
    saved = datetime.fromtimestamp(source.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
    return f"{source.name} (generation {generation}, saved {saved})"


# -- re-authentication and plaintext export ---------------------------------------------------


def reauthenticate(vault: Vault, password: str, openers: Sequence[SlotOpener] = ()) -> bool:
    """The master password again (``Vault.check_password``, audited). A vault without a password
    slot needs password + key: one of its hardware slots must open with ``openers`` (a touch),
    which also re-arms that slot."""
    if any(s.kind == slotlib.PASSWORD for s in vault.slots) or not openers:
        return vault.check_password(password)
    for opener in openers:
        for slot in (s for s in vault.slots if s.kind in opener.kinds):
            try:
                wipe(opener.open(slot, vault.vault_id))
            except WrongCredentials:
                continue
            vault.record("reauth", detail=f"password and {slot.kind} key")
            after_unlock = getattr(opener, "after_unlock", None)
            if after_unlock is not None:
                after_unlock(vault, slot)
            return True
    vault.record("reauth", outcome="failed", detail="password and key")
    return False


@dataclass(frozen=True)
class ExportRow:
    """One secret as an export shows it; the value and fields never in a repr."""

    name: str
    type: str
    value: str = field(repr=False)
    fields: dict[str, str] = field(repr=False)
    tags: dict[str, str]
    description: str
    expires_at: str | None

    @classmethod
    def of(cls, secret: Secret, name: str) -> ExportRow:
        expires = secret.expires_at.isoformat() if secret.expires_at else None
        return cls(name, secret.type.value, secret.value, dict(secret.fields), dict(secret.tags),
                   secret.description, expires)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "value": self.value, "fields": self.fields,
                "tags": self.tags, "description": self.description, "expires_at": self.expires_at}


def export_rows(vault: Vault, prefix: str | None = None) -> list[ExportRow]:
    """The current value of every secret (under ``prefix``, named relative to it: the inverse
    of an import's ``--prefix``). History is not exported."""
    folder = normalise_prefix(prefix)
    rows = []
    for secret in vault.secrets():
        if folder is None:
            rows.append(ExportRow.of(secret, secret.name))
        elif secret.name.startswith(folder + "/"):
            rows.append(ExportRow.of(secret, secret.name[len(folder) + 1:]))
    if folder is not None and not rows:
        raise InvalidInput(f"no secret under '{folder}/': nothing to export")
    return rows


def normalise_prefix(prefix: str | None) -> str | None:
    if prefix is None or not prefix.strip("/"):
        return None
    return validate_name(prefix.strip("/"))


def render(rows: Sequence[ExportRow], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([r.to_json() for r in rows], indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return _csv(rows)
    if fmt == "env":
        return _env(rows)
    raise InvalidInput(f"unknown export format '{fmt}' (choose from {', '.join(FORMATS)})")


CSV_COLUMNS = ("name", "type", "value", "description", "expires", "tags")


def _csv(rows: Sequence[ExportRow]) -> str:
    """The columns ``its-vault import csv`` guesses, then one column per field name."""
    field_names = sorted({f for r in rows for f in r.fields})
    taken = {c.casefold() for c in CSV_COLUMNS}
    headers = [f"field:{f}" if f.casefold() in taken else f for f in field_names]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*CSV_COLUMNS, *headers])
    for r in rows:
        tags = ", ".join(f"{k}={v}" if v else k for k, v in sorted(r.tags.items()))
        writer.writerow([r.name, r.type, r.value, r.description, r.expires_at or "", tags,
                         *(r.fields.get(f, "") for f in field_names)])
    return out.getvalue()


_PLAIN = re.compile(r"[A-Za-z0-9_./:@+,%=^-]+")


def env_key(name: str) -> str:
    """A secret's name as a variable (``brokers/ibkr/api_key`` → ``BROKERS_IBKR_API_KEY``)."""
    key = env_name(name)
    if not key:
        raise InvalidInput(f"'{name}' has no letter or digit to make a variable name of: export it as JSON or CSV")
    return "_" + key if key[0].isdigit() else key


def env_value(value: str) -> str:
    """Quoted so that ``core.dotenv`` (and dotenv readers) read the value back exactly: bare when
    plain, single-quoted (literal, also for a shell) when it can be, else double-quoted."""
    if _PLAIN.fullmatch(value):
        return value
    if "'" not in value and "\n" not in value and "\r" not in value:
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'


def _env(rows: Sequence[ExportRow]) -> str:
    """``NAME=value`` lines: values only (fields and history have no place in a .env file)."""
    seen: dict[str, str] = {}
    lines = []
    for r in rows:
        key = env_key(r.name)
        if key in seen:
            raise InvalidInput(f"'{seen[key]}' and '{r.name}' would both be {key}: use --prefix, or JSON or CSV")
        seen[key] = r.name
        lines.append(f"{key}={env_value(r.value)}\n")
    return "".join(lines)


@dataclass(frozen=True)
class ExportDone:
    path: Path
    secrets: int
    format: str


def export_plaintext(vault: Vault, target: str | Path, fmt: str = "json", prefix: str | None = None, *,
                     force: bool = False) -> ExportDone:
    """Write the current values in plain text to ``target`` (0600, atomically). Only after the
    caller re-authenticated (``reauthenticate``). Audited write-ahead: ``export``, the count,
    format and file name."""
    from ..core.vault.storage import atomic_write

    target = Path(target).expanduser()
    _refuse_vault_files(vault.path, target)
    if target.exists() and not force:
        raise InvalidInput(f"{target} already exists (--force replaces it)")
    rows = export_rows(vault, prefix)
    text = render(rows, fmt)
    detail = f"{count_of(len(rows))} as {fmt} to {target.name}"
    vault.record("export", detail=detail)
    try:
        atomic_write(target, text.encode("utf-8"))
    except BaseException as error:
        vault.record("export", outcome="failed", detail=f"{detail}: {_reason(error)}")
        raise
    return ExportDone(target, len(rows), fmt)


def count_of(n: int) -> str:
    return f"{n} secret{'' if n == 1 else 's'}"


def _reason(error: BaseException) -> str:
    if isinstance(error, VaultError):
        return str(error)
    if isinstance(error, OSError):
        return error.strerror or "I/O error"
    return type(error).__name__


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
