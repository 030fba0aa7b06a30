"""Backups of a vault: rolling generations beside it, and whole copies under keys of their own.

*Rolling generations* (``<vault>.backups/<vault>.gen-000123``) are the files of the last N saves
(``settings["backups"]["keep"]``, default 10, 0 turns them off). Just before a save renames its
new file over the vault, ``before_save`` hard-links the current file into the folder: no byte is
copied, the old inode simply outlives the rename. A generation is the live vault as it was, under
the same key and slots: it opens with the master password of its day.

A save that only re-arms a hardware slot (every unlock with a key makes one) keeps no
generation: the file it replaces holds the same secrets as the new one. So that no generation
keeps a way in the vault no longer has, a save that drops a key slot (a new master password, a
factor removed, a new recovery code) removes every generation, and so does the next save after
a re-key or a vault made anew at the same path (a generation whose slots the live file lacks).

*Copies* (``its-vault backup``, ``restore-backup``) are complete vault files in the same format
under a new random key and vault id with slots of their own: ``write_backup``, ``open_copy``
(read-only: nothing is written beside a backup) and ``restore``.

Rolling never fails a save: what goes wrong comes back as an audit event (``backup``, outcome
``failed``) that the save chains with its own.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from ..audit import AuditEvent, AuditFiles, AuditLog
from ..crypto import KEY_SIZE, Argon2Params, random_bytes, wipe
from ..errors import InvalidInput, VaultError
from . import slots as slotlib
from .body import Body
from .header import VaultHeader, peek_header
from .storage import atomic_write, ensure_private_folder, fsync_dir, read_snapshot, writer_lock

SETTING = "backups"  # settings["backups"] = {"keep": N}
DEFAULT_KEEP = 10
MAX_KEEP = 1000
ORIGIN = "backup_origin"  # in a backup's settings: which vault, which generation, when
# Agent grants let programs of one machine read without asking: a copy never carries them
# (it may be restored elsewhere, or after a lockdown revoked them). agent.grants.GRANTS_KEY.
NOT_COPIED = ("agent_grants",)

EventMaker = Callable[..., AuditEvent]  # Vault._event: (op, name=None, *, outcome, detail)


def folder_of(vault_path: Path) -> Path:
    return vault_path.with_name(vault_path.name + ".backups")


def keep_of(settings: dict[str, Any]) -> int:
    """How many generations to keep; anything malformed means the default."""
    entry = settings.get(SETTING)
    raw = entry.get("keep") if isinstance(entry, dict) else None
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= MAX_KEEP:
        return raw
    return DEFAULT_KEEP


def set_keep(settings: dict[str, Any], keep: int) -> None:
    if not 0 <= keep <= MAX_KEEP:
        raise InvalidInput(f"keep 0 to {MAX_KEEP} generations")
    settings[SETTING] = {"keep": keep}


@dataclass(frozen=True)
class Generation:
    number: int
    path: Path
    saved: datetime  # when it was the vault (its file's modification time)
    size: int


def generations(vault_path: Path) -> list[Generation]:
    """The rolling generations on disk, oldest first."""
    found = []
    for number, path in _listing(vault_path):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        found.append(Generation(number, path, datetime.fromtimestamp(st.st_mtime, timezone.utc), st.st_size))
    return found


def _listing(vault_path: Path) -> list[tuple[int, Path]]:
    pattern = re.compile(re.escape(vault_path.name) + r"\.gen-(\d{1,18})")
    try:
        with os.scandir(folder_of(vault_path)) as entries:
            found = [(int(m.group(1)), Path(e.path)) for e in entries if (m := pattern.fullmatch(e.name))]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(found)


# -- rolling, called by every save ---------------------------------------------------------


def before_save(path: Path, current: VaultHeader, new: VaultHeader, settings: dict[str, Any],
                event: EventMaker) -> list[AuditEvent]:
    """Under the writer lock, just before ``new`` replaces ``current`` at ``path``: keep the
    current file as a generation and prune. Returns the audit events to chain with the save: a
    failure, never raised. (Removing generations is not audited: they are copies of saves that
    are themselves in the log, and the change that revoked them is audited.)"""
    try:
        _roll(path, current, new, keep_of(settings))
    except Exception as error:  # noqa: BLE001 (a backup problem must never cost the save)
        reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        return [event("backup", outcome="failed", detail=f"generation {current.generation} not kept: {reason}")]
    return []


def _roll(path: Path, current: VaultHeader, new: VaultHeader, keep: int) -> None:
    entries = _listing(path)
    if keep == 0:
        if entries:
            _remove(entries)
            _rmdir_quietly(folder_of(path))
        return
    if not _ways_in(current) <= _ways_in(new):
        _remove(entries)  # a way in was revoked: no copy may keep it
        return
    if new.slots != current.slots and _ways_in(new) == _ways_in(current):
        return  # a hardware slot re-armed (every unlock with a key): the same secrets as the new file
    if entries and not _still_opens(entries[-1][1], current):
        _remove(entries)  # from before a re-key, or of another vault made at this path
        entries = []
    folder = folder_of(path)
    ensure_private_folder(folder)
    target = folder / f"{path.name}.gen-{current.generation:06d}"
    try:
        os.link(path, target)
    except FileExistsError:  # a save that failed after linking, or a recreated vault
        if not os.path.samefile(path, target):
            staged = folder / f".{target.name}.tmp"
            staged.unlink(missing_ok=True)
            os.link(path, staged)
            os.replace(staged, target)
    entries = [e for e in entries if e[1] != target] + [(current.generation, target)]
    entries.sort()
    if len(entries) > keep:
        _remove(entries[:len(entries) - keep])


def _ways_in(header: VaultHeader) -> set[tuple[str, bytes]]:
    """A slot's id and salt stay the same through re-arming; a new password, a new recovery
    code or a re-key changes one of them."""
    return {(slot.id, slot.salt) for slot in header.slots}


def _still_opens(generation: Path, current: VaultHeader) -> bool:
    try:
        header = peek_header(generation)
    except (OSError, VaultError):
        return True  # unreadable: pruned in its turn, never a reason to drop the others
    return header.vault_id == current.vault_id and _ways_in(header) <= _ways_in(current)


def _remove(entries: Sequence[tuple[int, Path]]) -> None:
    for _, path in entries:
        path.unlink(missing_ok=True)


def _rmdir_quietly(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # something else lives there: not ours to delete


# -- copies under their own key ------------------------------------------------------------


@dataclass(repr=False)
class NewKeys:
    """A new vault's key, id and slots; the recovery code (if any) is shown once."""

    vault_key: bytearray
    header: VaultHeader
    recovery_code: str | None

    def wipe(self) -> None:
        wipe(self.vault_key)


