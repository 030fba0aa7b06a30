"""Plan and apply a sync between one remote and its vault folder.

``plan`` lists the remote (with bounded concurrency and progress), reads the content of what
changed there, hashes the local side and hands the three states to the pure ``engine``.
``apply`` carries the plan out on a small thread pool: pushes, deletions and reads run on the
workers; everything that touches the vault runs on the calling thread, in batches: pulled
secrets, local deletions, the new bases and one audit event per secret go into the vault in
*one* save per batch (every ``batch_size`` results or ``BATCH_SECONDS``).

Faults lose nothing and a rerun converges:

- a remote write that raced another writer fails its check-and-set (``CasFailed``); those
  secrets are planned again at the end of the round (now a pull, or a conflict);
- a network error, a refused token or a dead server stops the submitting; what is in flight
  finishes, every completed result is saved, then the error is raised (``BackendError``, one
  line). A process killed outright loses at most the results of its last batch, which the
  next run finds equal on both sides and only records (``adopt``);
- a remote write is idempotent when repeated: KV v2 checks the version we last saw, AWS gets a
  ``ClientRequestToken`` derived from that version and the content (keyed by the remote's
  ``token_salt``, so the token reveals nothing about the value);
- a pull or local deletion is written only if the local secret still has the content the plan
  saw, checked under the vault's writer lock, so an edit made meanwhile is never overwritten.

A batch is saved with ``Vault.apply`` (writer lock, newest generation, write-ahead audit,
atomic save), once per batch rather than once per secret.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Callable

from ..core.audit import AuditEvent
from ..core.errors import BackendError, InvalidInput, SecretNotFound
from ..core.secrets import Secret, SecretType, validate_name
from ..core.vault.api import Change, Vault
from . import engine
from .backends import Backend, CasFailed, Listed, bounded, open_backend, parse_time
from .engine import Base, Choice, Item, Op, Plan, Side, State, Version
from .payload import Content, decode, from_secret, secret_hash
from .remotes import BASES, Remote, credential_names, read_credentials

DEFAULT_WORKERS = 8
BATCH_SIZE = 200
BATCH_SECONDS = 2.0
MAX_ROUNDS = 3


@dataclass(frozen=True)
class Progress:
    phase: str  # "listing", "reading" or "applying"
    done: int
    total: int


ProgressFn = Callable[[Progress], None]


@dataclass
class SyncResult:
    remote: str
    pushed: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)
    deleted_remote: list[str] = field(default_factory=list)
    deleted_local: list[str] = field(default_factory=list)
    copies: list[str] = field(default_factory=list)  # "keep both": the remote version, pulled beside
    adopted: int = 0
    conflicts: list[Item] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)  # conflicts settled as the caller chose
    cancelled: bool = False

    def summary(self) -> str:
        parts = [f"{len(self.pushed)} pushed", f"{len(self.pulled)} pulled",
                 f"{len(self.deleted_remote)} deleted on the remote", f"{len(self.deleted_local)} deleted here"]
        if self.copies:
            parts.append(f"{len(self.copies)} kept both")
        n = len(self.conflicts)
        parts.append(f"{n} conflict{'' if n == 1 else 's'}")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        if self.cancelled:
            parts.append("cancelled")
        return ", ".join(parts)


@dataclass(repr=False)
class _Done:
    """A completed remote step, waiting for the next save."""

    item: Item
    version: Version | None = None
    hash: str | None = None  # of what was pushed
    content: Content | None = None  # what was pulled


class Syncer:
    """One remote, one vault. Use as a context manager (closes the backend's connections)."""

    def __init__(self, vault: Vault, remote: Remote, *, backend: Backend | None = None,
                 workers: int = DEFAULT_WORKERS, batch_size: int = BATCH_SIZE,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.vault = vault
        self.remote = remote
        self.workers = max(1, workers)
        self.batch_size = max(1, batch_size)
        self.clock = clock or vault.clock
        self._backend = backend
        self._owns_backend = backend is None
        # Remote content read while planning, by local name: (version, content). Pulls use it.
        self._contents: dict[str, tuple[Version | None, Content]] = {}

    def __enter__(self) -> Syncer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_backend and self._backend is not None:
            backend, self._backend = self._backend, None
            backend.close()
        self._contents.clear()

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = open_backend(self.remote, read_credentials(self.vault, self.remote), self.workers)
        return self._backend

    def remote_content(self, name: str) -> Content | None:
        """The remote content seen by the last plan (for showing a conflict side by side)."""
        seen = self._contents.get(name)
        return seen[1] if seen else None

    # -- planning ------------------------------------------------------------------------------

    def plan(self, resolutions: dict[str, Choice] | None = None, progress: ProgressFn | None = None,
             cancel: threading.Event | None = None, names: set[str] | None = None) -> Plan:
        """What a sync would do now; changes nothing. ``names`` limits it to those secrets
        (read one by one instead of listing the whole remote)."""
        backend, remote = self.backend, self.remote
        if names is None:
            listing = backend.list(remote.prefix, _phase(progress, "listing"), cancel)
            self._contents.clear()
        else:
            keys = [remote.key_for(n) for n in sorted(names) if backend.check_key(remote.key_for(n)) is None]
            listing = {listed.key: listed for listed in
                       bounded(backend.read, keys, self.workers, cancel, _phase(progress, "listing"))
                       if listed.state is not State.ABSENT}

        def wanted(name: str) -> bool:
            return remote.covers(name) and name not in excluded and (names is None or name in names)

        excluded = credential_names(self.vault)
        skipped: list[tuple[str, str]] = []
        local: dict[str, Side] = {}
        for summary in self.vault.summaries():
            if not wanted(summary.name):
                continue
            why = backend.check_key(remote.key_for(summary.name))
            if why:
                skipped.append((summary.name, why))
                continue
            try:
                secret = self.vault.peek(summary.name)
            except SecretNotFound:  # deleted since the listing: its tombstone is read below
                continue
            local[summary.name] = Side.present(secret_hash(secret), parse_time(summary.updated))
        settings = self.vault.settings()  # read after the secrets: a deletion in between leaves its tombstone here
        bases = {n: b for n, raw in (settings.get(BASES) or {}).get(remote.name, {}).items()
                 if wanted(n) and (b := Base.from_json(raw)) is not None}
        for name, when in (settings.get("tombstones") or {}).items():
            if wanted(name) and name not in local and backend.check_key(remote.key_for(name)) is None:
                local[name] = Side.deleted(parse_time(when))

        there: dict[str, Side] = {}
        to_read: list[str] = []
        for key, listed in listing.items():
            name = remote.name_for(key)
            if not _valid_name(name):
                skipped.append((name, "not a valid vault name"))
                continue
            if name in excluded:
                skipped.append((name, "holds a remote's credentials: never synced"))
                continue
            if names is not None and name not in names:
                continue
            base = bases.get(name)
            if listed.state is State.PRESENT and listed.raw is None:
                if base is not None and base.version == listed.version:
                    there[name] = Side.present(base.hash, listed.time, listed.version)
                else:
                    to_read.append(key)
                continue
            there[name] = self._side(name, listed)
        for listed in bounded(backend.read, to_read, self.workers, cancel, _phase(progress, "reading")):
            if listed.state is not State.ABSENT:
                there[remote.name_for(listed.key)] = self._side(remote.name_for(listed.key), listed)
        return engine.plan(local, bases, there, resolutions, tuple(sorted(skipped)))

    def _side(self, name: str, listed: Listed) -> Side:
        if listed.state is not State.PRESENT:
            return Side.deleted(listed.time, listed.version)
        content = decode(listed.raw)
        self._contents[name] = (listed.version, content)
        # The time the remote got this version (not when it was edited elsewhere): a deletion
        # made here before a deliberate re-creation there must not look newer than it.
        return Side.present(content.hash, listed.time or parse_time(content.updated), listed.version)

    # -- applying ------------------------------------------------------------------------------

    def apply(self, plan: Plan | None = None, resolutions: dict[str, Choice] | None = None,
              progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> SyncResult:
        """Carry out ``plan`` (or a fresh one). Secrets that changed while it ran are planned
        and applied again, at most ``MAX_ROUNDS`` times in all."""
        result = SyncResult(self.remote.name)
        names: set[str] | None = None
        for round_number in range(MAX_ROUNDS):
            if plan is None:
                plan = self.plan(resolutions, progress, cancel, names)
            if round_number == 0:
                result.skipped = list(plan.skipped)
                result.resolved = [item.name for item in plan.items if item.resolved is not None]
            result.conflicts.extend(plan.conflicts)
            again = self._apply_round(plan, result, progress, cancel)
            plan = None
            if result.cancelled or not again:
                return result
            names = again
        raise BackendError(f"{len(names or ())} secrets kept changing on the remote during the sync: run it again")

    def _apply_round(self, plan: Plan, result: SyncResult, progress: ProgressFn | None,
                     cancel: threading.Event | None) -> set[str]:
        """One pass over the plan; returns the names to plan again."""
        again: set[str] = set()
        batch: list[_Done] = [_Done(item) for item in plan.items if item.op in (Op.ADOPT, Op.FORGET, Op.DELETE_LOCAL)]
        work = [item for item in plan.items if item.op in engine.REMOTE_OPS]
        total = len(batch) + len(work)
        done_count = len(batch)
        report = _phase(progress, "applying")
        if report:
            report(done_count, total)
        fatal: BaseException | None = None
        stopping = False
        last_save = time.monotonic()
        queue = iter(work)
        pending: dict[Future, Item] = {}

        def collect(future: Future, item: Item) -> None:
            nonlocal fatal, stopping
            try:
                batch.append(future.result())
            except CasFailed:
                again.add(item.name)
            except BaseException as exc:
                fatal = fatal or exc
                stopping = True

        with ThreadPoolExecutor(self.workers, thread_name_prefix="its-sync-apply") as pool:
            try:
                while True:
                    while not stopping and len(pending) < self.workers * 2:
                        item = next(queue, None)
                        if item is None:
                            break
                        task = self._task(item)
                        if isinstance(task, _Done):  # nothing to ask the remote (content already read)
                            batch.append(task)
                            done_count += 1
                            if len(batch) >= self.batch_size:
                                self._save(batch, result, again)
                                last_save = time.monotonic()
                        elif task is None:
                            again.add(item.name)
                            done_count += 1
                        else:
                            pending[pool.submit(task)] = item
                    if not pending:
                        break
                    finished, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                    for future in finished:
                        collect(future, pending.pop(future))
                        done_count += 1
                        if len(batch) >= self.batch_size:
                            self._save(batch, result, again)
                            last_save = time.monotonic()
                    if cancel is not None and cancel.is_set() and not stopping:
                        stopping = result.cancelled = True
                    if report:
                        report(done_count, total)
                    if batch and time.monotonic() - last_save > BATCH_SECONDS:
                        self._save(batch, result, again)
                        last_save = time.monotonic()
            except BaseException as exc:  # Ctrl+C, or a save that failed: keep what is done
                fatal = fatal or exc
                for future, item in list(pending.items()):
                    if not future.cancel():
                        wait([future])
                        collect(future, item)
                pending.clear()
        try:
            self._save(batch, result, again)
        except BaseException:
            if fatal is None:
                raise
        if fatal is not None:
            raise fatal  # a BackendError is one line for the user; anything else is a bug, for the log
        return again

    def _task(self, item: Item) -> Callable[[], _Done] | _Done | None:
        """What a worker runs for ``item`` (the local side is read here, on the vault's thread);
        a ``_Done`` when nothing needs the remote; None when the local secret is gone."""
        backend, key = self.backend, self.remote.key_for(item.name)
        if item.op in (Op.PUSH, Op.KEEP_BOTH):
            try:
                secret = self.vault.peek(item.name)
            except SecretNotFound:
                return None
            content = from_secret(secret)
            payload, digest = content.to_json(), content.hash
            request_id = self.request_id(key, item.expected, digest)
            deleted = item.remote.state is State.DELETED
            if item.op is Op.PUSH:
                return lambda: _Done(item, backend.write(key, payload, item.expected, deleted, request_id), digest)

            def keep_both() -> _Done:
                theirs = self._remote_content(item)
                return _Done(item, backend.write(key, payload, item.expected, deleted, request_id), digest, theirs)

            return keep_both
        if item.op is Op.PULL:
            seen = self._contents.get(item.name)
            if seen is not None and seen[0] == item.remote.version:
                return _Done(item, seen[0], content=seen[1])
            return lambda: _Done(item, item.remote.version, content=self._remote_content(item))
        if item.op is Op.DELETE_REMOTE:
            expected = item.remote.version

            def delete() -> _Done:
                if expected is not None:
                    backend.delete(key, expected)
                return _Done(item)

            return delete
        raise AssertionError(f"not a remote step: {item.op}")

    def _remote_content(self, item: Item) -> Content:
        """The remote content the plan saw; read again if it was not kept (a worker calls this)."""
        seen = self._contents.get(item.name)
        if seen is not None and seen[0] == item.remote.version:
            return seen[1]
        key = self.remote.key_for(item.name)
        listed = self.backend.read(key)
        if listed.state is not State.PRESENT or listed.version != item.remote.version:
            raise CasFailed(key)
        return decode(listed.raw)

    def request_id(self, key: str, expected: Version | None, digest: str) -> str:
        """Stable for a retry of the same write (same base version, same content), different
        for any other; keyed, so a version id seen on AWS tells nothing about the value."""
        salt = (self.remote.token_salt or self.remote.name).encode()
        mac = hmac.new(salt, f"{key}\n{expected}\n{digest}".encode(), hashlib.sha256).digest()
        return str(uuid.UUID(bytes=mac[:16]))

    # -- saving --------------------------------------------------------------------------------

    def _save(self, batch: list[_Done], result: SyncResult, again: set[str]) -> None:
        """One vault save for a batch: pulled secrets, local deletions, bases, audit events."""
        if not batch:
            return
        remote = self.remote.name
        applied: list[tuple[Op, str, str | None]] = []
        changed_meanwhile: set[str] = set()

        def mutation(change: Change) -> list[AuditEvent]:
            applied.clear()
            changed_meanwhile.clear()
            now = self.clock()
            stamp = now.isoformat()
            body, events = change.body, []

            def event(op: str, name: str | None, detail: str) -> None:
                events.append(AuditEvent(op, "ok", self.vault.actor, name, detail, now))

            bases = body.settings.setdefault(BASES, {}).setdefault(remote, {})
            tombstones = body.settings.setdefault("tombstones", {})
            for done in batch:
                item, name = done.item, done.item.name
                current = body.get(name)
                if item.op in (Op.PULL, Op.DELETE_LOCAL):
                    if (secret_hash(current) if current else None) != item.local.hash:
                        changed_meanwhile.add(name)  # edited here since the plan: never overwritten
                        continue
                copy = None
                if item.op is Op.PUSH:
                    bases[name] = Base(done.version, done.hash or "", stamp).to_json()
                    event("sync-push", name, remote)
                elif item.op is Op.PULL:
                    assert done.content is not None
                    body.put(_materialize(current, name, done.content, now))
                    tombstones.pop(name, None)
                    bases[name] = Base(done.version, done.content.hash, stamp).to_json()
                    event("sync-pull", name, remote)
                elif item.op is Op.DELETE_REMOTE:
                    bases.pop(name, None)
                    event("sync-delete", name, f"{remote}: deleted on the remote")
                elif item.op is Op.DELETE_LOCAL:
                    body.remove(name)
                    tombstones[name] = stamp
                    bases.pop(name, None)
                    event("sync-delete", name, f"{remote}: deleted here")
                elif item.op is Op.ADOPT:  # e.g. a push whose record a killed run never wrote
                    bases[name] = Base(item.remote.version, item.remote.hash or "", stamp).to_json()
                    event("sync-adopt", name, f"{remote}: already the same on both sides")
                elif item.op is Op.FORGET:
                    bases.pop(name, None)
                elif item.op is Op.KEEP_BOTH:
                    assert done.content is not None
                    copy = _copy_name(body, name, now)
                    body.put(_materialize(None, copy, done.content, now))
                    tombstones.pop(copy, None)
                    bases[name] = Base(done.version, done.hash or "", stamp).to_json()
                    event("sync-pull", copy, f"{remote}: the remote version, kept beside the local one")
                    event("sync-push", name, remote)
                applied.append((item.op, name, copy))
            if not bases:
                body.settings[BASES].pop(remote, None)
            if not tombstones:
                body.settings.pop("tombstones", None)
            counts = {op: sum(1 for a in applied if a[0] is op) for op in Op}
            event("sync", None, f"{remote}: {counts[Op.PUSH] + counts[Op.KEEP_BOTH]} pushed, "
                                f"{counts[Op.PULL] + counts[Op.KEEP_BOTH]} pulled, "
                                f"{counts[Op.DELETE_REMOTE] + counts[Op.DELETE_LOCAL]} deleted")
            return events

        self.vault.apply(mutation)
        again |= changed_meanwhile
        for op, name, copy in applied:
            if op is Op.PUSH:
                result.pushed.append(name)
            elif op is Op.PULL:
                result.pulled.append(name)
            elif op is Op.DELETE_REMOTE:
                result.deleted_remote.append(name)
            elif op is Op.DELETE_LOCAL:
                result.deleted_local.append(name)
            elif op is Op.ADOPT:
                result.adopted += 1
            elif op is Op.KEEP_BOTH and copy is not None:
                result.pushed.append(name)
                result.copies.append(copy)
                again.add(copy)  # pushed as a new secret in the next round
        batch.clear()


def _materialize(old: Secret | None, name: str, content: Content, now: datetime) -> Secret:
    """The local secret after a pull: exactly the remote value, fields and type (a new
    version if they differ; the old one stays in history). Tags and the description come
    along unless the remote was written by another tool (which has none)."""
    kind = SecretType(content.type)
    if old is None:
        return Secret(name=name, value=content.value, type=kind, fields=dict(content.fields), tags=dict(content.tags),
                      description=content.description, created=now, updated=now, value_updated=now)
    secret = old
    if old.value != content.value or old.fields != content.fields:
        secret = old.with_value(content.value, dict(content.fields), now=now)
    if content.foreign:
        return replace(secret, type=kind, updated=now)
    return replace(secret, type=kind, tags=dict(content.tags), description=content.description, updated=now)


def _copy_name(body, name: str, now: datetime) -> str:
    base = f"{name}.remote-{now.strftime('%Y%m%dT%H%M%SZ')}"
    candidate, n = base, 2
    while candidate in body:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def _valid_name(name: str) -> bool:
    try:
        validate_name(name)
    except InvalidInput:
        return False
    return True


def _phase(progress: ProgressFn | None, phase: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(Progress(phase, done, total))
