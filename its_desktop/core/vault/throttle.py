"""Back-off after failed unlocks: each consecutive failure past the third doubles the wait
before the next attempt (1 s, 2 s, 4 s ... at most 60 s), across processes.

The count lives in ``<vault>.unlock-failures`` beside the vault. It slows guessing through our
own front ends; it cannot stop an attacker who copies the file (Argon2id is the defence there).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

FREE_ATTEMPTS = 3
MAX_DELAY = 60.0


@dataclass(frozen=True)
class Failures:
    count: int = 0
    last: float = 0.0

    def delay(self, now: float) -> float:
        """Seconds to wait before the next attempt may run."""
        if self.count < FREE_ATTEMPTS:
            return 0.0
        wait = min(2.0 ** min(self.count - FREE_ATTEMPTS, 16), MAX_DELAY)  # no float overflow
        return min(wait, max(0.0, self.last + wait - now))  # a clock stepped back waits no longer


def _path(vault_path: Path) -> Path:
    return vault_path.with_name(vault_path.name + ".unlock-failures")


def read_failures(vault_path: Path) -> Failures:
    try:
        raw = json.loads(_path(vault_path).read_text())
        return Failures(int(raw["count"]), float(raw["last"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return Failures()


def record_failure(vault_path: Path) -> Failures:
    """Call under the writer lock."""
    failures = Failures(read_failures(vault_path).count + 1, time.time())
    tmp = _path(vault_path).with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"count": failures.count, "last": failures.last}, fh)
    os.replace(tmp, _path(vault_path))
    return failures


def clear_failures(vault_path: Path) -> None:
    _path(vault_path).unlink(missing_ok=True)
