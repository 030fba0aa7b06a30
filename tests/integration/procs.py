"""Real processes for the integration tests: the CLI, a Python-API writer child, and what a
killed writer leaves behind.

Run as ``python -m tests.integration.procs VAULT PREFIX`` (from the repository root, with
``ITS_MASTER_PASSWORD`` set), it is the writer child: it opens the vault, prints ``ready``, then
sets ``PREFIX/00000``, ``PREFIX/00001``, ... forever, printing each name once ``set()`` returned.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ITS_VAULT = [sys.executable, "-m", "its_desktop.cli.main"]
READY = "ready"


def value_for(name: str) -> str:
    """The one value a test ever writes under ``name``: lengths vary, with spaces, '=' and quotes."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    return f'{digest[: 4 + len(name) % 29]} = "{name}" \'{digest}\''


def run_cli(env: dict[str, str], *args: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ITS_VAULT, *args], input=stdin, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def spawn_cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*ITS_VAULT, *args], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def spawn_api_writer(vault_path: Path, prefix: str, password: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITS_")}
    env["ITS_MASTER_PASSWORD"] = password
    return subprocess.Popen([sys.executable, "-m", "tests.integration.procs", str(vault_path), prefix],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def complete_lines(out: str) -> list[str]:
    """The lines a killed process finished writing (a last line without a newline is dropped)."""
    return out.split("\n")[:-1]


@dataclass(frozen=True)
class Leftovers:
    """Traces of a writer killed mid-save, seen before anyone opens the vault again."""

    temp_files: int  # an atomic write (vault or audit head) was cut before its rename
    unanchored: int  # audit records appended but not yet in the audit head
    torn: bool  # the audit log ends in a half-written line


def leftovers(vault_path: Path) -> Leftovers:
    temps = len(list(vault_path.parent.glob(f".{vault_path.name}*.tmp")))
    log = vault_path.with_name(vault_path.name + ".audit")
    head = vault_path.with_name(vault_path.name + ".audit-head")
    data = log.read_bytes() if log.exists() else b""
    lines = data.split(b"\n")[:-1]
    last_seq = _seq(lines[-1]) if lines else 0
    head_seq = _seq(head.read_bytes()) if head.exists() else 0
    return Leftovers(temps, last_seq - head_seq, not data.endswith(b"\n") and data != b"")


def _seq(record: bytes) -> int:
    """A record's sequence number, or -1 for a damaged one (the vault's own checks say more)."""
    try:
        return int(json.loads(record)["seq"])
    except (ValueError, KeyError, TypeError):
        return -1


def _api_writer(vault_path: str, prefix: str) -> None:
    from its_desktop.core.vault.api import Vault

    with Vault.open(vault_path, os.environ["ITS_MASTER_PASSWORD"]) as vault:
        print(READY, flush=True)
        for i in itertools.count():
            name = f"{prefix}/{i:05d}"
            vault.set(name, value_for(name))
            print(name, flush=True)


if __name__ == "__main__":
    _api_writer(*sys.argv[1:])
