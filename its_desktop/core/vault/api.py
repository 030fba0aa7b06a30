"""The Python API of a vault: create, open, read, change, lock.

Every change runs under the cross-process writer lock, re-reads the newest file, applies itself
there and writes the next generation, so a GUI and a CLI writing at once lose nothing, and a
stale writer never overwrites a newer generation.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator, Protocol

from ..audit import DISCARDED, Actor, AuditEvent, AuditFiles, AuditLog, AuditReader, AuditRecord, record_pending
from ..crypto import Argon2Params, AuthenticationFailed, open_sealed, seal, wipe
from ..errors import (
    AuditTampered,
    ConcurrencyError,
    IncorrectFactor,
    InvalidInput,
    SecretNotFound,
    VaultCorrupted,
    VaultBusy,
    VaultExists,
    VaultLocked,
    VaultNotFound,
    WrongCredentials,
)
from ..memory import lock_memory, unlock_memory
from ..secrets import Secret, SecretSummary, SecretType, utcnow, validate_name
from . import backups
from . import rekey as rekeylib
from . import slots as slotlib
from . import throttle
from .body import AuditAnchor, Body
from .header import Envelope, KeySlot, VaultHeader, body_aad, encode_file, parse_file
from .storage import (
    Stamp,
    atomic_write,
    ensure_private_folder,
    file_stamp,
    read_snapshot,
    remove_stale_temps,
    writer_lock,
)

VAULT_FILENAME = "vault.its"


def default_vault_path() -> Path:
    """``ITS_VAULT_PATH`` if set, else the platform's per-user data folder."""
    env = os.environ.get("ITS_VAULT_PATH")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("its-desktop", appauthor=False)) / VAULT_FILENAME


class SlotOpener(Protocol):
    """One factor offered at unlock: it knows which slot kinds it can try.

    An opener may also define ``after_unlock(vault, slot)``, called once the vault is open
    (the hardware factors re-arm their slot there).
    """

    kinds: tuple[str, ...]

    def open(self, slot: KeySlot, vault_id: str) -> bytearray:
        """Return the vault key, or raise IncorrectFactor to let the next slot be tried."""
        ...


@dataclass(frozen=True, repr=False)
class PasswordOpener:
    password: str
    kinds: tuple[str, ...] = (slotlib.PASSWORD,)

    def open(self, slot: KeySlot, vault_id: str) -> bytearray:
        return slotlib.open_password_slot(slot, self.password, vault_id)


@dataclass(frozen=True, repr=False)
class RecoveryOpener:
    code: str
    kinds: tuple[str, ...] = (slotlib.RECOVERY,)

    def open(self, slot: KeySlot, vault_id: str) -> bytearray:
        return slotlib.open_recovery_slot(slot, self.code, vault_id)


@dataclass
class Change:
    """What a mutation may touch: the body and the list of key slots."""

    body: Body
    slots: list[KeySlot]
    vault_id: str
    vault_key: bytearray


Mutation = Callable[[Change], list[AuditEvent]]


