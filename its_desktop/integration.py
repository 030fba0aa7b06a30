"""Helpers for traders' existing code, so bots can move off ``.env`` files gradually.

Each helper reads from the vault when it can be opened (``ITS_VAULT_PATH`` or the default
path, password in ``ITS_MASTER_PASSWORD``), and falls back to the environment variables the
bot used before when the vault is unreachable or does not hold the secret yet. The unlocked
vault is kept for the life of the process, so only the first call pays for the KDF.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any

from .core.audit import Actor
from .core.errors import SecretNotFound, VaultError
from .core.vault.api import Vault, default_vault_path

log = logging.getLogger(__name__)
_lock = threading.Lock()
_cached: tuple[str, Vault] | None = None
_SENSITIVE_KEYS = ("password", "token", "secret", "webhook")


class RedactedDict(dict):
    """A plain dict whose repr hides anything that looks secret, so a config logged by
    accident does not leak."""

    def __repr__(self) -> str:
        shown = {k: ("***" if any(s in k for s in _SENSITIVE_KEYS) and v else v) for k, v in self.items()}
        return f"{type(self).__name__}({shown!r})"

    __str__ = __repr__


def env_name(secret_name: str) -> str:
    """``brokers/ibkr/api_key`` → ``BROKERS_IBKR_API_KEY``: where a bot kept it before."""
    return re.sub(r"[^A-Za-z0-9]+", "_", secret_name).strip("_").upper()


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


def get_database_config(name: str | None = None) -> dict[str, Any]:
    """host, port, user, password, dbname for a ``database`` secret (default ``database/main``
    or ``$ITS_DATABASE_SECRET``); else ``DB_*`` or libpq's ``PG*`` variables."""
    name = name or os.environ.get("ITS_DATABASE_SECRET", "database/main")
    secret = _from_vault(name)
    if secret is not None:
        f = secret.fields
        config = {"host": f.get("host"), "port": f.get("port"), "user": f.get("user") or f.get("username"),
                  "password": secret.value, "dbname": f.get("dbname") or f.get("database")}
    else:
        env = os.environ
        config = {"host": env.get("DB_HOST", env.get("PGHOST")), "port": env.get("DB_PORT", env.get("PGPORT")),
                  "user": env.get("DB_USER", env.get("PGUSER")),
                  "password": env.get("DB_PASSWORD", env.get("PGPASSWORD")),
                  "dbname": env.get("DB_NAME", env.get("PGDATABASE"))}
    config["port"] = int(config["port"]) if config["port"] else None
    return RedactedDict(config)


# Each alert channel: vault secret, its value's key, its fields' keys, and the environment
# variables used before.
_ALERT_CHANNELS = {
    "alerts/telegram": ("telegram_bot_token", {"chat_id": "telegram_chat_id"},
                        {"telegram_bot_token": "TELEGRAM_BOT_TOKEN", "telegram_chat_id": "TELEGRAM_CHAT_ID"}),
    "alerts/slack": ("slack_webhook_url", {}, {"slack_webhook_url": "SLACK_WEBHOOK_URL"}),
    "alerts/email": ("smtp_password", {"host": "smtp_host", "port": "smtp_port", "user": "smtp_user",
                                       "from": "email_from", "to": "email_to"},
                     {"smtp_password": "SMTP_PASSWORD", "smtp_host": "SMTP_HOST", "smtp_port": "SMTP_PORT",
                      "smtp_user": "SMTP_USER", "email_from": "ALERT_EMAIL_FROM", "email_to": "ALERT_EMAIL_TO"}),
}


def get_alert_config() -> dict[str, Any]:
    """Telegram, Slack and e-mail alert settings from ``alerts/telegram`` (value: bot token,
    field chat_id), ``alerts/slack`` (value: webhook URL) and ``alerts/email`` (value: SMTP
    password; fields host, port, user, from, to); else the usual environment variables."""
    config: dict[str, Any] = {}
    for secret_name, (value_key, field_keys, env_keys) in _ALERT_CHANNELS.items():
        secret = _from_vault(secret_name)
        if secret is not None:
            config[value_key] = secret.value
            for field, key in field_keys.items():
                config[key] = secret.fields.get(field)
        else:
            for key, var in env_keys.items():
                config[key] = os.environ.get(var)
    return RedactedDict(config)


def forget_vault() -> None:
    """Lock and drop the cached vault (tests, or a bot that wants to re-read the password)."""
    global _cached
    with _lock:
        if _cached:
            _cached[1].lock()
        _cached = None
