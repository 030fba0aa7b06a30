"""The rotators by name. A new rotator is one module and one line here; the cloud ones are
imported only when used, so `its-vault rotate` of a generated secret loads no SDK."""

from __future__ import annotations

import importlib

from ..core.errors import InvalidInput
from ..core.secrets import Secret, SecretSummary
from .base import Rotator

# name -> (module, class, runs unattended)
ROTATORS: dict[str, tuple[str, str, bool]] = {
    "generated": ("generated", "GeneratedRotator", True),
    "postgresql": ("postgresql", "PostgresRotator", True),
    "openbao": ("openbao", "OpenBaoRotator", True),
    "aws": ("aws", "AwsRotator", True),
    "manual": ("manual", "ManualRotator", False),
}
DEFAULT = "manual"  # a secret nobody said how to rotate is rotated by a person


def names() -> list[str]:
    return list(ROTATORS)


def check_name(name: str) -> str:
    if name not in ROTATORS:
        raise InvalidInput(f"unknown rotator '{name}' (choose from {', '.join(ROTATORS)})")
    return name


def rotator_name(secret: Secret | SecretSummary) -> str:
    """The rotator a secret is rotated with: the one it names, else by hand."""
    return secret.rotator or DEFAULT


def is_automatic(name: str | None) -> bool:
    return ROTATORS.get(name or DEFAULT, ("", "", False))[2]


def make(name: str) -> Rotator:
    module, cls, _ = ROTATORS[check_name(name)]
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)()
