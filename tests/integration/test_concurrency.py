"""Several real processes writing one vault at once: nothing is lost, every value is exact, the
audit chain verifies with one create event per write, and a busy lock is reported, not waited
out forever."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from its_desktop.core.vault.api import Vault
from its_desktop.core.vault.storage import writer_lock
from tests.conftest import FAST_KDF, PASSWORD
from tests.integration.procs import run_cli, value_for

WRITERS = 4
WRITES_EACH = 15

Run = tuple[str, float, float, subprocess.CompletedProcess[str]]  # name, start, end, outcome


def _init(env: dict[str, str]) -> Path:
    done = run_cli(env, "init", "--kdf-memory", "8", "--kdf-time", "1")
    assert done.returncode == 0, f"init failed ({done.returncode}): {done.stderr}"
    return Path(env["ITS_VAULT_PATH"])


def _cli_writes(env: dict[str, str], names: list[str]) -> list[Run]:
    """Run ``its-vault set NAME --value-stdin`` for each name, one after the other."""
    runs = []
    for name in names:
        start = time.monotonic()
        done = run_cli(env, "set", name, "--value-stdin", stdin=value_for(name))
        runs.append((name, start, time.monotonic(), done))
    return runs


def _parallel_cli_writes(env: dict[str, str], batches: list[list[str]]) -> list[Run]:
    """One thread per batch, each running its CLI writes in turn; every write must succeed."""
    with ThreadPoolExecutor(len(batches)) as pool:
        runs = [run for batch in pool.map(lambda names: _cli_writes(env, names), batches) for run in batch]
    failed = [f"{name}: exit {done.returncode}: {done.stderr.strip()}" for name, _, _, done in runs if done.returncode]
    assert not failed, f"{len(failed)} of {len(runs)} writes failed:\n" + "\n".join(failed)
    return runs


def _max_overlap(runs: list[Run]) -> int:
    """The most CLI processes that were running at one moment."""
    edges = sorted([(start, 1) for _, start, _, _ in runs] + [(end, -1) for _, _, end, _ in runs])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def _assert_holds_exactly(vault: Vault, expected: list[str]) -> None:
    names = vault.names()
    lost = sorted(set(expected) - set(names))
    extra = sorted(set(names) - set(expected))
    assert not lost and not extra, f"lost writes: {lost[:5]} ({len(lost)}); unexpected secrets: {extra[:5]}"
    wrong = [n for n in expected if vault.peek(n).value != value_for(n)]
    assert not wrong, f"{len(wrong)} secrets hold a value that was not written, e.g. {wrong[:5]}"


def _assert_one_create_each(vault: Vault, expected: list[str]) -> None:
    created = Counter(str(r.event.name) for r in vault.audit_records() if r.event.op == "create")
    twice = {n: c for n, c in created.items() if c > 1}
    missing = sorted(set(expected) - set(created))
    unexpected = sorted(set(created) - set(expected))
    assert created == Counter(expected), \
        f"create events: missing {missing[:5]} ({len(missing)}), repeated {twice}, unexpected {unexpected[:5]}"


def test_cli_processes_writing_different_secrets_lose_nothing(cli_env: dict[str, str]) -> None:
    path = _init(cli_env)
    batches = [[f"writer{w}/secret-{i:02d}" for i in range(WRITES_EACH)] for w in range(WRITERS)]
    expected = [name for batch in batches for name in batch]

    runs = _parallel_cli_writes(cli_env, batches)

    assert _max_overlap(runs) >= 2, "the writers never ran at the same time: the test proved nothing"
    with Vault.open(path, PASSWORD) as vault:
        _assert_holds_exactly(vault, expected)
        _assert_one_create_each(vault, expected)
        assert vault.generation == 1 + len(expected), \
            f"generation {vault.generation} after {len(expected)} saves on a new vault: a save was overwritten"
    verify = run_cli(cli_env, "audit", "verify")
    assert verify.returncode == 0, f"audit verify failed ({verify.returncode}): {verify.stderr.strip()}"


def test_in_process_vault_and_cli_processes_write_at_once(cli_env: dict[str, str]) -> None:
    path = Path(cli_env["ITS_VAULT_PATH"])
    cli_batches = [[f"cli{w}/secret-{i:02d}" for i in range(10)] for w in range(2)]
    api_names = [f"api/secret-{i:02d}" for i in range(20)]
    expected = [*api_names, *(name for batch in cli_batches for name in batch)]

    with Vault.create(path, PASSWORD, kdf=FAST_KDF) as vault:
        with ThreadPoolExecutor(1) as background:
            cli_writes = background.submit(_parallel_cli_writes, cli_env, cli_batches)
            api_start = time.monotonic()
            for name in api_names:  # each save starts from a view the CLI has already made stale
                vault.set(name, value_for(name))
                time.sleep(0.05)
            api_end = time.monotonic()
            runs = cli_writes.result()
        overlapping = sum(1 for _, start, end, _ in runs if start < api_end and end > api_start)
        assert overlapping >= 4, f"only {overlapping} CLI writes ran during the API writes: the test proved little"
        _assert_holds_exactly(vault, expected)
        assert vault.generation == 1 + len(expected), \
            f"generation {vault.generation} after {len(expected)} saves on a new vault: a save was overwritten"

    with Vault.open(path, PASSWORD) as again:
        _assert_holds_exactly(again, expected)
        _assert_one_create_each(again, expected)
        again.verify_audit()


def test_stale_in_process_view_never_overwrites_a_newer_generation(cli_env: dict[str, str]) -> None:
    path = Path(cli_env["ITS_VAULT_PATH"])
    with Vault.create(path, PASSWORD, kdf=FAST_KDF) as vault:
        vault.set("shared/key", "from the api, v1")
        for name, value in (("shared/key", "from the cli, v2"), ("cli/new", value_for("cli/new"))):
            done = run_cli(cli_env, "set", name, "--value-stdin", stdin=value)
            assert done.returncode == 0, f"set {name} failed ({done.returncode}): {done.stderr.strip()}"

        vault.set("api/new", value_for("api/new"))  # this view predates both CLI saves
        vault.set("shared/key", "from the api, v3")

        assert vault.peek("cli/new").value == value_for("cli/new"), "the API save dropped a secret the CLI wrote"
        versions = [(v.version, v.value) for v in vault.history("shared/key")]
        assert versions == [(1, "from the api, v1"), (2, "from the cli, v2"), (3, "from the api, v3")], \
            f"the CLI's version was lost or reordered: {versions}"
    got = run_cli(cli_env, "get", "api/new")
    assert (got.returncode, got.stdout) == (0, value_for("api/new") + "\n"), f"get api/new: {got}"


def test_a_held_lock_makes_the_cli_give_up_with_exit_6(cli_env: dict[str, str]) -> None:
    path = _init(cli_env)
    before = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    env = {**cli_env, "ITS_LOCK_TIMEOUT": "0.5"}

    with writer_lock(path):
        start = time.monotonic()
        busy = run_cli(env, "set", "blocked/secret", "--value-stdin", stdin="never stored", timeout=30)
        waited = time.monotonic() - start

    assert busy.returncode == 6, f"expected exit 6 (locked), got {busy.returncode}: {busy.stderr!r}"
    lines = busy.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("its-vault: error:"), f"not one error line: {busy.stderr!r}"
    assert 0.5 <= waited < 10, f"the CLI gave up after {waited:.2f} s, not after the 0.5 s asked for"
    after = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    changed = sorted(n for n in {*before, *after} if after.get(n) != before.get(n))
    assert not changed, f"files changed while the lock was held: {changed}"

    done = run_cli(env, "set", "blocked/secret", "--value-stdin", stdin="stored now")
    assert done.returncode == 0, f"set failed once the lock was free ({done.returncode}): {done.stderr.strip()}"
    got = run_cli(env, "get", "blocked/secret")
    assert got.stdout == "stored now\n", f"get after the lock was freed: {got}"
