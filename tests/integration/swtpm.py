"""A real software TPM 2.0 for the TPM slot's tests: Debian's ``swtpm``, started on loopback by a
fixture with its state in a temporary folder, reached through tpm2-tss's ``swtpm`` TCTI.

The TCTI talks TPM commands on ``port`` and power/reset on ``port + 1``, so the fixture looks
for two free ports side by side. ``restart()`` is a reboot (PCRs back to their initial values,
sealed objects still loadable); a second ``Swtpm`` with its own state folder is another machine.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from .servers import free_port, wait_until_ready


def _port_pair() -> int:
    """A free port whose successor is free too."""
    for _ in range(50):
        port = free_port()
        if port < 65535 and _free(port + 1):
            return port
    raise RuntimeError("no two free loopback ports side by side")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Swtpm:
    folder: Path
    port: int = field(default_factory=_port_pair)
    process: subprocess.Popen | None = None
    log_io: bool = False  # swtpm writes every byte it reads and writes to io.log, in hex

    def io_hex(self) -> str:
        """What crossed the "bus" so far: the hex dump of io.log without spaces or line breaks."""
        text = (self.folder / "io.log").read_text(errors="replace")
        return "".join(ch for ch in text.upper() if ch in "0123456789ABCDEF")

    @property
    def tcti(self) -> str:
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def start(self) -> Swtpm:
        binary = shutil.which("swtpm")
        if binary is None:
            raise RuntimeError("swtpm is not installed: `make test` installs Debian's swtpm package")
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "swtpm.log", "ab")
        self.process = subprocess.Popen(
            [binary, "socket", "--tpm2", "--tpmstate", f"dir={self.folder}",
             "--server", f"type=tcp,port={self.port},bindaddr=127.0.0.1",
             "--ctrl", f"type=tcp,port={self.port + 1},bindaddr=127.0.0.1",
             "--flags", "not-need-init,startup-clear",
             *(["--log", f"file={self.folder / 'io.log'},level=20"] if self.log_io else [])],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        wait_until_ready("swtpm", self.process, lambda: _answers(self.port) and _answers(self.port + 1),
                         self.log_tail, self.stop)
        return self

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self) -> str:
        try:
            return (self.folder / "swtpm.log").read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _running(folder: Path) -> Iterator[Swtpm]:
    tpm = Swtpm(folder).start()
    try:
        yield tpm
    finally:
        tpm.stop()


@pytest.fixture
def swtpm(tmp_path: Path) -> Iterator[Swtpm]:
    """This test's own TPM (a fresh owner seed, PCRs at their reset values)."""
    yield from _running(tmp_path / "swtpm")


@pytest.fixture
def other_swtpm(tmp_path: Path) -> Iterator[Swtpm]:
    """A second machine's TPM."""
    yield from _running(tmp_path / "swtpm-other")
