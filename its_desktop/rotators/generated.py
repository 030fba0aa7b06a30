"""``generated``: a new random value with the secret's policy (length, alphabet). The value
lives only in the vault, so set has nothing to do and test checks what was saved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..core.passwords import ValuePolicy
from ..core.secrets import Secret
from .base import RotationContext, SettingsEdit, StepFailed


def policy_of(secret: Secret) -> ValuePolicy:
    return secret.value_policy or ValuePolicy()


@dataclass
class GeneratedRotator:
    name: ClassVar[str] = "generated"
    sets_elsewhere: ClassVar[bool] = False
    automatic: ClassVar[bool] = True

    def check(self, secret: Secret) -> str | None:
        return None

    def create(self, ctx: RotationContext) -> str:
        return policy_of(ctx.secret).generate()

    def set(self, ctx: RotationContext, new: str) -> None:
        """Nothing outside the vault holds this value."""

    def test(self, ctx: RotationContext, new: str) -> None:
        saved = ctx.vault.peek(ctx.name).pending
        if saved is None or saved.value != new:
            raise StepFailed("the new value is not in the vault as saved")
        if not policy_of(ctx.secret).accepts(new):
            raise StepFailed("the new value does not match the secret's policy")

    def finish(self, ctx: RotationContext, new: str) -> SettingsEdit | None:
        return None
