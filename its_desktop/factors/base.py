"""What the unlock factors share: the prompter port, the hardware-key interface, their errors.

A hardware key is a keyed pseudo-random function on a device: the YubiKey's HMAC-SHA1
challenge-response, or a FIDO2 credential's hmac-secret. A hardware slot stores the input it
last used; unlocking asks the device for that input's output (and the next input's, to re-arm).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.errors import VaultError, WrongCredentials
from ..core.vault.header import KeySlot


class Prompter(Protocol):
    """How a factor talks to the human: the CLI and the GUI each implement it."""

    cancel: threading.Event

    def touch(self, message: str) -> None:
        """The key is waiting for a touch (called again if it keeps waiting)."""

    def pin(self, message: str) -> str | None:
        """A PIN for the key, or None to cancel."""


@dataclass
class QuietPrompter:
    """For code with no human at hand: never asks, takes a PIN given up front."""

    given_pin: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    touches: int = 0

    def touch(self, message: str) -> None:
        self.touches += 1

    def pin(self, message: str) -> str | None:
        return self.given_pin


class FactorError(VaultError):
    """A hardware key could not answer (gone, busy, rejected the request)."""


class TouchTimeout(WrongCredentials):
    def __init__(self, message: str = "timed out waiting for a touch of the key") -> None:
        super().__init__(message)


class PinRequired(WrongCredentials):
    def __init__(self, message: str = "the FIDO2 key needs its PIN (set ITS_FIDO2_PIN or answer the prompt)") -> None:
        super().__init__(message)


class WrongPin(WrongCredentials):
    def __init__(self, retries: int | None = None) -> None:
        left = f" ({retries} tries left before the key locks)" if retries is not None else ""
        super().__init__(f"wrong PIN for the FIDO2 key{left}")


class HardwareKey(Protocol):
    """A plugged-in device that can serve hardware slots of one kind."""

    kind: str
    label: str

    def serves(self, slot: KeySlot) -> bool:
        """Whether this device may hold the slot's secret (a YubiKey checks its serial; a FIDO2
        key cannot tell before asking)."""

    def enroll(self, prompter: Prompter, options: dict[str, Any]) -> dict[str, Any]:
        """Prepare the device for a new slot; returns the slot's public params (no input yet)."""

    def respond(self, params: dict[str, Any], inputs: list[bytes], prompter: Prompter) -> list[bytes]:
        """The device's outputs for ``inputs`` (32 bytes each), in the slot's mode. Raises
        IncorrectFactor when this device does not hold the slot's secret."""

    input_param: str
