"""Crash consistency: the command line's writers SIGKILLed at random moments.

One campaign of ``ITS_CRASH_KILLS`` kills (200 in ``make test``, 5,000 in ``make soak``; the
seed is ``ITS_CRASH_SEED``), spread round-robin over four writers, each on vaults of its own:

- ``set``: new secrets from stdin;
- ``rotate``: ``its-vault rotate NAME`` on a secret with the generated rotator, then ``get``;
- ``rekey``: a ``set`` then a ``rekey``, again and again;
- ``sync-pull``: a new version written on a real ``bao server -dev``, then ``its-vault sync``.

Each round forks one writer child that calls the CLI's ``main()`` in a loop (so a round costs a
fork, not an interpreter start) and appends an acknowledgement line to a file after each command
returned 0: the secret's name and the SHA-256 of the value it wrote, never the value. The test
SIGKILLs the child after a seeded random delay, then opens the vault as the next user would and
checks: it opens with the password, the audit chain verifies, and every acknowledged write is
there (the value of each ``set`` and pull, the rotated version with the value read back after the
rotation, every acknowledged re-key in the audit log).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from its_desktop.core.errors import VaultError
from its_desktop.core.vault.api import Vault
from its_desktop.sync.remotes import add_remote, make_remote
from tests.conftest import FAST_KDF, PASSWORD
from tests.integration.procs import READY, REPO_ROOT, complete_lines
from tests.integration.servers import ROOT_TOKEN, Server, openbao  # noqa: F401 - a fixture

from . import figures

KILLS = max(1, int(os.environ.get("ITS_CRASH_KILLS", "200")))
SEED = int(os.environ.get("ITS_CRASH_SEED", "20240611"))
WRITERS = ("set", "rotate", "rekey", "sync-pull")
KILLS_PER_VAULT = 25  # per writer: a fresh vault now and then keeps each check's cost bounded
# Seconds from the fork to the kill: a few commands of each writer (a sync takes longer).
MAX_DELAY = {"set": 0.3, "rotate": 0.3, "rekey": 0.3, "sync-pull": 0.6}
TIMEOUT = 120 + KILLS  # about a third of that in practice
ROTATED = "rotating/key"
MOUNT = "secret"
SYNC_NAMES = 3  # the pulled secrets of a sync vault, each updated on the remote again and again

# The zygote: imports the CLI once, then for each request (a JSON line on stdin) forks a writer
# child, prints its pid, and reaps it (printing how it ended) when told to. A child not yet
# reaped keeps its pid, so the test never signals a process that is not its writer.
ZYGOTE = r'''
import contextlib, hashlib, io, json, os, re, sys, traceback

import hvac
import its_desktop.cli.main as cli_main
from its_desktop.cli import commands, io as cli_io
import its_desktop.cli.agent, its_desktop.cli.keys, its_desktop.cli.remote, its_desktop.cli.rotation
import its_desktop.rotators.engine, its_desktop.rotators.generated, its_desktop.sync.syncer, its_desktop.sync.openbao
from tests.integration.procs import value_for

cli_main.build_parser()  # the lazy imports of the command modules, done once here


def sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def child(request):
    acks = os.open(request["acks"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    errors = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(errors, 2)
    os.environ.update(request["env"])

    def ack(line):
        os.write(acks, (line + "\n").encode())  # one write: a kill leaves it whole or absent

    def run(*argv, stdin=""):
        commands.STDIN = cli_io.Stdin()
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8")), encoding="utf-8")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_main.main(list(argv))
        if code != 0:
            os.write(2, f"its-vault {' '.join(argv)} exited {code}: {err.getvalue()}".encode())
            os._exit(3)
        return out.getvalue(), err.getvalue()

    writer, prefix = request["writer"], request["prefix"]
    i = 0
    while True:
        name = f"{prefix}/{i:05d}"
        if writer in ("set", "rekey"):
            value = value_for(name)
            run("set", name, "--value-stdin", stdin=value)
            ack(f"set {name} {sha(value)}")
            if writer == "rekey":
                run("rekey")  # the new recovery code goes to a StringIO, never further
                ack("rekeyed")
        elif writer == "rotate":
            target = request["rotated"]
            _, said = run("rotate", target)
            version = int(re.search(r"version (\d+) verified", said).group(1))
            ack(f"rotated {target} {version}")
            out, _ = run("get", target)
            ack(f"value {target} {version} {sha(out[:-1])}")
        else:  # sync-pull: a new version on the remote, then a sync that pulls it
            remote = request["remote"]
            key = f"s{i % remote['names']}"
            value = f"pull {prefix} {i:05d} " + sha(name)[:24]
            client = hvac.Client(url=remote["url"], token=remote["token"])
            client.secrets.kv.v2.create_or_update_secret(path=remote["prefix"] + key, secret={"value": value},
                                                         mount_point=remote["mount"])
            client.adapter.close()
            run("sync")
            ack(f"pull {remote['folder']}{key} {sha(value)} {prefix} {i:05d}")
        i += 1


print("ready", flush=True)
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        try:
            child(json.loads(line))
        except BaseException:
            os.write(2, traceback.format_exc().encode())
        os._exit(4)
    print(pid, flush=True)
    sys.stdin.readline()  # "reap"
    _, status = os.waitpid(pid, 0)
    print(-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status), flush=True)
'''


class Zygote:
    """The long-lived parent of every writer child."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "zygote.stderr"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], cwd=REPO_ROOT, env=env, text=True,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        assert self._line() == READY, f"the zygote did not start: {self.log.read_text()[-2000:]}"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.endswith("\n"), f"the zygote died: {self.log.read_text()[-2000:]}"
        return line.strip()

    def spawn(self, request: dict) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return int(self._line())

    def reap(self) -> int:
        """How the last child ended: -N for signal N, else its exit status."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("reap\n")
        self.proc.stdin.flush()
        return int(self._line())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@dataclass
class Writer:
    """One writer's current vault and what its children acknowledged on it."""

    kind: str
    root: Path
    kills: int = 0
    vaults: int = 0
    verified: int = 0  # acknowledged writes (and re-keys) found intact after the kill that followed them
    path: Path = Path()
    sets: dict[str, str] = field(default_factory=dict)  # name -> sha256 of the value
    rotated: dict[int, str | None] = field(default_factory=dict)  # version -> sha256 (None: not read back)
    rekeys: int = 0
    pulls: dict[str, list[tuple[str, tuple[str, str]]]] = field(default_factory=dict)  # name -> [(sha256, counter)]
    remote_prefix: str = ""

    def new_vault(self, openbao: Server) -> None:
        self.path = self.root / self.kind / f"vault-{self.vaults}" / "vault.its"
        self.remote_prefix = f"its/crash-{self.vaults}/"
        self.vaults += 1
        self.sets, self.rotated, self.rekeys, self.pulls = {}, {}, 0, {}
        with Vault.create(self.path, PASSWORD, kdf=FAST_KDF) as vault:
            if self.kind == "rotate":
                vault.set(ROTATED, "initial " + _sha(str(self.path))[:20], rotator="generated")
            elif self.kind == "sync-pull":
                vault.set("creds/bao", ROOT_TOKEN)
                add_remote(vault, make_remote("bao", "openbao", "brokers/", self.remote_prefix,
                                              {"url": openbao.url, "mount": MOUNT}, "token", "creds/bao"))

    def request(self, tmp_path: Path, round_: int, openbao: Server) -> dict:
        folder = tmp_path / "rounds"
        folder.mkdir(exist_ok=True)
        return {
            "writer": self.kind, "prefix": f"r{round_:05d}",
            "acks": str(folder / f"{round_:05d}.acks"), "stderr": str(folder / f"{round_:05d}.stderr"),
            "env": {"ITS_VAULT_PATH": str(self.path)}, "rotated": ROTATED,
            "remote": {"url": openbao.url, "token": ROOT_TOKEN, "mount": MOUNT, "prefix": self.remote_prefix,
                       "folder": "brokers/", "names": SYNC_NAMES},
        }

    def acknowledge(self, lines: list[str]) -> int:
        """Takes in a round's acknowledgements; returns how many writes they acknowledge."""
        for line in lines:
            kind, _, rest = line.partition(" ")
            if kind == "set":
                name, digest = rest.split(" ")
                self.sets[name] = digest
            elif kind == "rekeyed":
                self.rekeys += 1
            elif kind == "rotated":
                _, version = rest.split(" ")
                self.rotated.setdefault(int(version), None)
            elif kind == "value":
                _, version, digest = rest.split(" ")
                self.rotated[int(version)] = digest
            elif kind == "pull":
                name, digest, round_, iteration = rest.split(" ")
                self.pulls.setdefault(name, []).append((digest, (round_, iteration)))
            else:
                raise AssertionError(f"an unknown acknowledgement: {line!r}")
        return sum(1 for line in lines if not line.startswith("value "))

    def check(self, where: str) -> None:
        """The vault as the next user finds it: every acknowledged write is there."""
        try:
            with Vault.open(self.path, PASSWORD) as vault:
                vault.verify_audit()
                present = set(vault.names())
                lost = sorted(n for n in self.sets if n not in present)
                assert not lost, f"{where}: {len(lost)} acknowledged sets are gone, e.g. {lost[:3]}"
                wrong = sorted(n for n, digest in self.sets.items() if _sha(vault.peek(n).value) != digest)
                assert not wrong, f"{where}: {len(wrong)} secrets hold another value than acknowledged: {wrong[:3]}"
                if self.rekeys:
                    ok = [r for r in vault.audit_records() if r.event.op == "rekey" and r.event.outcome == "ok"]
                    assert len(ok) >= self.rekeys, \
                        f"{where}: {self.rekeys} re-keys acknowledged, {len(ok)} in the audit log"
                if self.rotated:
                    self._check_rotated(vault, where)
                for name, pulled in self.pulls.items():
                    self._check_pulled(vault, name, pulled, where)
        except VaultError as exc:
            pytest.fail(f"{where}: {type(exc).__name__}: {exc}")

    def _check_rotated(self, vault: Vault, where: str) -> None:
        secret = vault.peek(ROTATED)
        newest = max(self.rotated)
        assert secret.version >= newest, f"{where}: version {newest} was acknowledged, the vault has {secret.version}"
        held = {v.version: v.value for v in secret.versions()}
        for version, digest in self.rotated.items():
            if version < min(held):
                continue  # beyond the history's depth
            assert version in held, f"{where}: rotated version {version} is missing from the history"
            assert digest is None or _sha(held[version]) == digest, \
                f"{where}: rotated version {version} holds another value than the one read back after it"

    def _check_pulled(self, vault: Vault, name: str, pulled: list[tuple[str, tuple[str, str]]], where: str) -> None:
        assert name in set(vault.names()), f"{where}: the acknowledged pull of {name} is gone"
        secret = vault.peek(name)
        digest, counter = pulled[-1]
        assert _counter(secret.value) >= counter, \
            f"{where}: {name} went back to an older remote version than the last acknowledged pull"
        assert digest in {_sha(v.value) for v in secret.versions()}, \
            f"{where}: the last acknowledged pull of {name} is not among its versions"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _counter(value: str) -> tuple[str, str]:
    """(round, iteration) of a pulled value: 'pull rNNNNN IIIII …' (both zero-padded)."""
    match = re.fullmatch(r"pull (r\d{5}) (\d{5}) \w+", value)
    assert match, "a pulled secret holds a value no writer wrote"
    return match.group(1), match.group(2)


