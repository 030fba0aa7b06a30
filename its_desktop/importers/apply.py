"""Saving a preview: all or nothing by default, duplicates skipped or merged by choice, never
silently replaced, one save for the whole import, every secret it writes audited.

A name already in the vault, or met twice in the file, is a duplicate:

- ``skip`` (the default): the vault keeps what it has; the duplicate is listed as skipped.
- ``merge``: the existing secret takes the imported value as a new version (the old one stays
  in its history, restorable), fields and tags are merged (the imported ones win on the same
  key, the old field values stay in history too), the description and expiry are filled in
  only where the vault has none, the type stays, high-value is kept if either says so. An
  import that changes nothing is ``unchanged``: no new version.

The plan is made again inside the save, on the newest vault (another process may have
written since the preview), by the same function the preview used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Callable, Iterable

from ..core.audit import AuditEvent
from ..core.secrets import Secret, SecretType
from ..core.vault.api import Change, Vault
from .base import ImportedSecret, ImportRefused, Preview


class Duplicates(str, Enum):
    SKIP = "skip"
    MERGE = "merge"


class Action(str, Enum):
    CREATE = "create"
    MERGE = "merge"
    UNCHANGED = "unchanged"
    SKIP = "skip"


IN_VAULT, IN_FILE = "already in the vault", "twice in the file"


@dataclass(frozen=True)
class Planned:
    """What happens to one imported secret; no value."""

    name: str
    type: SecretType
    action: Action
    why: str = ""  # for a duplicate: IN_VAULT or IN_FILE


@dataclass(frozen=True)
class ImportPlan:
    items: tuple[Planned, ...]
    accepted_issues: int = 0

    def count(self, action: Action) -> int:
        return sum(1 for item in self.items if item.action is action)

    def summary(self, done: bool = True) -> str:
        words = (("created", "merged", "unchanged", "skipped") if done
                 else ("to create", "to merge", "unchanged", "to skip"))
        counts = [self.count(a) for a in (Action.CREATE, Action.MERGE, Action.UNCHANGED, Action.SKIP)]
        parts = [f"{n} {word}" for n, word in zip(counts, words)]
        if counts[1]:
            parts[1] += " (old values kept in history)"
        text = ", ".join(parts)
        if self.accepted_issues:
            text += f"; {self.accepted_issues} problem{'s' if self.accepted_issues != 1 else ''} left out"
        return text


def plan_import(secrets: Iterable[ImportedSecret], lookup: Callable[[str], Secret | None],
                duplicates: Duplicates, now: datetime) -> tuple[ImportPlan, list[Secret]]:
    """What importing ``secrets`` does to a vault whose secrets ``lookup`` returns, and the
    secrets to write. Pure: the preview and the save both use it."""
    written: dict[str, Secret] = {}
    seen: set[str] = set()
    items = []
    for incoming in secrets:
        why = IN_FILE if incoming.name in seen else IN_VAULT
        seen.add(incoming.name)
        old = written[incoming.name] if incoming.name in written else lookup(incoming.name)
        if old is None:
            written[incoming.name] = _created(incoming, now)
            items.append(Planned(incoming.name, incoming.type, Action.CREATE))
        elif duplicates is Duplicates.SKIP:
            items.append(Planned(incoming.name, old.type, Action.SKIP, why))
        else:
            merged = _merged(old, incoming, now)
            if merged is None:
                items.append(Planned(incoming.name, old.type, Action.UNCHANGED, why))
            else:
                written[incoming.name] = merged
                items.append(Planned(incoming.name, old.type, Action.MERGE, why))
    return ImportPlan(tuple(items)), list(written.values())


def preview_plan(vault: Vault, preview: Preview, duplicates: Duplicates) -> ImportPlan:
    """The plan against the vault as it is now, for a dry run or the GUI's table."""
    names = set(vault.names())
    return plan_import(preview.secrets, lambda n: vault.peek(n) if n in names else None, duplicates, vault.clock())[0]


def apply_import(vault: Vault, preview: Preview, duplicates: Duplicates = Duplicates.SKIP, *,
                 accept_partial: bool = False) -> ImportPlan:
    """Import the preview in one save. ImportRefused (nothing written) if it has problems and
    the valid part was not accepted, or if nothing in it is valid."""
    if preview.issues and (not accept_partial or not preview.secrets):
        raise ImportRefused(preview.source, len(preview.issues), len(preview.secrets))
    origin = f"{preview.kind}:{preview.source}"
    plans: list[ImportPlan] = []

    def change(c: Change) -> list[AuditEvent]:
        now = vault.clock()
        plan, written = plan_import(preview.secrets, c.body.get, duplicates, now)
        plan = replace(plan, accepted_issues=len(preview.issues))
        tombstones = c.body.settings.get("tombstones", {})
        for secret in written:
            c.body.put(secret)
            tombstones.pop(secret.name, None)  # as Vault.set does: sync must not delete it again
        events = [AuditEvent("import", "ok", vault.actor, item.name, f"{origin}: {item.action.value}", now)
                  for item in plan.items if item.action in (Action.CREATE, Action.MERGE)]
        events.append(AuditEvent("import", "ok", vault.actor, None, f"{origin}: {plan.summary()}", now))
        plans.append(plan)
        return events

    vault.apply(change)
    return plans[-1]


def _created(incoming: ImportedSecret, now: datetime) -> Secret:
    return Secret(name=incoming.name, value=incoming.value, type=incoming.type, fields=dict(incoming.fields),
                  tags=dict(incoming.tags), description=incoming.description, created=now, updated=now,
                  value_updated=now, expires_at=incoming.expires_at, high_value=incoming.high_value)


def _merged(old: Secret, incoming: ImportedSecret, now: datetime) -> Secret | None:
    """``old`` with the import merged in, or None if that changes nothing."""
    fields = {**old.fields, **incoming.fields}
    secret = old
    if incoming.value != old.value or fields != old.fields:
        secret = old.with_value(incoming.value, fields, now=now, answers_request=incoming.value != old.value)
    metadata = dict(tags={**old.tags, **incoming.tags}, description=old.description or incoming.description,
                    expires_at=old.expires_at or incoming.expires_at, high_value=old.high_value or incoming.high_value)
    if secret is old and all(getattr(old, key) == value for key, value in metadata.items()):
        return None
    return replace(secret, updated=now, **metadata)
