from its_desktop.core.errors import WrongCredentials
from its_desktop.core.vault.api import Vault

from tests.conftest import PASSWORD


def test_create_set_reopen_get(vault, vault_path):
    vault.set("brokers/ibkr/api_key", "s3cr3t", type="api_key")
    vault.lock()
    with Vault.open(vault_path, PASSWORD) as again:
        assert again.get("brokers/ibkr/api_key").value == "s3cr3t"


def test_wrong_password_is_refused(vault, vault_path):
    vault.lock()
    try:
        Vault.open(vault_path, "not the password")
    except WrongCredentials:
        return
    raise AssertionError("a wrong password opened the vault")