@pytest.fixture
def zygote(tmp_path: Path) -> Iterator[Zygote]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITS_")}
    env.update({
        "ITS_MASTER_PASSWORD": PASSWORD,
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "ITS_AGENT_DIR": str(tmp_path / "agent"),  # no agent: `get` and `rekey` look for one and find none
        "ITS_LOCK_TIMEOUT": "20",
    })
    z = Zygote(tmp_path / "zygote", env)
    yield z
    z.close()


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT)
def test_writers_killed_at_random_moments(tmp_path: Path, zygote: Zygote, openbao: Server, capsys) -> None:
    rng = random.Random(SEED)
    writers = {kind: Writer(kind, tmp_path) for kind in WRITERS}
    started = time.monotonic()
    for round_ in range(KILLS):
        writer = writers[WRITERS[round_ % len(WRITERS)]]
        if writer.kills % KILLS_PER_VAULT == 0:
            writer.new_vault(openbao)
        request = writer.request(tmp_path, round_, openbao)
        pid = zygote.spawn(request)
        time.sleep(rng.uniform(0, MAX_DELAY[writer.kind]))
        os.kill(pid, signal.SIGKILL)
        status = zygote.reap()
        errors = Path(request["stderr"])
        assert status == -signal.SIGKILL, (
            f"round {round_} ({writer.kind}, seed {SEED}): the writer ended by itself with {status}: "
            f"{errors.read_text()[-2000:] if errors.exists() else ''}")
        acks = Path(request["acks"])
        lines = complete_lines(acks.read_text()) if acks.exists() else []
        count = writer.acknowledge(lines)
        writer.kills += 1
        writer.check(f"kill #{round_} ({writer.kind}, seed {SEED})")
        writer.verified += count
    seconds = time.monotonic() - started
    assert sum(w.kills for w in writers.values()) == KILLS
    assert not list((tmp_path / "state").rglob("*.log")), "a writer logged an unexpected internal error"
    line = (f"kills survived: {KILLS} (" + ", ".join(f"{k} {writers[k].kills}" for k in WRITERS) + ")"
            f"; seed {SEED}; acknowledged writes verified: "
            + ", ".join(f"{k} {writers[k].verified}" for k in WRITERS) + f"; {seconds:.0f} s")
    figures.say("crash", line)  # in the run's summary too
    with capsys.disabled():
        print("\n" + line)
