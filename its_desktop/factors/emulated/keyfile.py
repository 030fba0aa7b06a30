"""The emulated keys' shared state file (``ITS_EMULATED_KEYS``).

Setting ``ITS_EMULATED_KEYS`` to a JSON file's path makes one emulated YubiKey and one emulated
FIDO2 key appear as plugged in; their secrets live in that file, so separate processes (the GUI,
several CLI calls) see the same keys. Never used unless asked for.

- ``ITS_EMULATED_KEYS_PIN``: give the FIDO2 key this PIN (when it has none yet).
- ``ITS_EMULATED_TOUCH``: ``immediate`` (default), ``never``, or a delay in milliseconds.
- ``ITS_EMULATED_TOUCH_TIMEOUT``: seconds before the key gives up waiting (default 2).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from ...core.vault.storage import atomic_write, writer_lock
from . import ctap2, yubikey_otp
from .touch import TouchPolicy

ENV_FILE = "ITS_EMULATED_KEYS"
ENV_PIN = "ITS_EMULATED_KEYS_PIN"
ENV_TOUCH = "ITS_EMULATED_TOUCH"
ENV_TOUCH_TIMEOUT = "ITS_EMULATED_TOUCH_TIMEOUT"


def requested() -> bool:
    return bool(os.environ.get(ENV_FILE))


def touch_policy() -> TouchPolicy:
    timeout = float(os.environ.get(ENV_TOUCH_TIMEOUT, "2"))
    mode = os.environ.get(ENV_TOUCH, "immediate").strip().lower()
    if mode == "never":
        return TouchPolicy.never(timeout)
    if mode == "immediate":
        return TouchPolicy(0.0, timeout)
    return TouchPolicy.after_ms(float(mode), timeout)


class EmulatedKeyFile:
    """The JSON file holding the emulated YubiKey's and FIDO2 key's state."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with writer_lock(path):
            try:
                self.state: dict[str, Any] = json.loads(path.read_text())
            except FileNotFoundError:
                self.state = {}
            changed = self._ensure()
            if changed:
                self._write()

    def _ensure(self) -> bool:
        yubikey = self.state.setdefault("yubikey", {})
        fido2 = self.state.setdefault("fido2", {})
        changed = yubikey_otp.ensure_state(yubikey) | ctap2.ensure_state(fido2)
        slots = yubikey["slots"]
        if slots.get("1") is None and slots.get("2") is None:
            # As a user would program a new key: slot 2 for challenge-response with touch,
            # slot 1 without (the factory Yubico OTP would sit there on a real key).
            yubikey_otp.provision_hmac_slot(yubikey, 2, secrets.token_bytes(20), require_touch=True)
            yubikey_otp.provision_hmac_slot(yubikey, 1, secrets.token_bytes(20), require_touch=False)
            changed = True
        pin = os.environ.get(ENV_PIN)
        if pin and not fido2.get("pin_hash"):
            ctap2.set_pin(fido2, pin)
            changed = True
        return changed

    def _write(self) -> None:
        atomic_write(self.path, json.dumps(self.state, indent=1, sort_keys=True).encode(), sync_folder=False)

    def persist(self) -> None:
        with writer_lock(self.path):
            self._write()


def open_key_file() -> EmulatedKeyFile | None:
    path = os.environ.get(ENV_FILE)
    return EmulatedKeyFile(Path(path).expanduser()) if path else None
