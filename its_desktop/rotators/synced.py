"""What the cloud rotators share: a secret that a sync remote keeps is rotated on the remote
first and committed here with the sync *base* moved in the same save, so the next
``its-vault sync`` finds nothing to do.

A rotation never overwrites what it has not seen: it starts only when local and remote are
both still at the base ("sync first" otherwise), and writes are checked against the base
version. ``openbao`` and ``aws`` add their own set and test steps.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import ClassVar, Iterator

from ..core.errors import BackendError, InvalidInput, SecretNotFound
from ..core.secrets import Secret
from ..sync.backends import CasFailed, Listed
from ..sync.engine import Base, State, Version
from ..sync.payload import Content, decode, from_secret, secret_hash
from ..sync.remotes import BASES, Remote, credential_names, list_remotes
from ..sync.syncer import Syncer
from .base import RotationContext, SettingsEdit, StepFailed
from .generated import policy_of


@dataclass(frozen=True)
class Target:
    """Where a synced secret lives: its remote, its key there, and the base both sides last
    agreed on (never a value)."""

    remote: Remote
    key: str
    base: Base

    @property
    def expected(self) -> Version:
        assert self.base.version is not None  # checked by ``target``
        return self.base.version


@dataclass
class SyncedRotator:
    """Rotation of a secret that a remote of type ``remote_type`` syncs. Each step opens the
    remote as ``its-vault sync`` does (a ``Syncer``: the same credentials, an audited read of
    them) and closes it again; ``verified`` carries the version ``test`` found to ``finish``."""

    remote_type: ClassVar[str]
    sets_elsewhere: ClassVar[bool] = True
    automatic: ClassVar[bool] = True

    written: Version | None = field(default=None, init=False)  # what set wrote in this run
    verified: Version | None = field(default=None, init=False)  # the remote version holding the new value

    def check(self, secret: Secret) -> str | None:
        return None  # whether a remote syncs it is only known with the vault open: create says

    def create(self, ctx: RotationContext) -> str:
        target = self.target(ctx)
        remote = target.remote.name
        if secret_hash(ctx.secret) != target.base.hash:
            raise StepFailed(f"'{ctx.name}' changed here since the last sync with remote '{remote}': "
                             f"run 'its-vault sync {remote}' first")
        with self.opened(ctx, target) as syncer:
            there = syncer.backend.read(target.key)
        if there.state is not State.PRESENT or there.version != target.base.version:
            raise StepFailed(f"'{ctx.name}' changed on remote '{remote}' since the last sync: "
                             f"run 'its-vault sync {remote}' first")
        return policy_of(ctx.secret).generate()

    def finish(self, ctx: RotationContext, new: str) -> SettingsEdit | None:
        return self.move_base(ctx, self.target(ctx), new)

    # -- shared by the cloud rotators ----------------------------------------------------------

    def target(self, ctx: RotationContext) -> Target:
        """The one remote of our type syncing the secret and their base, or why there is none."""
        vault, name, kind = ctx.vault, ctx.name, self.remote_type
        remotes = [r for r in list_remotes(vault) if r.type == kind and r.covers(name)]
        if not remotes:
            raise StepFailed(f"no {kind} remote syncs '{name}': add one for its folder ('its-vault remote add "
                             f"NAME --type {kind} --folder ...') or choose another rotator")
        if len(remotes) > 1:
            raise StepFailed(f"'{name}' is synced by several {kind} remotes "
                             f"({', '.join(r.name for r in remotes)}): it can be rotated in only one")
        remote = remotes[0]
        if name in credential_names(vault):
            raise StepFailed(f"'{name}' holds the credentials of a remote, which are never synced")
        raw = ((vault.settings().get(BASES) or {}).get(remote.name) or {}).get(name)
        base = Base.from_json(raw)
        if base is None or base.version is None:
            raise StepFailed(f"'{name}' was never synced with remote '{remote.name}': "
                             f"run 'its-vault sync {remote.name}' first")
        return Target(remote, remote.key_for(name), base)

    @contextmanager
    def opened(self, ctx: RotationContext, target: Target) -> Iterator[Syncer]:
        """The remote's backend, built and closed as a sync does; its failures (one line, no
        value) become the step's."""
        try:
            with Syncer(ctx.vault, target.remote, workers=1) as syncer:
                yield syncer
        except CasFailed:
            raise StepFailed(f"'{ctx.name}' changed on remote '{target.remote.name}' during the rotation, so "
                             f"nothing was overwritten: abandon it ('its-vault rotate {ctx.name} --abandon'), "
                             f"sync, and rotate again", resumable=False) from None
        except (BackendError, InvalidInput, SecretNotFound) as exc:  # e.g. the credentials secret is gone
            raise StepFailed(str(exc)) from None

    def content(self, ctx: RotationContext, new: str) -> Content:
        """The secret with its new value as sync writes it. Its time is when the rotation began,
        so a resumed step sends the very same payload (AWS refuses a token's repeat otherwise)."""
        pending = ctx.secret.pending or ctx.vault.peek(ctx.name).pending
        if pending is None:
            raise StepFailed(f"no rotation of '{ctx.name}' is under way")
        return from_secret(replace(ctx.secret, value=new, updated=pending.started))

    def holds(self, listed: Listed, content: Content) -> bool:
        """Whether ``listed`` is the new value: its content, and the version set wrote in this
        run (on resume that is unknown, and the fresh random value's hash says it alone)."""
        return (listed.state is State.PRESENT and decode(listed.raw).hash == content.hash
                and (self.written is None or listed.version == self.written))

    def move_base(self, ctx: RotationContext, target: Target, new: str) -> SettingsEdit:
        """The base moves to the version verified by test, saved with the new value."""
        if self.verified is None:
            raise StepFailed("the new value was not verified on the remote")
        base = Base(self.verified, self.content(ctx, new).hash)
        remote, clock = target.remote.name, ctx.vault.clock

        def edit(settings: dict, secret: Secret) -> None:
            bases = settings.setdefault(BASES, {}).setdefault(remote, {})
            bases[secret.name] = replace(base, synced_at=clock().isoformat()).to_json()

        return edit
