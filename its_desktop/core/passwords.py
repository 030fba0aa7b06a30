"""Random passwords and API keys from the OS's CSPRNG, and the per-secret policy that says
what a generated (or rotated) value looks like."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from .errors import InvalidInput

SYMBOLS = "!#%&*+-.:=?@^_~"
DEFAULT_LENGTH = 32
MIN_LENGTH = 8
MAX_LENGTH = 4096

# Named alphabets, so a policy says what it means ("hex" for an exchange's key format) and a
# symbol that a downstream system chokes on never slips in.
ALPHABETS: dict[str, tuple[str, ...]] = {
    "password": (string.ascii_lowercase, string.ascii_uppercase, string.digits, SYMBOLS),
    "alnum": (string.ascii_lowercase, string.ascii_uppercase, string.digits),
    "hex": ("0123456789abcdef",),
    "digits": (string.digits,),
    "base64url": (string.ascii_letters + string.digits + "-_",),
}
DEFAULT_ALPHABET = "password"


@dataclass(frozen=True)
class ValuePolicy:
    """What a new value of a secret looks like: its length and a named alphabet."""

    length: int = DEFAULT_LENGTH
    alphabet: str = DEFAULT_ALPHABET

    def __post_init__(self) -> None:
        if not MIN_LENGTH <= self.length <= MAX_LENGTH:
            raise InvalidInput(f"value length must be {MIN_LENGTH} to {MAX_LENGTH}")
        if self.alphabet not in ALPHABETS:
            raise InvalidInput(f"unknown alphabet '{self.alphabet}' (choose from {', '.join(ALPHABETS)})")

    def generate(self) -> str:
        return generate_value(self.length, ALPHABETS[self.alphabet])

    def accepts(self, value: str) -> bool:
        """Whether ``value`` could have come from this policy (a rotation's own check)."""
        allowed = set("".join(ALPHABETS[self.alphabet]))
        return len(value) == self.length and all(ch in allowed for ch in value)


def generate_value(length: int, classes: tuple[str, ...]) -> str:
    """``length`` characters with at least one from each class (when there are several)."""
    alphabet = "".join(classes)
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if len(classes) == 1 or all(any(ch in cls for ch in candidate) for cls in classes):
            return candidate


def generate_password(length: int = DEFAULT_LENGTH, symbols: bool = True) -> str:
    """A random password with at least one lower, upper, digit (and symbol) character.

    Symbols are limited to ones that need no quoting in a .env file (quote them in a shell).
    """
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise InvalidInput(f"password length must be {MIN_LENGTH} to {MAX_LENGTH}")
    return generate_value(length, ALPHABETS["password" if symbols else "alnum"])
