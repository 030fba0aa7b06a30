"""``its-vault rekey`` end to end (real subprocesses, the emulated YubiKey and FIDO2 key), its exit
codes, a running agent told to lock, and a kill campaign: a child that sets and re-keys in a loop
is SIGKILLed at random moments, and after each kill the vault opens with the password, every
acknowledged value is intact, the audit chain verifies and no staging file survives the open.

``ITS_CRASH_KILLS`` sets the number of kills (default 30, for ``make test``; ``make soak`` raises
it), ``ITS_CRASH_SEED`` the random seed; the figures are printed (run with ``-s``).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from its_desktop.core.audit import AuditFiles
from its_desktop.core.errors import VaultError
from its_desktop.core.vault.api import Vault
from its_desktop.core.vault.header import parse_file
from its_desktop.core.vault.storage import writer_lock
from tests.conftest import FAST_KDF, PASSWORD
from tests.integration.cli_runner import CliRunner, Result, call, expect_ok
from tests.integration.procs import READY, REPO_ROOT, complete_lines, leftovers, value_for

FAST_INIT = ("init", "--kdf-memory", "8", "--kdf-time", "1")
VALUE = "AKIA-rekey-uniq-9d41c7"
WRONG_PASSWORD = "not the master uniq-6a02ee"

KILLS = max(1, int(os.environ.get("ITS_CRASH_KILLS", "30")))
SEED = int(os.environ.get("ITS_CRASH_SEED", "20240611"))
KILLS_PER_VAULT = 100  # a fresh vault now and then keeps the re-sealed log, and each check, small
TIMEOUT = 120 + 2 * KILLS


class Cli(CliRunner):
    """`its-vault` with the emulated keys of `keys/a.json` plugged in; every run remembered."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.keys = tmp_path / "keys" / "a.json"
        super().__init__({**env, "ITS_EMULATED_KEYS": str(self.keys)}, tmp_path)
        self.codes: list[str] = []

    def keys_env(self, name: str) -> dict[str, str]:
        return {"ITS_EMULATED_KEYS": str(self.tmp_path / "keys" / f"{name}.json")}

    def init(self) -> str:
        code = self.ok(*FAST_INIT).stdout.strip()
        self.codes.append(code)
        self.ok("set", "k", "--value-stdin", input=VALUE)
        return code

    def rekey(self, *before: str, **options) -> tuple[Result, str]:
        result = self.ok(*before, "rekey", **options)
        code = result.stdout.strip()
        assert len(code) == 39 and result.stdout == code + "\n", "stdout is the new recovery code, once"
        self.codes.append(code)
        return result, code

    def slots(self):
        return parse_file(self.vault.read_bytes()).header.slots

    def assert_clean(self) -> None:
        """No value, password or recovery code in any stderr, nor in any stdout but those that
        print one on purpose (`get`, `init`, `rekey`), nor in any file beside the vault."""
        needles = {VALUE, PASSWORD, WRONG_PASSWORD, *self.codes}
        for result in self.results:
            prints = {"get", "init", "rekey"} & set(result.args)
            for needle in needles:
                assert needle not in result.stderr, f"a secret leaked into the stderr of {result.args}"
                assert prints or needle not in result.stdout, f"a secret leaked into the stdout of {result.args}"
        for path in (p for p in self.vault.parent.iterdir() if p.is_file()):
            data = path.read_bytes()
            for needle in needles:
                assert needle.encode() not in data, f"a secret is in plain text in {path.name}"
        assert not list((self.tmp_path / "state").rglob("*.log")), "an unexpected internal error was logged"


@pytest.fixture
def cli(cli_env, tmp_path) -> Cli:
    return Cli(cli_env, tmp_path)


def audit_json(cli: Cli) -> list[dict]:
    return [json.loads(line) for line in cli.ok("audit", "--json").stdout.splitlines()]


