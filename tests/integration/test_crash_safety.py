"""Writers SIGKILLed at random moments, then the vault checked: it opens with the password, every
write the writer had acknowledged is there with its exact value, and the audit chain verifies (an
interrupted append is not tampering).

``ITS_CRASH_KILLS`` sets the number of kills per test (default 40, for ``make test``; the soak
raises it), ``ITS_CRASH_SEED`` the random seed, printed with the figures (run with ``-s``).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from its_desktop.core.errors import VaultError
from its_desktop.core.vault.api import Vault
from tests.conftest import FAST_KDF, PASSWORD
from tests.integration.procs import READY, complete_lines, leftovers, run_cli, spawn_api_writer, spawn_cli, value_for

KILLS = max(1, int(os.environ.get("ITS_CRASH_KILLS", "40")))
SEED = int(os.environ.get("ITS_CRASH_SEED", "20240611"))
KILLS_PER_VAULT = 100  # a fresh vault now and then keeps each check's cost bounded in a long soak
TIMEOUT = 300 + 2 * KILLS


@dataclass
class Figures:
    what: str
    kills: int = 0
    verified: int = 0  # acknowledged writes found intact after the kill that followed them
    finished_first: int = 0  # runs that exited 0 before their kill came
    landed_unacknowledged: int = 0  # killed after the save, before it was acknowledged
    mid_save: int = 0  # kills that left a temporary file behind
    unanchored: int = 0  # kills that left audit records beyond the audit head
    torn: int = 0  # kills that left a half-written audit line

    def report(self) -> None:
        finished = f"{self.finished_first} runs finished before their kill, " if self.finished_first else ""
        print(f"\n{self.what}: seed {SEED}, {self.kills} kills, {self.verified} acknowledged writes verified, "
              f"{finished}{self.landed_unacknowledged} writes "
              f"landed unacknowledged (each with its audit record), leftovers: "
              f"{self.mid_save} temp files, {self.unanchored} unanchored audit appends, {self.torn} torn lines")


def _check_after_kill(path: Path, label: str, acknowledged: list[str], prefix: str, figures: Figures) -> int:
    """Open the vault as the next user would and check it; returns its generation. Secrets
    under ``prefix`` that were saved but not acknowledged are counted, not required."""
    left = leftovers(path)
    figures.mid_save += left.temp_files > 0
    figures.unanchored += left.unanchored > 0
    figures.torn += left.torn
    where = f"after {label} (seed {SEED}, leftovers {left})"
    try:
        with Vault.open(path, PASSWORD) as vault:
            vault.verify_audit()
            present = set(vault.names())
            lost = [n for n in acknowledged if n not in present]
            assert not lost, f"{where}: {len(lost)} acknowledged writes are gone, e.g. {lost[:3]}"
            wrong = sorted(n for n in present if vault.peek(n).value != value_for(n))
            assert not wrong, f"{where}: {len(wrong)} secrets hold a wrong value, e.g. {wrong[:3]}"
            created = {r.event.name for r in vault.audit_records() if r.event.op == "create"}
            unaudited = sorted(n for n in present if n.startswith(prefix) and n not in created)
            assert not unaudited, f"{where}: saved writes without a create event (audit is write-ahead): {unaudited[:3]}"
            extra = {n for n in present if n.startswith(prefix) and n not in acknowledged}
            figures.landed_unacknowledged += len(extra)
            return vault.generation
    except VaultError as exc:
        pytest.fail(f"{where}: {type(exc).__name__}: {exc}")


def _new_vault(root: Path, index: int) -> Path:
    path = root / f"vault-{index // KILLS_PER_VAULT}" / "vault.its"
    Vault.create(path, PASSWORD, kdf=FAST_KDF).lock()
    return path


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT)
def test_api_writer_killed_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    figures = Figures("API writer")
    startup = 0.1  # seconds from spawn to "ready"; measured as we go
    for kill in range(KILLS):
        if kill % KILLS_PER_VAULT == 0:
            path, acknowledged, generation = _new_vault(tmp_path, kill), [], 1
        prefix = f"round{kill:05d}/"
        with spawn_api_writer(path, prefix.rstrip("/"), PASSWORD) as proc:
            assert proc.stdout is not None
            spawned = time.monotonic()
            first = ""
            if rng.random() < 0.25:  # during start-up: imports, key derivation, the unlock's audit append
                time.sleep(rng.uniform(0, 1.2 * startup))
            else:  # during the stream of saves
                first = proc.stdout.readline()
                startup = time.monotonic() - spawned
                time.sleep(rng.uniform(0, 0.05))
            proc.kill()
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, \
            f"kill #{kill}: the writer exited by itself with {proc.returncode}: {err.strip()[-1000:]}"
        reported = [line for line in complete_lines(first + out) if line != READY]
        acknowledged += reported
        figures.kills += 1
        newer = _check_after_kill(path, f"kill #{kill}", acknowledged, prefix, figures)
        assert newer >= generation + len(reported), \
            f"kill #{kill}: generation went from {generation} to {newer} across {len(reported)} acknowledged saves"
        generation = newer
        figures.verified += len(reported)

    with Vault.open(path, PASSWORD) as vault:  # the next save sweeps what killed saves left behind
        vault.set("after/the-campaign", value_for("after/the-campaign"))
    stale = sorted(p.name for p in path.parent.glob("*.tmp"))
    assert not stale, f"temporary files survived the next save: {stale}"
    figures.report()


def _set_duration(env: dict[str, str]) -> float:
    """How long an uninterrupted `its-vault set` takes here (the median of three runs)."""
    times = []
    for run in range(3):
        name = f"calibration/run-{run}"
        started = time.monotonic()
        done = run_cli(env, "set", name, "--value-stdin", stdin=value_for(name))
        assert done.returncode == 0, f"an uninterrupted set failed ({done.returncode}): {done.stderr.strip()}"
        times.append(time.monotonic() - started)
    return sorted(times)[1]


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT)
def test_cli_set_killed_at_random_moments(cli_env: dict[str, str], tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    figures = Figures("its-vault set")
    path = _new_vault(tmp_path, 0)
    env = {**cli_env, "ITS_VAULT_PATH": str(path)}
    duration = _set_duration(env)  # then adjusted as runs finish or get killed
    acknowledged: list[str] = []
    attempt = 0
    while figures.kills < KILLS:
        assert attempt < 4 * KILLS + 20, f"only {figures.kills} kills in {attempt} runs: every run beat its kill"
        if attempt and attempt % KILLS_PER_VAULT == 0:
            path, acknowledged = _new_vault(tmp_path, attempt), []
            env["ITS_VAULT_PATH"] = str(path)
        prefix = f"cli/{attempt:05d}/"
        name = prefix + "secret"
        attempt += 1
        # Most kills aim at the end of the run, where the save happens; the rest anywhere.
        delay = duration * (rng.uniform(0.85, 1.1) if rng.random() < 0.6 else rng.uniform(0.1, 1.0))
        with spawn_cli(env, "set", name, "--value-stdin") as proc:
            try:
                _, err = proc.communicate(value_for(name), timeout=delay)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate(timeout=30)
        if proc.returncode == 0:
            acknowledged.append(name)
            figures.finished_first += 1
            label = f"set {name} exited 0"
            duration *= 0.97  # the machine got faster: aim earlier
        else:
            assert proc.returncode == -signal.SIGKILL, f"{name}: exit {proc.returncode}: {err.strip()}"
            figures.kills += 1
            label = f"kill #{figures.kills} (set {name})"
            duration *= 1.01  # balances at about one run in four finishing before its kill
        _check_after_kill(path, label, acknowledged, prefix, figures)
        figures.verified += proc.returncode == 0
    figures.report()
