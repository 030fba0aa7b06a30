"""The terminal's side of the factors' prompter port: touch messages and PIN prompts."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field

FIDO2_PIN_ENV = "ITS_FIDO2_PIN"


@dataclass
class TerminalPrompter:
    cancel: threading.Event = field(default_factory=threading.Event)
    _said: set[str] = field(default_factory=set)

    def touch(self, message: str) -> None:
        if message not in self._said:  # the key asks again every few hundred ms
            self._said.add(message)
            print(f"{message}…", file=sys.stderr, flush=True)

    def pin(self, message: str) -> str | None:
        env = os.environ.get(FIDO2_PIN_ENV)
        if env:
            return env
        if not sys.stdin.isatty():
            return None
        import getpass

        return getpass.getpass(f"{message}: ") or None