class Vault:
    """An unlocked vault. Use as a context manager: leaving it locks (and wipes keys)."""

    def __init__(self, path: Path, envelope: Envelope, stamp: Stamp, vault_key: bytearray, body: Body,
                 actor: Actor, clock: Callable[[], datetime] = utcnow) -> None:
        self.path = path
        self._header = envelope.header
        self._stamp = stamp
        self._key: bytearray | None = vault_key
        lock_memory(vault_key)  # best effort: out of swap while unlocked (core/memory.py)
        self._body: Body | None = body
        self._audit: AuditLog | None = AuditLog(path, vault_key, envelope.header.vault_id)
        self.actor = actor
        self.clock = clock
        self._recovery_code: str | None = None
        self._queued: list[AuditEvent] = []
        # One vault object may be used from the GUI thread and a worker (a re-authentication
        # that writes an audit record): changes to its state take this lock.
        self._guard = threading.RLock()

    def __repr__(self) -> str:
        state = "locked" if self._key is None else "unlocked"
        return f"<Vault {self.path} {state}>"

    # -- lifecycle ------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike, password: str, *, kdf: Argon2Params | None = None,
               recovery: bool = True, actor: Actor | None = None,
               clock: Callable[[], datetime] = utcnow) -> Vault:
        """A new vault with a password slot and (by default) a recovery-code slot; the code is
        available once through ``take_recovery_code()``."""
        path = Path(path)
        actor = actor or Actor.current("api")
        kdf = kdf or Argon2Params.default()
        if not kdf.within_bounds():
            raise InvalidInput("KDF parameters out of range (memory 8 MiB to 1 GiB, time cost 1 to 64)")
        if path.exists():
            raise VaultExists(str(path))  # before spending a second on the KDF
        ensure_private_folder(path.parent)
        keys = backups.new_keys(password, kdf, recovery)
        vault_key, header, code = keys.vault_key, keys.header, keys.recovery_code
        with writer_lock(path):
            if path.exists():
                raise VaultExists(str(path))
            files = AuditFiles.beside(path)
            for leftover in (files.log, files.head, files.pending, files.staged_log, files.staged_head):
                # of a vault deleted by hand
                leftover.unlink(missing_ok=True)
            body = Body()
            chunks = _seal_file(header, body, vault_key)
            atomic_write(path, chunks)
            vault = cls(path, parse_file(b"".join(chunks)), file_stamp(path), vault_key, body, actor, clock)
            vault._append_locked([vault._event("init", detail="vault created")])
        vault._recovery_code = code
        return vault

    @classmethod
    def open(cls, path: str | os.PathLike, password: str | None = None, *, recovery_code: str | None = None,
             openers: tuple[SlotOpener, ...] = (), actor: Actor | None = None,
             clock: Callable[[], datetime] = utcnow, wait: Callable[[float], None] = time.sleep) -> Vault:
        """Unlock with whatever factors are offered, tried in order; any one slot that opens is
        enough. After three failed attempts in a row each further one waits (``wait``)."""
        path = Path(path)
        actor = actor or Actor.current("api")
        offered: list[SlotOpener] = list(openers)
        if password is not None:
            offered.append(PasswordOpener(password))
        if recovery_code is not None:
            offered.append(RecoveryOpener(recovery_code))
        data, stamp = read_snapshot(path)
        envelope = parse_file(data)
        failures = throttle.read_failures(path)
        delay = failures.delay(time.time())
        if delay > 0:
            wait(delay)
        opened, factor_error = _try_slots(envelope.header, offered)
        if opened is None:
            with writer_lock(path):
                count = throttle.record_failure(path).count
                record_pending(AuditFiles.beside(path),
                               AuditEvent("unlock", "failed", actor, detail=f"failed attempt {count} in a row"))
            raise factor_error or WrongCredentials()
        vault_key, opener, slot = opened
        body = _open_body(envelope, vault_key)
        if failures.count:
            throttle.clear_failures(path)
        vault = cls(path, envelope, stamp, vault_key, body, actor, clock)
        # Written with the next record (or at lock): one locked, fsynced append per command.
        vault._queued.append(vault._event("unlock", detail=f"{slot.kind} slot {slot.id}"))
        vault._settle_staged()
        after_unlock = getattr(opener, "after_unlock", None)
        if after_unlock is not None:
            after_unlock(vault, slot)
        return vault

    @classmethod
    def open_with_key(cls, path: str | os.PathLike, vault_key: bytearray, *, actor: Actor,
                      detail: str, clock: Callable[[], datetime] = utcnow) -> Vault:
        """Reopen with a vault key kept sealed by a session (quick unlock): no slot is used.
        A key that no longer opens the body means the vault was re-keyed or replaced."""
        path = Path(path)
        data, stamp = read_snapshot(path)
        envelope = parse_file(data)
        try:
            body = Body.decode(open_sealed(vault_key, envelope.sealed_body, envelope.aad))
        except AuthenticationFailed:
            raise ConcurrencyError("the vault changed since it was locked; unlock it with the password") from None
        vault = cls(path, envelope, stamp, vault_key, body, actor, clock)
        vault._queued.append(vault._event("unlock", detail=detail))
        vault._settle_staged()
        return vault

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock()

    @property
    def is_locked(self) -> bool:
        return self._key is None

    def lock(self) -> None:
        """Wipe the vault key and the audit keys and drop every decrypted record."""
        with self._guard:
            try:
                if self._queued and self._key is not None:
                    self._append([])
            except ConcurrencyError as error:
                if isinstance(error, VaultBusy):
                    raise
                # Re-keyed or replaced elsewhere: the queued records went to the pending file.
            finally:
                self._wipe()

    def _wipe(self) -> None:
        if self._key is not None:
            wipe(self._key)
            unlock_memory(self._key)
        if self._audit is not None:
            self._audit.wipe()
        self._key = None
        self._audit = None
        self._body = None
        self._recovery_code = None

    def take_recovery_code(self) -> str | None:
        """The recovery code made by ``create``, returned once and then forgotten."""
        code, self._recovery_code = self._recovery_code, None
        return code

    @property
    def vault_id(self) -> str:
        return self._header.vault_id

    @property
    def slots(self) -> tuple[KeySlot, ...]:
        return self._header.slots

    @property
    def generation(self) -> int:
        return self._header.generation

    # -- reading --------------------------------------------------------------------------

    def names(self) -> list[str]:
        return self._current_body().names()

    def __len__(self) -> int:
        return len(self._current_body())

    def __bool__(self) -> bool:
        """A vault is an object, not a container: an empty one is still there."""
        return True

    def summaries(self) -> list[SecretSummary]:
        """Every secret's listing row (metadata, no value), sorted by name: what lists,
        schedules and the tray use; it decodes no record."""
        return self._current_body().summaries()

    def secrets(self) -> Iterator[Secret]:
        """Every secret, for listings; reading a value for use should go through ``get``."""
        return self._current_body().secrets()

    def peek(self, name: str) -> Secret:
        """A secret without an audit record, for internal bookkeeping and listings."""
        secret = self._current_body().get(name)
        if secret is None:
            raise SecretNotFound(name)
        return secret

    def get(self, name: str) -> Secret:
        """Read a secret (audited as a read)."""
        try:
            secret = self.peek(name)
        except SecretNotFound:
            self._append([self._event("read", name, outcome="not-found")])
            raise
        self._append([self._event("read", name)])
        return secret

    def value(self, name: str, field: str | None = None) -> str:
        """A secret's value, or one of its fields (audited as a read)."""
        secret = self.get(name)
        return secret.value if field is None else secret.field(field)

    def history(self, name: str) -> list:
        return self.peek(name).versions()

    def audit_records(self) -> Iterator[AuditRecord]:
        return self._audit_log().records()

    def audit_reader(self) -> AuditReader:
        """The log for viewers: paged newest first, names decrypted one record at a time."""
        return AuditReader(self._audit_log())

    def verify_audit(self) -> int:
        anchor = self._current_body().anchor
        try:
            return self._audit_log().verify(anchor)
        except AuditTampered:
            self.refresh()  # re-keyed by another process meanwhile: ConcurrencyError, not tampering
            raise

    def last_access(self) -> dict[str, datetime]:
        return self._audit_log().last_access()

    def _audit_log(self) -> AuditLog:
        """The log, with this session's queued records written first so readers see them."""
        self._require_key()
        self._follow_rekey()  # re-keyed elsewhere: ConcurrencyError, not a log that fails to decrypt
        if self._queued:
            self._append([])
        assert self._audit is not None
        return self._audit

    def refresh(self) -> bool:
        """Pick up changes another process saved since we last looked; True if there were."""
        if file_stamp(self.path) == self._stamp:  # the common case, without waiting on the guard
            return False
        with self._guard:
            if file_stamp(self.path) != self._stamp:
                self._reload()
                return True
            return False

    # -- changing -------------------------------------------------------------------------

    def set(self, name: str, value: str | None = None, *, type: SecretType | str | None = None,
            fields: dict[str, str] | None = None, tags: dict[str, str] | None = None,
            description: str | None = None, expires_at: datetime | None = None,
            rotation=None, high_value: bool | None = None, rotator: str | None = None,
            value_policy=None, replace_metadata: bool = False) -> Secret:
        """Create a secret, or update it: a new value makes a new version; fields and tags are
        merged into the existing ones and None leaves a setting as it was (the CLI's way).
        With ``replace_metadata`` (an editor that shows everything), tags, expiry and rotation
        are replaced as given, so removing one removes it."""
        validate_name(name)
        kind = SecretType.parse(type) if isinstance(type, str) else type
        result: list[Secret] = []

        def change(c: Change) -> list[AuditEvent]:
            now = self.clock()
            old = c.body.get(name)
            if old is None:
                if value is None:
                    raise InvalidInput(f"a new secret needs a value: '{name}'")
                secret = Secret(name=name, value=value, type=kind or SecretType.GENERIC,
                                fields=dict(fields or {}), tags=dict(tags or {}), description=description or "",
                                created=now, updated=now, value_updated=now, expires_at=expires_at,
                                rotation=rotation, high_value=bool(high_value), rotator=rotator,
                                value_policy=value_policy)
                op = "create"
            else:
                merged_fields = {**old.fields, **(fields or {})}
                secret = old
                if value is not None and (value != old.value or merged_fields != old.fields):
                    secret = secret.with_value(value, merged_fields, now=now)
                elif merged_fields != old.fields:
                    secret = secret.with_value(old.value, merged_fields, now=now)
                keep = not replace_metadata
                secret = replace(
                    secret, type=kind or old.type,
                    tags={**old.tags, **(tags or {})} if keep else dict(tags or {}),
                    description=old.description if description is None else description,
                    expires_at=old.expires_at if keep and expires_at is None else expires_at,
                    rotation=old.rotation if keep and rotation is None else rotation, updated=now,
                    high_value=old.high_value if high_value is None else high_value,
                    rotator=old.rotator if keep and rotator is None else rotator,
                    value_policy=old.value_policy if keep and value_policy is None else value_policy,
                )
                op = "update"
            c.body.put(secret)
            c.body.settings.get("tombstones", {}).pop(name, None)
            result.append(secret)
            return [self._event(op, name)]

        self._mutate(change)
        return result[0]

    def delete(self, name: str) -> None:
        """Delete a secret, leaving a tombstone (its name and time, in the settings' ``tombstones``)
        so that sync can tell a deletion from a secret never seen."""

        def change(c: Change) -> list[AuditEvent]:
            if name not in c.body:
                raise SecretNotFound(name)
            c.body.remove(name)
            c.body.settings.setdefault("tombstones", {})[name] = self.clock().isoformat()
            return [self._event("delete", name)]

        self._mutate(change)

    def settings(self) -> dict:
        """A copy of the vault's own settings (JSON: remotes, sync bases, tombstones, agent
        grants...): encrypted with the secrets, never holding a secret value."""
        import copy

        return copy.deepcopy(self._current_body().settings)

    def change_settings(self, edit: Callable[[dict], None], op: str = "settings", detail: str | None = None,
                        name: str | None = None) -> dict:
        """Apply ``edit`` to the newest settings under the writer lock (one save, audited);
        returns a copy of the result."""
        import copy

        result: list[dict] = []

        def change(c: Change) -> list[AuditEvent]:
            edit(c.body.settings)
            result.append(copy.deepcopy(c.body.settings))
            return [self._event(op, name, detail=detail)]

        self._mutate(change)
        return result[0]

    def rotate(self, name: str, value: str, detail: str | None = None) -> Secret:
        """A rotation: the new value becomes current (the old one stays in history), the
        rotation count and time move, and the schedule re-arms."""
        result: list[Secret] = []

        def change(c: Change) -> list[AuditEvent]:
            old = c.body.get(name)
            if old is None:
                raise SecretNotFound(name)
            secret = old.with_value(value, now=self.clock(), rotated=True)
            c.body.put(secret)
            result.append(secret)
            return [self._event("rotate", name, detail=detail)]

        self._mutate(change)
        return result[0]

    def begin_rotation(self, name: str, value: str, rotator: str) -> Secret:
        """A rotation's create step: save the new value as pending before anything outside the
        vault changes, so a crash later still leaves the working value in the vault."""
        from ..secrets import PendingRotation

        result: list[Secret] = []

        def change(c: Change) -> list[AuditEvent]:
            old = c.body.get(name)
            if old is None:
                raise SecretNotFound(name)
            if old.pending is not None:
                raise InvalidInput(f"a rotation of '{name}' is already under way (resume it with 'its-vault rotate {name}')")
            secret = replace(old, pending=PendingRotation(value, rotator, self.clock()), updated=self.clock())
            c.body.put(secret)
            result.append(secret)
            return [self._event("rotate-create", name, detail=rotator)]

        self._mutate(change)
        return result[0]

    def finish_rotation(self, name: str, detail: str,
                        edit_settings: Callable[[dict, Secret], None] | None = None) -> Secret:
        """A rotation's finish step: the pending value becomes current, the previous one goes
        to history, the schedule re-arms. ``edit_settings`` (e.g. a sync base moving to the
        version just written) is saved in the same write."""
        result: list[Secret] = []

        def change(c: Change) -> list[AuditEvent]:
            old = c.body.get(name)
            if old is None:
                raise SecretNotFound(name)
            if old.pending is None:
                raise InvalidInput(f"no rotation of '{name}' is under way")
            secret = replace(old.with_value(old.pending.value, now=self.clock(), rotated=True), pending=None)
            c.body.put(secret)
            if edit_settings is not None:
                edit_settings(c.body.settings, secret)
            result.append(secret)
            return [self._event("rotate-finish", name, detail=detail)]

        self._mutate(change)
        return result[0]

    def abandon_rotation(self, name: str, reason: str) -> Secret:
        """Forget a pending value that is known to be used nowhere (its set step never ran)."""
        result: list[Secret] = []

        def change(c: Change) -> list[AuditEvent]:
            old = c.body.get(name)
            if old is None:
                raise SecretNotFound(name)
            secret = replace(old, pending=None, updated=self.clock())
            c.body.put(secret)
            result.append(secret)
            return [self._event("rotate-abandon", name, detail=reason)]

        self._mutate(change)
        return result[0]

    def request_rotation(self, names: list[str] | None = None, detail: str | None = None) -> int:
        """Mark secrets "rotate now" (every secret when ``names`` is None), in one save: the
        schedule shows them overdue until each has a new value. Returns how many."""
        marked: list[int] = []

        def change(c: Change) -> list[AuditEvent]:
            marked.append(mark_rotate_now(c.body, names, self.clock()))
            return [self._event("rotate-request", detail=detail or f"{marked[0]} secrets")]

        self._mutate(change)
        return marked[0]

    def mark_rotated(self, name: str) -> Secret:
        """The value was rotated elsewhere and is unchanged here (e.g. a key re-issued with the
        same secret): record the rotation and re-arm the schedule."""
        result: list[Secret] = []

        def change(c: Change) -> list[AuditEvent]:
            old = c.body.get(name)
            if old is None:
                raise SecretNotFound(name)
            now = self.clock()
            secret = replace(old, rotation_count=old.rotation_count + 1, last_rotated=now, value_updated=now, updated=now,
                             rotate_requested=None)
            c.body.put(secret)
            result.append(secret)
            return [self._event("rotate", name, detail="marked rotated")]

        self._mutate(change)
        return result[0]

    def check_password(self, password: str) -> bool:
        """Re-authentication (before revealing a high-value secret): does ``password`` open a
        password slot of this vault? Audited either way."""
        ok = False
        for slot in self.slots:
            if slot.kind == slotlib.PASSWORD:
                try:
                    slotlib.open_password_slot(slot, password, self.vault_id)
                    ok = True
                    break
                except IncorrectFactor:
                    continue
        self.record("reauth", outcome="ok" if ok else "failed")
        return ok

    def restore(self, name: str, version: int) -> Secret:
        result: list[Secret] = []

        def change(c: Change) -> list[AuditEvent]:
            old = c.body.get(name)
            if old is None:
                raise SecretNotFound(name)
            secret = old.restored(version, now=self.clock())
            c.body.put(secret)
            result.append(secret)
            return [self._event("restore", name, detail=f"version {version} restored as {secret.version}")]

        self._mutate(change)
        return result[0]

    def import_secrets(self, secrets: list[Secret], source: str) -> tuple[int, int, int]:
        """Add many secrets in one save: new ones created, changed ones updated (the old
        value kept in history), identical ones skipped. Returns (created, updated, unchanged)."""
        counts = [0, 0, 0]

        def change(c: Change) -> list[AuditEvent]:
            now = self.clock()
            events = []
            for incoming in secrets:
                old = c.body.get(incoming.name)
                if old is None:
                    c.body.put(replace(incoming, created=now, updated=now, value_updated=now))
                    counts[0] += 1
                elif old.value != incoming.value:
                    updated = old.with_value(incoming.value, now=now)
                    c.body.put(replace(updated, tags={**old.tags, **incoming.tags}))
                    counts[1] += 1
                else:
                    counts[2] += 1
                    continue
                events.append(self._event("import", incoming.name, detail=source))
            return events

        self._mutate(change)
        return counts[0], counts[1], counts[2]

    def change_password(self, new_password: str, kdf: Argon2Params | None = None,
                        rebuilt: Callable[[bytearray, str], list[KeySlot]] | None = None,
                        dropped: tuple[str, ...] = ()) -> None:
        """Re-wrap the vault key under a new master password, in one save: the password slot
        is replaced (if the vault still has one; a vault that requires a key keeps requiring
        it), ``rebuilt`` returns hardware slots re-wrapped with the new password (same ids),
        and the slots in ``dropped`` (keys that were not there to re-wrap) are removed."""

        def change(c: Change) -> list[AuditEvent]:
            replacements = {s.id: s for s in (rebuilt(c.vault_key, c.vault_id) if rebuilt else [])}
            updated = []
            for slot in c.slots:
                if slot.kind == slotlib.PASSWORD:
                    params = kdf or slot.kdf or Argon2Params.default()
                    slot = slotlib.new_password_slot(new_password, c.vault_key, c.vault_id, params)
                elif slot.id in replacements:
                    slot = replacements[slot.id]
                elif slot.id in dropped:
                    continue
                updated.append(slot)
            if not any(s.kind != slotlib.RECOVERY for s in updated):
                raise InvalidInput("refusing to change the password: no way in would be left but the recovery code")
            c.slots[:] = updated
            detail = f"{len(replacements)} key slots re-wrapped, {len(dropped)} removed" if (replacements or dropped) else None
            return [self._event("passwd", detail=detail)]

        self._mutate(change)

    def rekey(self, password: str, rebuild_hardware: Callable[[bytearray, str], list[KeySlot]] | None = None,
              dropped: tuple[str, ...] = ()) -> str | None:
        """A new random vault key, in one commit (``core/vault/rekey.py``): the password slots
        re-wrapped with ``password`` (WrongCredentials unless it opens them), the hardware slots
        by ``rebuild_hardware(new key, vault id)``, the slots in ``dropped`` removed, the body
        and the whole audit chain re-sealed (AuditTampered, the vault left as it was, if the
        chain does not verify: a refusal is audited). The old key is wiped; this object carries
        on with the new one. Returns the new recovery code (shown once; the old one no longer
        opens), or None for a vault without a recovery slot."""
        how = rekeylib.Rewrap(password, rebuild_hardware, tuple(dropped))
        with self._guard:
            key = self._require_key()
            with writer_lock(self.path):
                self.refresh()
                remove_stale_temps(self.path)
                self._append_locked([])  # this session's queued records, and an earlier re-key settled
                assert self._body is not None and self._audit is not None
                try:
                    done = rekeylib.rekey_locked(self.path, self._header, self._body, key, self._audit, how,
                                                 lambda detail: self._event("rekey", detail=detail), self._save)
                except BaseException as error:
                    self._reload()  # the old file is still the vault: drop the re-sealed anchor
                    self._append_locked([self._event("rekey", outcome="failed",
                                                     detail=rekeylib.failure_detail(error))])
                    raise
                old_audit, self._audit = self._audit, done.audit
                self._key, self._header, self._stamp = done.key, done.header, file_stamp(self.path)
                lock_memory(done.key)
                wipe(key)
                unlock_memory(key)
                old_audit.wipe()
                done.audit.commit_staged()
        return done.recovery_code

    def replace_slot(self, slot_id: str, build: Callable[[bytearray, str, KeySlot], KeySlot | None],
                     op: str = "factor-rearm") -> KeySlot | None:
        """Put the slot ``build`` makes (from the vault key, the vault id and the slot as it is
        on disk now) in place of slot ``slot_id``: a re-armed or re-wrapped hardware slot.
        ``build`` returns None to leave the slot alone (it changed since it was read)."""
        made: list[KeySlot] = []

        def change(c: Change) -> list[AuditEvent]:
            index = next((i for i, s in enumerate(c.slots) if s.id == slot_id), None)
            if index is None:
                raise InvalidInput(f"no factor with id '{slot_id}'")
            slot = build(c.vault_key, c.vault_id, c.slots[index])
            if slot is None:
                return [self._event(op, outcome="skipped", detail=f"slot {slot_id} changed meanwhile")]
            c.slots[index] = slot
            made.append(slot)
            return [self._event(op, detail=f"{slot.kind} slot {slot.id}")]

        self._mutate(change)
        return made[0] if made else None

    def add_slot(self, build: Callable[[bytearray, str], KeySlot]) -> KeySlot:
        """Add a key slot built by a factor from the vault key and vault id."""
        made: list[KeySlot] = []

        def change(c: Change) -> list[AuditEvent]:
            slot = build(c.vault_key, c.vault_id)
            c.slots.append(slot)
            made.append(slot)
            return [self._event("factor-add", detail=f"{slot.kind} slot {slot.id}")]

        self._mutate(change)
        return made[0]

    def add_recovery_slot(self) -> str:
        """A new recovery code (shown once); earlier recovery codes are revoked."""
        codes: list[str] = []

        def change(c: Change) -> list[AuditEvent]:
            slot, code = slotlib.new_recovery_slot(c.vault_key, c.vault_id)
            c.slots[:] = [s for s in c.slots if s.kind != slotlib.RECOVERY] + [slot]
            codes.append(code)
            return [self._event("factor-add", detail=f"recovery slot {slot.id}")]

        self._mutate(change)
        return codes[0]

    def remove_slot(self, slot_id: str) -> None:
        def change(c: Change) -> list[AuditEvent]:
            remaining = [s for s in c.slots if s.id != slot_id]
            if len(remaining) == len(c.slots):
                raise InvalidInput(f"no factor with id '{slot_id}'")
            if not any(s.kind != slotlib.RECOVERY for s in remaining):
                raise InvalidInput("refusing to remove the last way in (besides the recovery code)")
            c.slots[:] = remaining
            return [self._event("factor-rm", detail=f"slot {slot_id}")]

        self._mutate(change)

    def flush_audit(self) -> None:
        """Write the queued unlock record now (a GUI does it off its own thread, so the first
        reader of the log does not wait on an fsync)."""
        if self._queued:
            self._append([])

    def record_events(self, events: list[AuditEvent]) -> None:
        """Append events made elsewhere, each with its own actor (the agent's clients), in
        one locked, fsynced append."""
        self._append(list(events))

    def apply(self, mutation: Mutation) -> None:
        """Run ``mutation`` on the newest body and slots under the writer lock and save once:
        for services that change many secrets and settings together (a sync batch). It
        returns the audit events to write ahead of the save; raising changes nothing."""
        self._mutate(mutation)

    def record(self, op: str, name: str | None = None, outcome: str = "ok", detail: str | None = None) -> None:
        """Append an event that changes nothing in the vault (an export, a copy to clipboard)."""
        self._append([self._event(op, name, outcome=outcome, detail=detail)])

    # -- internals ------------------------------------------------------------------------

    def _event(self, op: str, name: str | None = None, *, outcome: str = "ok", detail: str | None = None) -> AuditEvent:
        return AuditEvent(op, outcome, self.actor, name, detail, self.clock())

    def _require_key(self) -> bytearray:
        if self._key is None:
            raise VaultLocked()
        return self._key

    def _current_body(self) -> Body:
        self._require_key()
        self.refresh()
        assert self._body is not None
        return self._body

    def _append(self, events: list[AuditEvent]) -> None:
        with self._guard:
            self._require_key()
            with writer_lock(self.path):
                self._follow_locked()
                self._append_locked(events)

    def _follow_locked(self) -> None:
        """Before chaining, under the lock: is our key still the vault's? Records chained under
        a key another process re-keyed away would break the log for everyone; this session's
        queued records go to the pending file instead, and the caller gets ConcurrencyError."""
        try:
            self._follow_rekey()
        except ConcurrencyError:
            queued, self._queued = self._queued, []
            for event in queued:
                record_pending(AuditFiles.beside(self.path), event)
            raise

    def _follow_rekey(self) -> None:
        """Re-read the file if another process saved: ConcurrencyError if our key no longer
        opens it. A damaged or missing file is for its readers to report, not the log's."""
        try:
            self.refresh()
        except (VaultCorrupted, VaultNotFound):
            pass

    def _append_locked(self, events: list[AuditEvent]) -> AuditAnchor:
        """Chain the queued records and ``events``; the caller holds the lock and the key of
        the file on disk, so what a killed re-key left is settled here first."""
        assert self._audit is not None
        if self._audit.settle() == DISCARDED:
            events = [self._event("rekey", outcome="interrupted",
                                  detail="staging files of a re-key killed before its commit removed"), *events]
        queued, self._queued = self._queued, []
        return self._audit.append([*queued, *events])

    def _settle_staged(self) -> None:
        """At unlock: what a killed re-key left beside the log is settled before anything reads
        the log (a new-key vault must never be read with its old-key log)."""
        assert self._audit is not None
        if self._audit.files.has_staged():
            try:
                self._append([])
            except BaseException:
                self._wipe()
                raise

    def _save(self, header: VaultHeader, vault_key: bytearray) -> None:
        assert self._body is not None
        atomic_write(self.path, _seal_file(header, self._body, vault_key))

    def _reload(self) -> None:
        key = self._require_key()
        data, stamp = read_snapshot(self.path)
        envelope = parse_file(data)
        if envelope.header.vault_id != self._header.vault_id:
            raise ConcurrencyError("the vault file was replaced by a different vault; unlock it again")
        try:
            body = Body.decode(open_sealed(key, envelope.sealed_body, envelope.aad))
        except AuthenticationFailed:
            raise ConcurrencyError("the vault was re-keyed or replaced by another process; unlock it again") from None
        self._header, self._body, self._stamp = envelope.header, body, stamp

    def _mutate(self, mutation: Mutation) -> None:
        with self._guard:
            self._mutate_guarded(mutation)

    def _mutate_guarded(self, mutation: Mutation) -> None:
        key = self._require_key()
        with writer_lock(self.path):
            self.refresh()  # the newest generation, re-read only if another process saved
            remove_stale_temps(self.path)
            assert self._body is not None and self._audit is not None
            change = Change(self._body, list(self._header.slots), self._header.vault_id, key)
            try:
                events = mutation(change)
            except BaseException:
                self._reload()  # drop the half-applied change
                raise
            header = replace(self._header, generation=self._header.generation + 1, slots=tuple(change.slots))
            events = [*events, *backups.before_save(self.path, self._header, header, self._body.settings, self._event)]
            # Write-ahead: the audit records go first and the new body anchors them, so a
            # writer killed in between leaves a record of an attempt, never a silent change.
            self._body.anchor = self._append_locked(events)
            try:
                atomic_write(self.path, _seal_file(header, self._body, key))
            except BaseException:
                self._audit.append([self._event("save", outcome="failed", detail=f"generation {header.generation}")])
                self._reload()
                raise
            self._header, self._stamp = header, file_stamp(self.path)


