"""The rotator plugin interface.

A rotator knows one owner of a credential (a database, a remote store, a person at a broker's
website). The engine calls its steps in order and saves between them:

- ``create``: check the owner is reachable with the current value, return the new value (the
  engine saves it as *pending* before anything else changes);
- ``set``: make the owner accept the new value;
- ``test``: prove the new value works (on resume, also: has ``set`` already happened?);
- ``finish``: anything the owner needs after the test (AWS moves its AWSCURRENT stage);
  it may return a settings edit that the engine saves together with the new value.

Steps raise ``StepFailed`` with a one-line reason that names no value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Protocol

from ..core.errors import VaultError
from ..core.secrets import Secret
from ..core.vault.api import Vault

STEPS = ("create", "set", "test", "finish")

SettingsEdit = Callable[[dict, Secret], None]


class StepFailed(VaultError):
    """A rotator's step did not succeed; the message says why, never with a value.
    ``resumable`` is False when running the rotation again cannot help (the message then says
    what to do instead)."""

    def __init__(self, message: str, resumable: bool = True) -> None:
        super().__init__(message)
        self.resumable = resumable


class RotationFailed(VaultError):
    """A rotation stopped at ``step``; the vault still holds a working value."""

    def __init__(self, name: str, step: str, reason: str, pending: bool, resumable: bool = True) -> None:
        hint = f" (run 'its-vault rotate {name}' to resume)" if resumable else ""
        kept = f"the current value is unchanged and the new one is kept as pending{hint}" if pending \
            else "nothing was changed"
        super().__init__(f"rotation of '{name}' failed at step '{step}': {reason}; {kept}")
        self.name = name
        self.step = step
        self.reason = reason
        self.pending = pending


class Interaction(Protocol):
    """A person at hand (a terminal or the GUI), for the steps only a person can do."""

    def guide(self, name: str, text: str) -> None:
        """Show what to do now."""
        ...

    def new_value(self, name: str) -> str | None:
        """The value the person got from the issuer, or None when they gave up."""
        ...

    def confirm(self, question: str) -> bool: ...


@dataclass
class RotationContext:
    """What a step may use: the open vault, the secret as it was when the rotation began (its
    current value and fields), and a person if one is at hand."""

    vault: Vault
    secret: Secret
    interaction: Interaction | None = None

    @property
    def name(self) -> str:
        return self.secret.name


class Rotator(Protocol):
    name: ClassVar[str]
    automatic: ClassVar[bool]  # may run unattended (`rotate --due`, the app's scheduler)
    sets_elsewhere: ClassVar[bool]  # its set step changes something outside the vault

    def check(self, secret: Secret) -> str | None:
        """Why this rotator cannot rotate ``secret`` (a missing field), or None."""
        ...

    def create(self, ctx: RotationContext) -> str: ...

    def set(self, ctx: RotationContext, new: str) -> None: ...

    def test(self, ctx: RotationContext, new: str) -> None: ...

    def finish(self, ctx: RotationContext, new: str) -> SettingsEdit | None: ...


def need_person(ctx: RotationContext) -> Interaction:
    if ctx.interaction is None:
        raise StepFailed("this rotation needs a person to do it (run it from a terminal or the app)")
    return ctx.interaction
