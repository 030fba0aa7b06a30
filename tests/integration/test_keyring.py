"""The keyring backend, from a separate interpreter that knows nothing of ITS Desktop but
``keyring``: registered through keyring's entry points, it reads through the agent while the
vault is unlocked and fails clearly when it is not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_agent import Agent, agent_env, cli, make_vault, ok, write_bot

API_KEY = "AKIA-keyring-uniq-8d2e4f"
ACCOUNT = "U5550001-keyring-uniq"

# A program that uses keyring only; one line per lookup.
USER = r'''
import sys
import keyring
from keyring.errors import KeyringError

print("backend:", type(keyring.get_keyring()).__name__)
for spec in sys.argv[1:]:
    service, _, user = spec.partition(":")
    try:
        print("OK", keyring.get_password(service, user))
    except KeyringError as error:
        print("ERR", type(error).__name__, error)
try:
    keyring.set_password("its", "brokers/ibkr/api_key", "overwrite")
except KeyringError as error:
    print("SET", type(error).__name__, error)
'''


@pytest.fixture
def env(cli_env, tmp_path) -> dict[str, str]:
    env = agent_env(cli_env, tmp_path)
    # No keyring configuration of the machine's user: the default choice is tested.
    env.update({"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")})
    env.pop("PYTHON_KEYRING_BACKEND", None)
    make_vault(env, {"brokers/ibkr/api_key": (API_KEY, {"account": ACCOUNT})})
    return env


def lookups(script: Path, env: dict[str, str], *specs: str) -> list[str]:
    result = subprocess.run([sys.executable, script.name, *specs], cwd=script.parent, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return result.stdout.splitlines()


def test_keyring_reads_through_the_agent_and_fails_clearly_when_locked(env, tmp_path):
    user = write_bot(tmp_path / "app", "uses_keyring.py", USER)
    agent = Agent(env).start()
    try:
        denied = lookups(user, env, "its:brokers/ibkr/api_key")
        assert denied[1].startswith("ERR KeyringError access denied: no grant lets python uses_keyring.py")
        ok(cli(env, "grant", "add", "--exe", sys.executable, "--script", str(user), "--secret", "brokers/*"))
        assert lookups(user, env, "its:brokers/ibkr/api_key", "its:brokers/ibkr/api_key#account",
                       "its-desktop:brokers/ibkr/api_key", "its:brokers/ibkr/none", "github:someone") == [
            "backend: ItsKeyring", f"OK {API_KEY}", f"OK {ACCOUNT}", f"OK {API_KEY}", "OK None", "OK None",
            "SET PasswordSetError ITS Desktop secrets are read-only through keyring: set them in the app or with "
            "'its-vault set'"]
        ok(cli(env, "lock"))
        assert agent.wait_exit() == 0
    finally:
        agent.stop()
    agent.assert_no_traceback()
    locked = lookups(user, env, "its:brokers/ibkr/api_key", "github:someone")
    assert locked[1] == ("ERR KeyringLocked the ITS vault is locked or not running (no agent is running: unlock "
                         "ITS Desktop, or start 'its-vault agent')")
    assert locked[2] == "OK None"  # other services are not ours to fail