def mark_rotate_now(body: Body, names: list[str] | None, now: datetime) -> int:
    """Inside a mutation: mark ``names`` (None: every secret) "rotate now"; a secret already
    marked keeps its first request time. Returns how many were newly marked."""
    marked = 0
    for name in body.names() if names is None else names:
        secret = body.get(name)
        if secret is None:
            raise SecretNotFound(name)
        if secret.rotate_requested is None:
            body.put(replace(secret, rotate_requested=now))
            marked += 1
    return marked


def _seal_file(header: VaultHeader, body: Body, vault_key: bytearray) -> list[bytes]:
    header_bytes = header.encode()
    return encode_file(header_bytes, seal(bytes(vault_key), body.encode(), body_aad(header_bytes)))


def _try_slots(header: VaultHeader, offered: list[SlotOpener]) -> tuple[
        tuple[bytearray, SlotOpener, KeySlot] | None, WrongCredentials | None]:
    """The first slot that opens, and otherwise the first factor error worth telling (a touch
    timeout, a wrong PIN): such an error does not stop the other slots from being tried, so a
    key that wants a PIN cannot lock the password slot out."""
    first_error: WrongCredentials | None = None
    for opener in offered:
        for slot in header.slots:
            if slot.kind in opener.kinds:
                try:
                    return (opener.open(slot, header.vault_id), opener, slot), None
                except IncorrectFactor:
                    continue
                except WrongCredentials as error:
                    first_error = first_error or error
    return None, first_error


def _open_body(envelope: Envelope, vault_key: bytearray) -> Body:
    try:
        plaintext = open_sealed(vault_key, envelope.sealed_body, envelope.aad)
    except AuthenticationFailed:
        raise VaultCorrupted("the vault failed authentication: its header or body was tampered with") from None
    return Body.decode(plaintext)