def test_rekey_rewraps_every_factor_and_replaces_the_recovery_code(cli):
    old_code = cli.init()
    for result in cli.run_all(call("factor", "add", "yubikey"), call("factor", "add", "fido2"),
                              call("factor", "add", "fido2", "--name", "in a drawer", env=cli.keys_env("b"))):
        expect_ok(result)
    before = {s.id: s for s in cli.slots()}
    (absent,) = [s.id for s in before.values() if s.name == "in a drawer"]
    records = audit_json(cli)

    rekeyed, code = cli.rekey()

    assert f"fido2 'in a drawer' ({absent}) was not plugged in" in rekeyed.stderr
    assert "the old code no longer works" in rekeyed.stderr
    assert rekeyed.stderr.endswith("vault re-keyed\n")
    after = {s.id: s for s in cli.slots()}
    kept = {i for i, s in before.items() if s.kind != "recovery"} - {absent}
    assert {i for i, s in after.items() if s.kind != "recovery"} == kept
    assert all(after[i].wrapped != before[i].wrapped for i in kept)
    assert [s.kind for s in after.values()].count("recovery") == 1
    for result in cli.run_all(call("get", "k"), call("--factor", "yubikey", "get", "k"),
                              call("--factor", "fido2", "get", "k"),
                              call("--factor", "recovery", "get", "k", env={"ITS_RECOVERY_CODE": code})):
        assert expect_ok(result).stdout == VALUE + "\n"
    cli.fails(3, "--factor", "recovery", "get", "k", env={"ITS_RECOVERY_CODE": old_code})
    assert "chain intact" in cli.ok("audit", "verify").stdout
    audit = audit_json(cli)
    assert [{k: r[k] for k in ("seq", "time", "op", "name", "actor")} for r in audit[:len(records)]] == \
        [{k: r[k] for k in ("seq", "time", "op", "name", "actor")} for r in records]
    (rekey,) = [r for r in audit if r["op"] == "rekey"]
    assert rekey["outcome"] == "ok" and rekey["actor"]["pid"] == rekeyed.pid
    assert rekey["detail"] == "3 key slots re-wrapped, 1 removed, recovery code replaced"
    cli.assert_clean()


def test_rekey_after_a_recovery_unlock_checks_the_password(cli):
    code = cli.init()
    recovery = {"ITS_RECOVERY_CODE": code}
    refused = cli.fails(3, "--factor", "recovery", "rekey", env={**recovery, "ITS_MASTER_PASSWORD": WRONG_PASSWORD})
    assert "not the vault's master password" in refused.stderr
    _, new_code = cli.rekey("--factor", "recovery", env=recovery)
    assert cli.ok("--factor", "recovery", "get", "k", env={"ITS_RECOVERY_CODE": new_code}).stdout == VALUE + "\n"
    cli.fails(3, "get", "k", env={"ITS_MASTER_PASSWORD": WRONG_PASSWORD})
    assert cli.ok("get", "k").stdout == VALUE + "\n"
    new = "a new master password uniq-0c55e1"
    cli.ok("passwd", env={"ITS_NEW_MASTER_PASSWORD": new})  # passwd still works after a re-key
    assert cli.ok("get", "k", env={"ITS_MASTER_PASSWORD": new}).stdout == VALUE + "\n"
    cli.assert_clean()


def test_rekey_exit_codes_for_a_tampered_log_and_a_busy_vault(cli):
    cli.init()
    log = AuditFiles.beside(cli.vault).log
    lines = log.read_bytes().splitlines(keepends=True)
    doc = json.loads(lines[0])
    doc["detail"] = "edited"
    lines[0] = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    log.write_bytes(b"".join(lines))
    before = cli.vault.read_bytes()
    tampered = cli.fails(5, "rekey")
    assert "audit log tampered at record 1" in tampered.stderr
    assert cli.vault.read_bytes() == before
    with writer_lock(cli.vault):
        busy = cli.fails(6, "rekey", env={"ITS_LOCK_TIMEOUT": "0.3"})
    assert "locked by another writer" in busy.stderr
    assert cli.vault.read_bytes() == before
    assert not AuditFiles.beside(cli.vault).has_staged()


def test_a_running_agent_with_the_old_key_is_locked(cli, tmp_path):
    from tests.integration.test_agent import Agent

    cli.init()
    agent = Agent(cli.env).start()
    try:
        result, _ = cli.rekey()
        assert f"the agent (pid {agent.proc.pid}) held the old key and was locked" in result.stderr
        code = agent.wait_exit()
    finally:
        agent.stop()
    agent.assert_no_traceback()
    # It locked and stopped cleanly; its "agent-stop" record, which its old key cannot chain,
    # waited in the pending file and was chained by the next append.
    assert code == 0, agent.stderr
    assert "chain intact" in cli.ok("audit", "verify").stdout
    ops = [(r["op"], r["actor"]["kind"]) for r in audit_json(cli)]
    after = ops[ops.index(("rekey", "cli")):]
    assert ("lock", "agent") in after and ("agent-stop", "agent") in after, "the agent's own records are not lost"


