"""Helpers for traders' existing code, so bots can move off ``.env`` files gradually.

Each helper reads from the vault when it can be opened (``ITS_VAULT_PATH`` or the default
path, password in ``ITS_MASTER_PASSWORD``), and falls back to the environment variables the
bot used before when the vault is unreachable or does not hold the secret yet. The unlocked
vault is kept for the life of the process, so only the first call pays for the KDF.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from .core.audit import Actor
from .core.errors import SecretNotFound, VaultError
from .core.vault.api import Vault, default_vault_path
from .envconfig import RedactedDict, alert_config, database_config, env_name  # noqa: F401 (RedactedDict, env_name: re-exported)

log = logging.getLogger(__name__)
_lock = threading.Lock()
_cached: tuple[str, Vault] | None = None


def _vault() -> Vault | None:
    """The process's unlocked vault, or None when it cannot be opened (never raises)."""
    global _cached
    password = os.environ.get("ITS_MASTER_PASSWORD")
    path = default_vault_path()
    with _lock:
        if _cached and _cached[0] == str(path) and not _cached[1].is_locked:
            return _cached[1]
        if not password or not path.exists():
            return None
        try:
            vault = Vault.open(path, password, actor=Actor.current("api"))
        except VaultError as exc:
            log.warning("vault unreachable, using environment variables: %s", exc)
            return None
        _cached = (str(path), vault)
        return vault


def _from_vault(name: str) -> Any:
    vault = _vault()
    if vault is None:
        return None
    try:
        return vault.get(name)
    except SecretNotFound:
        return None
    except VaultError as exc:
        log.warning("vault read failed, using environment variables: %s", exc)
        return None


def get_its_secret(name: str, default: str | None = None) -> str | None:
    """The secret's value from the vault, else ``$NAME_IN_CAPS``, else ``default``."""
    secret = _from_vault(name)
    if secret is not None:
        return secret.value
    return os.environ.get(env_name(name), os.environ.get(name, default))


def _read(name: str) -> tuple[str, dict] | None:
    secret = _from_vault(name)
    return None if secret is None else (secret.value, secret.fields)


def get_database_config(name: str | None = None) -> dict[str, Any]:
    """host, port, user, password, dbname for a ``database`` secret (default ``database/main``
    or ``$ITS_DATABASE_SECRET``); else ``DB_*`` or libpq's ``PG*`` variables."""
    return database_config(_read(name or os.environ.get("ITS_DATABASE_SECRET", "database/main")), from_env=True)


def get_alert_config() -> dict[str, Any]:
    """Telegram, Slack and e-mail alert settings (see ``envconfig.alert_config``), else the
    usual environment variables."""
    return alert_config(_read, from_env=True)


def forget_vault() -> None:
    """Lock and drop the cached vault (tests, or a bot that wants to re-read the password)."""
    global _cached
    with _lock:
        if _cached:
            _cached[1].lock()
        _cached = None
