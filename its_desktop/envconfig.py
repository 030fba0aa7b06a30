"""Where bots kept their settings before the vault, and the shape of the configurations the
helpers hand back. Shared by ``its_desktop.integration`` (opens the vault itself) and
``its_desktop.client`` (reads through the agent); imports nothing but ``os``, because a bot's
start-up pays for every import."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

DATABASE_FIELDS = ("host", "port", "user", "username", "dbname", "database")
_SENSITIVE_KEYS = ("password", "token", "secret", "webhook")

# Each alert channel: vault secret -> (its value's key, {field: key}, {key: environment variable}).
ALERT_CHANNELS = {
    "alerts/telegram": ("telegram_bot_token", {"chat_id": "telegram_chat_id"},
                        {"telegram_bot_token": "TELEGRAM_BOT_TOKEN", "telegram_chat_id": "TELEGRAM_CHAT_ID"}),
    "alerts/slack": ("slack_webhook_url", {}, {"slack_webhook_url": "SLACK_WEBHOOK_URL"}),
    "alerts/email": ("smtp_password", {"host": "smtp_host", "port": "smtp_port", "user": "smtp_user",
                                       "from": "email_from", "to": "email_to"},
                     {"smtp_password": "SMTP_PASSWORD", "smtp_host": "SMTP_HOST", "smtp_port": "SMTP_PORT",
                      "smtp_user": "SMTP_USER", "email_from": "ALERT_EMAIL_FROM", "email_to": "ALERT_EMAIL_TO"}),
}

# A secret reader takes a name and returns (value, fields), or None when the secret is not to
# be had. (No typing import: it would cost a bot's start-up.)


class RedactedDict(dict):
    """A plain dict whose repr hides anything that looks secret, so a config logged by
    accident does not leak."""

    def __repr__(self) -> str:
        shown = {k: ("***" if any(s in k for s in _SENSITIVE_KEYS) and v else v) for k, v in self.items()}
        return f"{type(self).__name__}({shown!r})"

    __str__ = __repr__


def env_name(secret_name: str) -> str:
    """``brokers/ibkr/api_key`` → ``BROKERS_IBKR_API_KEY``: where a bot kept it before."""
    out, gap = [], False
    for char in secret_name:
        if char.isascii() and char.isalnum():
            if gap and out:
                out.append("_")
            out.append(char.upper())
            gap = False
        else:
            gap = True
    return "".join(out)


def database_config(secret: tuple[str, Mapping[str, str]] | None, from_env: bool) -> RedactedDict:
    """host, port, user, password, dbname from a ``database`` secret (value = password), else
    (with ``from_env``) from ``DB_*`` or libpq's ``PG*`` variables, else all None."""
    if secret is not None:
        value, f = secret
        config = {"host": f.get("host"), "port": f.get("port"), "user": f.get("user") or f.get("username"),
                  "password": value, "dbname": f.get("dbname") or f.get("database")}
    else:
        env = os.environ if from_env else {}
        config = {"host": env.get("DB_HOST", env.get("PGHOST")), "port": env.get("DB_PORT", env.get("PGPORT")),
                  "user": env.get("DB_USER", env.get("PGUSER")),
                  "password": env.get("DB_PASSWORD", env.get("PGPASSWORD")),
                  "dbname": env.get("DB_NAME", env.get("PGDATABASE"))}
    config["port"] = int(config["port"]) if config["port"] else None
    return RedactedDict(config)


def alert_config(read: Callable[[str], tuple[str, Mapping[str, str]] | None], from_env: bool) -> RedactedDict:
    """Telegram, Slack and e-mail alert settings from ``alerts/telegram`` (value: bot token,
    field chat_id), ``alerts/slack`` (value: webhook URL) and ``alerts/email`` (value: SMTP
    password; fields host, port, user, from, to); a channel not to be had is read from the
    usual environment variables with ``from_env``, else left None."""
    config: dict = {}
    for secret_name, (value_key, field_keys, env_keys) in ALERT_CHANNELS.items():
        secret = read(secret_name)
        if secret is not None:
            value, fields = secret
            config[value_key] = value
            for field, key in field_keys.items():
                config[key] = fields.get(field)
        else:
            for key, var in env_keys.items():
                config[key] = os.environ.get(var) if from_env else None
    return RedactedDict(config)
