"""A real PostgreSQL server for the database rotator's tests: Debian's ``postgresql`` package,
initialised in a temporary folder and started on a free loopback port by a fixture.

PostgreSQL refuses to run as root, so when the tests run as root (CI) the server runs as the
package's ``postgres`` user. Connections from the test itself go over a private Unix socket
with ``trust``; TCP on 127.0.0.1 wants SCRAM passwords, as a production server would.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from .servers import free_port, wait_until_ready

def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError("PostgreSQL is not installed: `make test` installs Debian's postgresql package")


@dataclass
class Postgres:
    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def socket_dir(self) -> Path:
        return self.folder / "socket"

    def _as_server_user(self) -> dict:
        """Popen arguments that drop root to the ``postgres`` user (nothing when not root)."""
        if os.geteuid() != 0:
            return {}
        entry = pwd.getpwnam("postgres")
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def init(self) -> None:
        data = self.folder / "data"
        self.socket_dir.mkdir(parents=True)
        drop = self._as_server_user()
        if drop:
            for path in (self.folder, self.socket_dir):
                os.chown(path, drop["user"], drop["group"])
        subprocess.run([str(_bindir() / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                        "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True, cwd=self.folder, **drop)

    def start(self) -> Postgres:
        log = open(self.folder / "server.log", "ab")
        self.process = subprocess.Popen(
            [str(_bindir() / "postgres"), "-D", str(self.folder / "data"), "-p", str(self.port),
             "-k", str(self.socket_dir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "log_statement=all"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.folder, **self._as_server_user())
        log.close()
        wait_until_ready("postgres", self.process, self._ready, lambda: self.log_text()[-1500:], self.stop)
        return self

    def _ready(self) -> bool:
        import psycopg

        try:
            with self.admin():
                return True
        except psycopg.OperationalError:
            return False

    def admin(self):
        """A superuser connection over the private socket."""
        import psycopg

        return psycopg.connect(host=str(self.socket_dir), port=self.port, user="postgres", dbname="postgres",
                               autocommit=True, connect_timeout=3)

    def create_role(self, password: str) -> str:
        from psycopg import sql

        role = "trader_" + uuid.uuid4().hex[:8]
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(role), sql.Identifier(role)))
        return role

    def signs_in(self, role: str, password: str) -> bool:
        """Whether ``role`` can sign in over TCP with ``password`` (what a bot does)."""
        import psycopg

        try:
            with psycopg.connect(host="127.0.0.1", port=self.port, user=role, dbname=role, password=password,
                                 connect_timeout=3):
                return True
        except psycopg.OperationalError:
            return False

    def log_text(self) -> str:
        try:
            return (self.folder / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # fast shutdown
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One server for the session (initdb costs seconds); each test makes its own role."""
    folder = Path(tempfile.mkdtemp(prefix="its-pg-"))
    server = Postgres(folder)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