def new_keys(password: str, kdf: Argon2Params, recovery: bool) -> NewKeys:
    """A random vault key and id, a password slot (one Argon2id derivation) and optionally a
    recovery slot, as ``Vault.create`` makes them."""
    if not kdf.within_bounds():
        raise InvalidInput("KDF parameters out of range (memory 8 MiB to 1 GiB, time cost 1 to 64)")
    from ..secrets import new_id

    key = bytearray(random_bytes(KEY_SIZE))
    vault_id = new_id()
    slot_list = [slotlib.new_password_slot(password, key, vault_id, kdf)]
    code = None
    if recovery:
        recovery_slot, code = slotlib.new_recovery_slot(key, vault_id)
        slot_list.append(recovery_slot)
    return NewKeys(key, VaultHeader(vault_id, 1, slotlib.now_iso(), tuple(slot_list)), code)


def copy_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """What a copy keeps of a vault's settings: all but the grants and a previous origin."""
    import copy

    return {k: copy.deepcopy(v) for k, v in settings.items() if k not in NOT_COPIED and k != ORIGIN}


def write_backup(target: Path, body: Body, keys: NewKeys, *, force: bool = False) -> None:
    """``body`` (no audit anchor: a backup is one file, with no log beside it) sealed under
    ``keys`` at ``target``, atomically, mode 0600."""
    from .api import _seal_file

    if target.exists() and not force:
        raise InvalidInput(f"{target} already exists (--force replaces it)")
    body.anchor = None
    atomic_write(target, _seal_file(keys.header, body, keys.vault_key))


