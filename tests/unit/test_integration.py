"""get_its_secret / get_database_config / get_alert_config: the vault first, then the
environment variables bots used before."""

from __future__ import annotations

import pytest

from its_desktop import integration
from tests.conftest import PASSWORD


@pytest.fixture(autouse=True)
def clean(monkeypatch, vault_path):
    for var in ("ITS_MASTER_PASSWORD", "BROKERS_IBKR_API_KEY", "DB_HOST", "DB_PASSWORD", "PGPORT",
                "TELEGRAM_BOT_TOKEN", "SLACK_WEBHOOK_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ITS_VAULT_PATH", str(vault_path))
    integration.forget_vault()
    yield
    integration.forget_vault()


def test_reads_from_the_vault_when_it_opens(vault, monkeypatch):
    vault.set("brokers/ibkr/api_key", "FROM-VAULT")
    monkeypatch.setenv("ITS_MASTER_PASSWORD", PASSWORD)
    monkeypatch.setenv("BROKERS_IBKR_API_KEY", "FROM-ENV")
    assert integration.get_its_secret("brokers/ibkr/api_key") == "FROM-VAULT"
    assert any(r.event.op == "read" and r.event.name == "brokers/ibkr/api_key" for r in vault.audit_records())


def test_falls_back_to_the_environment_when_locked(vault, monkeypatch):
    vault.set("brokers/ibkr/api_key", "FROM-VAULT")
    monkeypatch.setenv("BROKERS_IBKR_API_KEY", "FROM-ENV")
    assert integration.get_its_secret("brokers/ibkr/api_key") == "FROM-ENV"
    monkeypatch.setenv("ITS_MASTER_PASSWORD", "wrong password")
    assert integration.get_its_secret("brokers/ibkr/api_key") == "FROM-ENV"


def test_missing_everywhere_gives_the_default(vault, monkeypatch):
    monkeypatch.setenv("ITS_MASTER_PASSWORD", PASSWORD)
    assert integration.get_its_secret("not/there", default="dflt") == "dflt"
    assert integration.get_its_secret("not/there") is None


def test_database_config_from_vault_and_env(vault, monkeypatch):
    monkeypatch.setenv("DB_HOST", "env-host")
    monkeypatch.setenv("DB_PASSWORD", "env-pass")
    monkeypatch.setenv("PGPORT", "6543")
    env_config = integration.get_database_config()
    assert env_config["host"] == "env-host" and env_config["password"] == "env-pass" and env_config["port"] == 6543
    assert "env-pass" not in repr(env_config)

    vault.set("database/main", "db-pass", type="database",
              fields={"host": "10.0.0.5", "port": "5432", "user": "bot", "dbname": "ticks"})
    monkeypatch.setenv("ITS_MASTER_PASSWORD", PASSWORD)
    assert integration.get_database_config() == {"host": "10.0.0.5", "port": 5432, "user": "bot",
                                                 "password": "db-pass", "dbname": "ticks"}


def test_alert_config(vault, monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.example/env")
    vault.set("alerts/telegram", "123:ABC", fields={"chat_id": "42"})
    monkeypatch.setenv("ITS_MASTER_PASSWORD", PASSWORD)
    config = integration.get_alert_config()
    assert config["telegram_bot_token"] == "123:ABC" and config["telegram_chat_id"] == "42"
    assert config["slack_webhook_url"] == "https://hooks.example/env"
    assert config["smtp_password"] is None
    assert "123:ABC" not in repr(config)


def test_public_api_is_importable_from_the_package():
    import its_desktop

    assert its_desktop.get_its_secret is integration.get_its_secret
    assert its_desktop.Vault.__name__ == "Vault"
