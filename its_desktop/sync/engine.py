"""The three-way comparison behind ``its-vault sync``: pure, no I/O, no clock.

For every secret of a synced folder there are three states: the local one, the remote one, and
the *base*, what both sides last agreed on (the remote version and the content hash, kept in
the vault per remote). Comparing each side with the base tells who changed what:

=============================  ==========================================================
local / remote vs. the base    what the plan does
=============================  ==========================================================
neither changed                nothing
only local changed             push (a local deletion: delete on the remote)
only remote changed            pull (a remote deletion: delete here)
both changed, to the same      nothing to transfer; the base moves to the new agreement
both changed, differently      conflict, until the user picks local, remote or both
=============================  ==========================================================

A deletion is only ever propagated from a *tombstone*: a local deletion leaves one in the
vault, a remote one is a KV v2 soft-deleted version or an AWS secret scheduled for deletion.
A secret that simply vanished (a wiped dev server, a purged key, a vault restored from an old
copy) is restored from the other side instead: losing data must take a deliberate act.

Without a base (never synced with this remote), the sides are compared directly: one side only
means push or pull, the same content on both means agreement, different content is a conflict,
and a tombstone newer than the other side's last change is a conflict rather than a silent
resurrection.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any, Mapping, Union

Version = Union[int, str]  # a KV v2 version number, an AWS VersionId


class State(str, Enum):
    PRESENT = "present"
    DELETED = "deleted"  # a tombstone: deleted on purpose, at ``Side.time``
    ABSENT = "absent"  # nothing known


@dataclass(frozen=True)
class Side:
    """One side of a secret: present (with its content hash and last change), deleted (a
    tombstone and its time) or absent. ``version`` is the remote version a write must check
    against (KV v2 keeps a version for a soft-deleted secret, AWS for one scheduled for
    deletion)."""

    state: State = State.ABSENT
    hash: str | None = None
    time: datetime | None = None
    version: Version | None = None

    @classmethod
    def present(cls, hash: str, time: datetime | None = None, version: Version | None = None) -> Side:
        return cls(State.PRESENT, hash, time, version)

    @classmethod
    def deleted(cls, time: datetime | None = None, version: Version | None = None) -> Side:
        return cls(State.DELETED, None, time, version)

    @property
    def here(self) -> bool:
        return self.state is State.PRESENT


ABSENT = Side()


@dataclass(frozen=True)
class Base:
    """What local and remote last agreed on."""

    version: Version | None
    hash: str
    synced_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "hash": self.hash, "synced_at": self.synced_at}

    @classmethod
    def from_json(cls, raw: Any) -> Base | None:
        if not isinstance(raw, dict) or not isinstance(raw.get("hash"), str):
            return None  # an unreadable base is treated as never synced: nothing is deleted from it
        version = raw.get("version")
        return cls(version if isinstance(version, (int, str)) else None, raw["hash"], raw.get("synced_at"))


class Op(str, Enum):
    PUSH = "push"
    PULL = "pull"
    DELETE_REMOTE = "delete-remote"
    DELETE_LOCAL = "delete-local"
    KEEP_BOTH = "keep-both"  # a resolved conflict: the remote copy pulled under a new name, local pushed
    CONFLICT = "conflict"
    ADOPT = "adopt"  # same content on both sides: only the base moves
    FORGET = "forget"  # gone on both sides: the base is dropped
    NOOP = "no-op"


CHANGES = (Op.PUSH, Op.PULL, Op.DELETE_REMOTE, Op.DELETE_LOCAL, Op.KEEP_BOTH)
QUIET = (Op.NOOP, Op.ADOPT, Op.FORGET)
REMOTE_OPS = (Op.PUSH, Op.PULL, Op.DELETE_REMOTE, Op.KEEP_BOTH)  # those that call the backend


class Choice(str, Enum):
    """How the user settles a conflict."""

    LOCAL = "local"
    REMOTE = "remote"
    BOTH = "both"

    @classmethod
    def parse(cls, text: str) -> Choice:
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"choose local, remote or both, not '{text}'") from None


@dataclass(frozen=True)
class Item:
    """One secret of the plan: what to do, why, and the three states it was decided from."""

    name: str
    op: Op
    reason: str
    local: Side = ABSENT
    remote: Side = ABSENT
    base: Base | None = None
    resolved: Choice | None = None

    @property
    def expected(self) -> Version | None:
        """The remote version a write must find (check-and-set); None: the key must not exist."""
        return None if self.remote.state is State.ABSENT else self.remote.version


@dataclass(frozen=True)
class Plan:
    items: tuple[Item, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (name, why) that this remote cannot hold

    def count(self, op: Op) -> int:
        return sum(1 for item in self.items if item.op is op)

    def counts(self) -> Counter:
        return Counter(item.op for item in self.items)

    @property
    def changes(self) -> list[Item]:
        return [item for item in self.items if item.op in CHANGES]

    @property
    def conflicts(self) -> list[Item]:
        return [item for item in self.items if item.op is Op.CONFLICT]

    @property
    def unchanged(self) -> int:
        return sum(1 for item in self.items if item.op in QUIET)

    def item(self, name: str) -> Item | None:
        return next((item for item in self.items if item.name == name), None)

    def summary(self) -> str:
        c = self.counts()
        parts = [f"{c[Op.PUSH]} to push", f"{c[Op.PULL]} to pull", f"{c[Op.DELETE_REMOTE]} to delete on the remote",
                 f"{c[Op.DELETE_LOCAL]} to delete here"]
        if c[Op.KEEP_BOTH]:
            parts.append(f"{c[Op.KEEP_BOTH]} to keep both")
        parts.append(f"{c[Op.CONFLICT]} conflict{'' if c[Op.CONFLICT] == 1 else 's'}")
        parts.append(f"{self.unchanged} unchanged")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        return ", ".join(parts)


def _later(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and b is not None and a > b


def decide(local: Side, base: Base | None, remote: Side) -> tuple[Op, str]:
    """The operation for one secret, and a few words on why (see the module docstring)."""
    lp, rp = local.state is State.PRESENT, remote.state is State.PRESENT
    if base is None:
        if lp and rp:
            if local.hash == remote.hash:
                return Op.ADOPT, "the same on both sides"
            return Op.CONFLICT, "different on both sides, never synced"
        if lp:
            if remote.state is State.DELETED and _later(remote.time, local.time):
                return Op.CONFLICT, "deleted on the remote after it last changed here"
            return Op.PUSH, "new here"
        if rp:
            if local.state is State.DELETED and _later(local.time, remote.time):
                return Op.CONFLICT, "deleted here after it last changed on the remote"
            return Op.PULL, "new on the remote"
        return Op.NOOP, "gone on both sides"
    local_changed = lp and local.hash != base.hash
    remote_changed = rp and remote.hash != base.hash
    if lp and rp:
        if local.hash == remote.hash:
            if base.hash == local.hash and base.version == remote.version:
                return Op.NOOP, "in sync"
            return Op.ADOPT, "the same on both sides"
        if local_changed and remote_changed:
            return Op.CONFLICT, "changed on both sides"
        if local_changed:
            return Op.PUSH, "changed here"
        return Op.PULL, "changed on the remote"
    if lp:
        if remote.state is State.ABSENT:
            return Op.PUSH, "missing on the remote (no deletion recorded there)"
        if local_changed:
            return Op.CONFLICT, "changed here, deleted on the remote"
        return Op.DELETE_LOCAL, "deleted on the remote"
    if rp:
        if local.state is State.ABSENT:
            return Op.PULL, "missing here (no deletion recorded here)"
        if remote_changed:
            return Op.CONFLICT, "deleted here, changed on the remote"
        return Op.DELETE_REMOTE, "deleted here"
    return Op.FORGET, "gone on both sides"


def resolve(item: Item, choice: Choice) -> Item:
    """A conflict settled by the user; any other item is returned as it is."""
    if item.op is not Op.CONFLICT:
        return item
    lp, rp = item.local.here, item.remote.here
    if choice is Choice.BOTH:
        op = Op.KEEP_BOTH if lp and rp else (Op.PUSH if lp else Op.PULL)
    elif choice is Choice.LOCAL:
        op = Op.PUSH if lp else Op.DELETE_REMOTE
    else:
        op = Op.PULL if rp else Op.DELETE_LOCAL
    return replace(item, op=op, reason=f"conflict settled: keep {choice.value}", resolved=choice)


def plan(local: Mapping[str, Side], bases: Mapping[str, Base], remote: Mapping[str, Side],
         resolutions: Mapping[str, Choice] | None = None, skipped: tuple[tuple[str, str], ...] = ()) -> Plan:
    """Every name known to any of the three, decided; conflicts named in ``resolutions`` are
    settled as chosen."""
    resolutions = resolutions or {}
    items = []
    for name in sorted(local.keys() | bases.keys() | remote.keys()):
        here, there, base = local.get(name, ABSENT), remote.get(name, ABSENT), bases.get(name)
        op, reason = decide(here, base, there)
        if op is Op.NOOP and not here.here and not there.here:
            continue  # deleted on both sides long ago: nothing to do, nothing to show
        item = Item(name, op, reason, here, there, base)
        if op is Op.CONFLICT and name in resolutions:
            item = resolve(item, resolutions[name])
        items.append(item)
    return Plan(tuple(items), skipped)