# -- killed mid-rekey --------------------------------------------------------------------------------

# The child: open, then set a secret and re-key, forever, printing each name once set() returned
# and "rekeyed" once rekey() did. Its audit folder renames wait a little (a slow disk), so that
# some kills land between the commit point and the log's rename.
CHILD = r'''
import itertools, os, sys, time
from its_desktop.core.audit import AuditLog
from its_desktop.core.vault.api import Vault
from tests.integration.procs import READY, value_for

commit = AuditLog.commit_staged
def slow_commit(self):
    time.sleep(0.01)
    commit(self)
AuditLog.commit_staged = slow_commit

path, prefix, password = sys.argv[1], sys.argv[2], os.environ["ITS_MASTER_PASSWORD"]
with Vault.open(path, password) as vault:
    print(READY, flush=True)
    for i in itertools.count():
        name = f"{prefix}/{i:05d}"
        vault.set(name, value_for(name))
        print(name, flush=True)
        vault.rekey(password)
        print("rekeyed", flush=True)
'''


@dataclass
class Figures:
    kills: int = 0
    verified: int = 0  # acknowledged writes found intact after the kill that followed them
    rekeys: int = 0  # acknowledged re-keys
    rolled_forward: int = 0  # kills after the commit point, finished by the next open
    discarded: int = 0  # kills while staging, cleaned up by the next open
    mid_save: int = 0  # kills that left a temporary file behind

    def report(self) -> None:
        print(f"\nrekey kill campaign: seed {SEED}, {self.kills} kills, {self.verified} acknowledged writes and "
              f"{self.rekeys} acknowledged re-keys verified; staging left behind: {self.rolled_forward} rolled "
              f"forward, {self.discarded} discarded; {self.mid_save} temp files")


def _spawn(path: Path, prefix: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITS_")}
    env["ITS_MASTER_PASSWORD"] = PASSWORD
    return subprocess.Popen([sys.executable, "-c", CHILD, str(path), prefix], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _check_after_kill(path: Path, label: str, acknowledged: list[str], rekeys: int, figures: Figures) -> None:
    files = AuditFiles.beside(path)
    staged = files.has_staged()
    figures.mid_save += leftovers(path).temp_files > 0
    where = f"after {label} (seed {SEED}, staging left: {staged})"
    try:
        with Vault.open(path, PASSWORD) as vault:
            assert not files.has_staged(), f"{where}: a staging file survived the open"
            vault.verify_audit()
            present = set(vault.names())
            lost = [n for n in acknowledged if n not in present]
            assert not lost, f"{where}: {len(lost)} acknowledged writes are gone, e.g. {lost[:3]}"
            wrong = sorted(n for n in present if vault.peek(n).value != value_for(n))
            assert not wrong, f"{where}: {len(wrong)} secrets hold a wrong value, e.g. {wrong[:3]}"
            outcomes = [r.event.outcome for r in vault.audit_records() if r.event.op == "rekey"]
            assert outcomes.count("ok") >= rekeys, f"{where}: acknowledged re-keys missing from the audit log"
            if staged:
                last = outcomes[-1] if outcomes else None
                figures.discarded += last == "interrupted"
                figures.rolled_forward += last == "ok"
    except VaultError as exc:
        pytest.fail(f"{where}: {type(exc).__name__}: {exc}")


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT)
def test_rekey_killed_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(SEED + 7)
    figures = Figures()
    for kill in range(KILLS):
        if kill % KILLS_PER_VAULT == 0:
            path = tmp_path / f"vault-{kill // KILLS_PER_VAULT}" / "vault.its"
            Vault.create(path, PASSWORD, kdf=FAST_KDF).lock()
            acknowledged: list[str] = []
            rekeys = 0  # on this vault
        with _spawn(path, f"round{kill:05d}") as proc:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first == READY + "\n", f"kill #{kill}: the child did not start: {proc.stderr.read()[-1000:]}"
            time.sleep(rng.uniform(0, 0.25))
            proc.kill()
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, \
            f"kill #{kill}: the child exited by itself with {proc.returncode}: {err[-1000:]}"
        lines = complete_lines(out)
        done = [line for line in lines if line != "rekeyed"]
        rekeys += len(lines) - len(done)
        acknowledged += done
        figures.kills += 1
        _check_after_kill(path, f"kill #{kill}", acknowledged, rekeys, figures)
        figures.verified += len(done)
        figures.rekeys += len(lines) - len(done)
    figures.report()