@dataclass(repr=False)
class OpenedCopy:
    """A backup or a rolling generation, opened read-only."""

    header: VaultHeader
    body: Body
    key: bytearray

    def wipe(self) -> None:
        wipe(self.key)


def open_copy(path: Path, openers: Sequence[Any]) -> OpenedCopy:
    """Verify and open a vault file without writing anything beside it (a backup may sit on
    read-only media; a failed attempt is not throttled: whoever holds the file can guess
    offline anyway). Damage or tampering: VaultCorrupted; nothing opens: WrongCredentials."""
    from ..errors import WrongCredentials
    from .api import _open_body, _try_slots
    from .header import parse_file

    data, _ = read_snapshot(path)
    envelope = parse_file(data)
    opened, error = _try_slots(envelope.header, list(openers))
    if opened is None:
        raise error or WrongCredentials("wrong passphrase for this backup")
    key = opened[0]
    try:
        body = _open_body(envelope, key)
    except BaseException:
        wipe(key)
        raise
    return OpenedCopy(envelope.header, body, key)


@dataclass(frozen=True)
class Restored:
    vault_id: str
    recovery_code: str | None
    replaced: Path | None  # where the vault that was at the target went


def restore(target: Path, body: Body, keys: NewKeys, first_event: AuditEvent, *, force: bool = False,
            now: datetime | None = None) -> Restored:
    """Write ``body`` as a new vault at ``target`` under ``keys``, its audit chain starting with
    ``first_event``. An existing vault there is refused, or with ``force`` renamed aside with its
    audit files and generations (``<vault>.replaced-YYYYmmddTHHMMSS``): never deleted."""
    from .api import _seal_file

    ensure_private_folder(target.parent)
    with writer_lock(target):
        replaced = None
        if target.exists():
            if not force:
                raise InvalidInput(f"a vault already exists at {target} (--force replaces it; it is kept beside)")
            replaced = _move_aside(target, now or datetime.now(timezone.utc))
        else:
            leftovers = [p for p in companions(target) if p.exists()]
            if leftovers:  # the log of a vault deleted by hand: kept too
                _move_aside(target, now or datetime.now(timezone.utc))
        log = AuditLog(target, keys.vault_key, keys.header.vault_id)
        try:
            body.anchor = log.append([first_event])  # write-ahead, as every save
            atomic_write(target, _seal_file(keys.header, body, keys.vault_key))
        finally:
            log.wipe()
    return Restored(keys.header.vault_id, keys.recovery_code, replaced)


def companions(vault_path: Path) -> list[Path]:
    """What belongs to a vault besides its file and its lock file: what moves with it."""
    files = AuditFiles.beside(vault_path)
    return [files.log, files.head, files.pending, files.staged_log, files.staged_head,
            vault_path.with_name(vault_path.name + ".unlock-failures"), folder_of(vault_path)]


def _move_aside(vault_path: Path, now: datetime) -> Path:
    """Rename the vault and its companions to ``<name>.replaced-<time>`` (+ the same suffixes),
    so the old vault still opens there with its log. The vault file goes first."""
    stem = f"{vault_path.name}.replaced-{now.strftime('%Y%m%dT%H%M%S')}"
    aside, n = vault_path.with_name(stem), 1
    while aside.exists() or aside.with_name(aside.name + ".audit").exists():
        n += 1
        aside = vault_path.with_name(f"{stem}-{n}")
    for source in [vault_path, *companions(vault_path)]:
        if source.exists():
            os.replace(source, aside.with_name(aside.name + source.name[len(vault_path.name):]))
    fsync_dir(vault_path.parent)
    return aside
