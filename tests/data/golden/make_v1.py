"""Writes the format-version-1 golden vault. Run once per format version; the files are kept
forever so that every later build proves it still opens them (tests/unit/test_golden.py).

    python tests/data/golden/make_v1.py
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from its_desktop.core.audit import Actor
from its_desktop.core.crypto import Argon2Params
from its_desktop.core.vault.api import Vault

HERE = Path(__file__).parent
PASSWORD = "golden-v1 password ✓"
SECRETS = {
    "brokers/ibkr/api_key": ("api_key", "IBKR-KEY-0001", {"account": "U1234567"}),
    "db/main": ("database", "pg-pass-ÅØ", {"host": "127.0.0.1", "port": "5432", "user": "bot", "dbname": "ticks"}),
    "notes/multi line": ("note", "line 1\nline 2\n", {}),
}


def main() -> None:
    path = HERE / "v1.its"
    for old in HERE.glob("v1.its*"):
        old.unlink()
    clock = lambda: datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)  # noqa: E731
    actor = Actor("api", 1000, "make_v1.py")  # fixed: no machine's paths or pids in the files
    vault = Vault.create(path, PASSWORD, kdf=Argon2Params(8 * 1024, 1, 1), clock=clock, actor=actor)
    code = vault.take_recovery_code()
    for name, (kind, value, fields) in SECRETS.items():
        vault.set(name, value, type=kind, fields=fields, tags={"golden": "v1"})
    vault.set("brokers/ibkr/api_key", "IBKR-KEY-0002")
    vault.lock()
    (HERE / "v1.json").write_text(json.dumps({"password": PASSWORD, "recovery_code": code}, indent=2) + "\n")


if __name__ == "__main__":
    main()
