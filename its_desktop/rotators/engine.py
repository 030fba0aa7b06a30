"""Drives one rotation through create → set → test → finish, saving between steps.

The new value is saved as pending right after ``create``, before the owner of the credential
changes, and becomes current only after ``test`` proved it works. So at every moment, a crash
included, the vault holds a working value: the current one until ``set``, the pending one after.
A rotation that finds a pending value resumes: if the pending value already works it only
finishes, else it sets it again.

Every step is an audit event (``rotate-create``, ``rotate-set``, ``rotate-test``,
``rotate-finish``), failed steps included, with the rotator's name and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

from ..core.errors import InvalidInput
from ..core.secrets import Secret
from ..core.vault.api import Vault
from . import registry
from .base import Interaction, RotationContext, RotationFailed, Rotator, StepFailed

T = TypeVar("T")
# Told of each step as it starts (a GUI shows progress; a test may stop the rotation there).
StepObserver = Callable[[str, str], None]  # (secret name, step)


@dataclass(frozen=True)
class Rotated:
    """A finished rotation: what ran and the secret's new version (no value here)."""

    name: str
    rotator: str
    version: int
    resumed: bool


def rotate(vault: Vault, name: str, rotator: str | None = None, interaction: Interaction | None = None,
           observer: StepObserver | None = None) -> Rotated:
    """Rotate ``name`` now with ``rotator`` (default: the secret's own). Returns only once the
    new value is verified and committed; otherwise raises RotationFailed naming the step."""
    secret = vault.peek(name)
    chosen = _choose(secret, rotator)
    plugin = registry.make(chosen)
    problem = plugin.check(secret)
    if problem:
        raise InvalidInput(f"the {chosen} rotator cannot rotate this secret: {problem}")
    ctx = RotationContext(vault, secret, interaction)
    run = _Steps(vault, name, chosen, observer)
    resumed = secret.pending is not None
    if resumed:
        assert secret.pending is not None
        new = secret.pending.value
        if not plugin.sets_elsewhere:  # nothing outside to set again: the test decides
            run.step("test", lambda: plugin.test(ctx, new), pending=True)
        elif not _already_works(run, plugin, ctx, new):
            run.step("set", lambda: plugin.set(ctx, new), pending=True)
            run.step("test", lambda: plugin.test(ctx, new), pending=True)
    else:
        new = run.step("create", lambda: plugin.create(ctx), pending=False, audit_ok=False)
        vault.begin_rotation(name, new, chosen)  # audited as rotate-create
        run.step("set", lambda: plugin.set(ctx, new), pending=True)
        run.step("test", lambda: plugin.test(ctx, new), pending=True)
    edit = run.step("finish", lambda: plugin.finish(ctx, new), pending=True, audit_ok=False)
    done = vault.finish_rotation(name, f"{chosen}: verified" + (" (resumed)" if resumed else ""), edit)
    return Rotated(name, chosen, done.version, resumed)


def _choose(secret: Secret, asked: str | None) -> str:
    if secret.pending is not None:
        if asked and asked != secret.pending.rotator:
            raise InvalidInput(f"a {secret.pending.rotator} rotation of '{secret.name}' is under way: resume it "
                               f"with 'its-vault rotate {secret.name}' or drop it with --abandon")
        return secret.pending.rotator
    return registry.check_name(asked) if asked else registry.rotator_name(secret)


def _already_works(run: _Steps, plugin: Rotator, ctx: RotationContext, new: str) -> bool:
    """On resume: did the interrupted rotation's set step happen? Its test says so."""
    try:
        run.step("test", lambda: plugin.test(ctx, new), pending=True)
        return True
    except RotationFailed:
        return False


@dataclass
class _Steps:
    vault: Vault
    name: str
    rotator: str
    observer: StepObserver | None

    def step(self, step: str, action: Callable[[], T], *, pending: bool, audit_ok: bool = True) -> T:
        if self.observer is not None:
            self.observer(self.name, step)
        try:
            result = action()
        except StepFailed as exc:
            self.vault.record(f"rotate-{step}", self.name, outcome="failed", detail=f"{self.rotator}: {exc}")
            raise RotationFailed(self.name, step, str(exc), pending, exc.resumable) from None
        if audit_ok:
            self.vault.record(f"rotate-{step}", self.name, detail=self.rotator)
        return result


def abandon(vault: Vault, name: str) -> Secret:
    """Drop a pending value (the user's choice: e.g. a manual rotation they gave up on)."""
    secret = vault.peek(name)
    if secret.pending is None:
        raise InvalidInput(f"no rotation of '{name}' is under way")
    return vault.abandon_rotation(name, f"{secret.pending.rotator}: abandoned by the user")
