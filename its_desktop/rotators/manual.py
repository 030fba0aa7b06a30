"""``manual``: for keys only the issuer's website can rotate (most broker API keys). A person
makes the new key there and enters it; the current value stays the one in use until they
confirm the new one works, and then goes to history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..core.secrets import Secret
from .base import RotationContext, SettingsEdit, StepFailed, need_person


def guidance(secret: Secret) -> str:
    where = secret.fields.get("url") or secret.tags.get("url") or "the site that issued it"
    about = f" ({secret.description})" if secret.description else ""
    return (f"Rotate '{secret.name}'{about} by hand: sign in at {where}, create a new key or "
            "password there, and enter it here. Keep the old one active until the new one is confirmed.")


@dataclass
class ManualRotator:
    name: ClassVar[str] = "manual"
    sets_elsewhere: ClassVar[bool] = False
    automatic: ClassVar[bool] = False

    def check(self, secret: Secret) -> str | None:
        return None

    def create(self, ctx: RotationContext) -> str:
        person = need_person(ctx)
        person.guide(ctx.name, guidance(ctx.secret))
        new = person.new_value(ctx.name)
        if not new:
            raise StepFailed("no new value was entered")
        if new == ctx.secret.value:
            raise StepFailed("the new value is the same as the current one")
        return new

    def set(self, ctx: RotationContext, new: str) -> None:
        """The person set it at the issuer before entering it."""

    def test(self, ctx: RotationContext, new: str) -> None:
        if not need_person(ctx).confirm(f"Does the new value of '{ctx.name}' work (e.g. your bot signs in with it)?"):
            raise StepFailed("the new value was not confirmed to work")

    def finish(self, ctx: RotationContext, new: str) -> SettingsEdit | None:
        return None
