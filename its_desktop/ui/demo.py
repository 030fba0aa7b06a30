"""``its-desktop --demo``: a populated vault in a temporary folder with emulated hardware keys,
so anyone can see every panel without hardware. Never touches the user's vault."""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path

from ..core.crypto import Argon2Params
from ..core.rotation import RotationPolicy
from ..core.secrets import utcnow
from ..core.vault.api import Vault

DEMO_PASSWORD = "demo"

_SECRETS = [
    # name, type, value, fields, tags, rotate every (days), expires in (days), age (days)
    ("brokers/ibkr/api_key", "api_key", "IBKR-DEMO-7f3a9c", {"account": "U1234567"}, {"env": "prod"}, 90, None, 80),
    ("brokers/ibkr/flex_token", "api_key", "FLEX-DEMO-55aa", {}, {"env": "prod"}, 30, None, 35),
    ("exchanges/binance/api_key", "api_key", "BNB-DEMO-key-0001", {}, {"env": "prod", "desk": "crypto"}, 60, None, 10),
    ("exchanges/binance/api_secret", "api_key", "BNB-DEMO-secret-0001", {}, {"env": "prod", "desk": "crypto"}, 60, None, 10),
    ("exchanges/kraken/api_key", "api_key", "KRK-DEMO-9911", {}, {"env": "paper"}, None, 5, 100),
    ("databases/ticks/password", "database", "pg-demo-Password!1",
     {"host": "127.0.0.1", "port": "5432", "user": "ticks", "dbname": "ticks"}, {"env": "prod"}, 180, None, 20),
    ("alerts/telegram", "api_key", "123456:DEMO-telegram-token", {"chat_id": "424242"}, {}, None, None, 200),
    ("ssh/colo-gateway", "ssh_key", "-----BEGIN OPENSSH PRIVATE KEY-----\nDEMO\n-----END OPENSSH PRIVATE KEY-----",
     {"host": "colo.example"}, {"site": "ny4"}, 365, None, 300),
    ("notes/runbook", "note", "Rotate broker keys after every incident.", {}, {}, None, None, 3),
]


def make_demo_vault(folder: Path | None = None) -> Path:
    """Create the demo vault (and its emulated keys) in a new temporary folder."""
    folder = folder or Path(tempfile.mkdtemp(prefix="its-desktop-demo-"))
    os.environ.setdefault("ITS_EMULATED_KEYS", str(folder / "emulated-keys.json"))
    path = folder / "demo.its"
    now = utcnow()
    with Vault.create(path, DEMO_PASSWORD, kdf=Argon2Params(8 * 1024, 1, 1)) as vault:
        vault.take_recovery_code()
        for name, kind, value, fields, tags, every, expires, age in _SECRETS:
            vault.clock = lambda age=age: now - timedelta(days=age)
            vault.set(name, value, type=kind, fields=fields, tags=tags,
                      rotation=RotationPolicy(every) if every else None,
                      expires_at=now + timedelta(days=expires) if expires else None)
        vault.clock = utcnow
        from ..core import totp

        for issuer, account, name in (("IBKR", "trader@example.com", "mfa/ibkr"),
                                      ("Binance", "desk@example.com", "mfa/binance")):
            otp = totp.generate_account(issuer, account)
            vault.set(name, otp.secret, type="totp", fields=totp.account_to_fields(otp), tags={"demo": "yes"})
        from ..factors import hardware
        from ..factors.base import QuietPrompter

        for key in hardware.list_keys():
            hardware.enroll(vault, key, DEMO_PASSWORD, QuietPrompter(), f"demo {key.label}", {"otp_slot": 2})
    return path
