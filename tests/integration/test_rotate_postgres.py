"""The PostgreSQL rotator against a real server (Debian's package, started by a fixture).

A rotation changes the role's password and the old one stops working; a failure at any step
(the server going away, the process dying) leaves a password in the vault that signs in, and
the next rotation finishes the job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from its_desktop.core.secrets import SecretType
from its_desktop.core.vault.api import Vault
from its_desktop.rotators.base import RotationFailed
from its_desktop.rotators.engine import rotate
from tests.conftest import FAST_KDF, PASSWORD
from tests.integration.postgres import Postgres, postgres  # noqa: F401  (fixture)

OLD = "first-db-password-uniq-1c2d"


def database_secret(vault: Vault, server: Postgres, password: str = OLD) -> str:
    role = server.create_role(password)
    vault.set("db/main", password, type=SecretType.DATABASE, rotator="postgresql",
              fields={"host": "127.0.0.1", "port": str(server.port), "user": role, "dbname": role})
    return role


def working_passwords(vault: Vault, server: Postgres, role: str) -> list[str]:
    """Which of the vault's values for db/main (current, pending) sign in right now."""
    secret = vault.peek("db/main")
    held = [secret.value] + ([secret.pending.value] if secret.pending else [])
    return [p for p in held if server.signs_in(role, p)]


@pytest.fixture
def private_postgres() -> Postgres:
    """A server of the test's own, which the test may stop and start."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="its-pg-"))
    server = Postgres(folder)
    server.init()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


def test_rotation_changes_the_password_and_the_old_one_stops_working(vault: Vault, postgres: Postgres):
    role = database_secret(vault, postgres)
    done = rotate(vault, "db/main")
    secret = vault.peek("db/main")
    assert done.rotator == "postgresql" and secret.value != OLD and secret.history[-1].value == OLD
    assert postgres.signs_in(role, secret.value)
    assert not postgres.signs_in(role, OLD)
    # The new password reached the server only as a SCRAM verifier, never in a logged statement.
    assert secret.value not in postgres.log_text() and "SCRAM-SHA-256$" in postgres.log_text()


def test_a_wrong_current_password_fails_at_create_and_changes_nothing(vault: Vault, postgres: Postgres):
    role = database_secret(vault, postgres)
    vault.set("db/main", "not-what-the-server-has-uniq-0")
    with pytest.raises(RotationFailed) as failure:
        rotate(vault, "db/main")
    assert failure.value.step == "create" and not failure.value.pending
    assert "password authentication failed" in str(failure.value)
    assert vault.peek("db/main").pending is None
    assert postgres.signs_in(role, OLD)


@pytest.mark.parametrize("step", ["set", "test"])
def test_the_server_going_away_at_each_step_leaves_a_working_password_and_a_rerun_finishes(
        vault: Vault, private_postgres: Postgres, step: str):
    role = database_secret(vault, private_postgres)

    def server_dies(name: str, at: str) -> None:
        if at == step:
            private_postgres.stop()

    with pytest.raises(RotationFailed) as failure:
        rotate(vault, "db/main", observer=server_dies)
    assert failure.value.step == step and failure.value.pending
    private_postgres.start()
    assert len(working_passwords(vault, private_postgres, role)) == 1  # exactly one of them works
    done = rotate(vault, "db/main")
    assert done.resumed
    current = vault.peek("db/main").value
    assert private_postgres.signs_in(role, current) and not private_postgres.signs_in(role, OLD)
    assert vault.peek("db/main").pending is None


@pytest.mark.parametrize("step", ["set", "test", "finish"])
def test_a_process_killed_at_each_step_leaves_a_working_password(vault: Vault, postgres: Postgres, step: str,
                                                                  tmp_path: Path):
    role = database_secret(vault, postgres)
    vault.lock()
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from its_desktop.core.vault.api import Vault
        from its_desktop.rotators.engine import rotate

        def die(name, at):
            if at == {step!r}:
                os.kill(os.getpid(), signal.SIGKILL)

        with Vault.open({str(vault.path)!r}, {PASSWORD!r}) as v:
            rotate(v, "db/main", observer=die)
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    with Vault.open(vault.path, PASSWORD) as reopened:
        assert reopened.verify_audit() > 0
        assert working_passwords(reopened, postgres, role), "no password in the vault signs in"
        rotate(reopened, "db/main")
        current = reopened.peek("db/main").value
    assert postgres.signs_in(role, current) and not postgres.signs_in(role, OLD)


def test_an_unreachable_server_is_a_one_line_failure_naming_no_password(vault: Vault, postgres: Postgres):
    from tests.integration.servers import free_port

    vault.set("db/gone", OLD, type=SecretType.DATABASE, rotator="postgresql",
              fields={"host": "127.0.0.1", "port": str(free_port()), "user": "nobody"})
    with pytest.raises(RotationFailed) as failure:
        rotate(vault, "db/gone")
    message = str(failure.value)
    assert failure.value.step == "create" and OLD not in message and "\n" not in message
