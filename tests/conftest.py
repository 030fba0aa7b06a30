"""Shared fixtures: fast KDF parameters and throw-away vaults."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from its_desktop.core.crypto import Argon2Params

FAST_KDF = Argon2Params(memory_kib=8 * 1024, time_cost=1, parallelism=1)
PASSWORD = "correct horse battery staple"


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    return tmp_path / "vault.its"


@pytest.fixture
def vault(vault_path: Path):
    from its_desktop.core.vault.api import Vault

    v = Vault.create(vault_path, PASSWORD, kdf=FAST_KDF)
    yield v
    v.lock()


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for `its-vault` subprocesses: a private vault, the test password, a private
    log folder, and no lock wait longer than needed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITS_")}
    env.update({
        "ITS_VAULT_PATH": str(tmp_path / "cli" / "vault.its"),
        "ITS_MASTER_PASSWORD": PASSWORD,
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "ITS_LOCK_TIMEOUT": "20",
        "ITS_AGENT_DIR": str(tmp_path / "agent"),  # no agent unless a test starts one here
    })
    return env


ITS_VAULT = [sys.executable, "-m", "its_desktop.cli.main"]
