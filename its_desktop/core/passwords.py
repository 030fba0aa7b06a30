"""Random passwords and API keys from the OS's CSPRNG."""

from __future__ import annotations

import secrets
import string

from .errors import InvalidInput

SYMBOLS = "!#%&*+-.:=?@^_~"
DEFAULT_LENGTH = 32
MIN_LENGTH = 8
MAX_LENGTH = 4096


def generate_password(length: int = DEFAULT_LENGTH, symbols: bool = True) -> str:
    """A random password with at least one lower, upper, digit (and symbol) character.

    Symbols are limited to ones that need no quoting in a .env file (quote them in a shell).
    """
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise InvalidInput(f"password length must be {MIN_LENGTH} to {MAX_LENGTH}")
    classes = [string.ascii_lowercase, string.ascii_uppercase, string.digits]
    if symbols:
        classes.append(SYMBOLS)
    alphabet = "".join(classes)
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(ch in cls for ch in candidate) for cls in classes):
            return candidate
