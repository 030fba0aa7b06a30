"""ITS Desktop against KeePassXC on the same records and the same Argon2id cost.

Everything that takes time is measured here; ``run.py`` only parses arguments and prints.
Both sides get the same data (one record per ``brokers/b{i%50}/acct{i}``), the same KDF
parameters and the same repetitions, and the two sides take turns (with a raw KDF derivation
between them) so that a noisy neighbour or a CPU frequency change hurts all alike.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from its_desktop.core.crypto import Argon2Params, argon2id
from its_desktop.core.secrets import Secret, SecretType
from its_desktop.core.vault.api import Vault
from its_desktop.core.vault.header import FORMAT_VERSION
from its_desktop.core.vault.storage import atomic_write

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"  # git-ignored scratch: cached data sets, the run's copies, bytecode
RUN = WORK / "run"
PASSWORD = "bench: correct horse battery staple"
DATA_VERSION = 1  # bump when the generated records change, so stale caches are not reused
GROUPS = 50
KPX_CLI = "keepassxc-cli"
CLI_ADDED, INPROC_ADDED = 20_000_000, 30_000_000  # first indexes of records added while timing


@dataclass(frozen=True)
class Config:
    """One benchmark run: data size, KDF cost and how many timed repetitions."""

    records: int
    kdf: Argon2Params
    cli_reps: int
    inproc_reps: int
    warmup: int = 1

    def cache_key(self) -> str:
        k = self.kdf
        return f"v{DATA_VERSION}.{FORMAT_VERSION}-n{self.records}-m{k.memory_kib}-t{k.time_cost}-p{k.parallelism}"


@dataclass(frozen=True)
class Figure:
    """Two medians (seconds), the raw KDF's median timed alongside them, and how many Argon2id
    derivations each side does per operation."""

    label: str
    ours: float
    theirs: float
    kdf: float
    ours_kdfs: int
    theirs_kdfs: int

    def beyond_kdf(self) -> tuple[float, float]:
        """Each side's time beyond the derivations it did."""
        return self.ours - self.ours_kdfs * self.kdf, self.theirs - self.theirs_kdfs * self.kdf


@dataclass(frozen=True)
class Results:
    config: Config
    kpx_version: str
    kdf: float            # one raw argon2id derivation, median over the whole run, seconds
    durable_write: float  # write + fsync + rename + fsync(dir) of a vault-sized file, seconds
    vault_bytes: int
    kdbx_bytes: int
    figures: list[Figure]  # start-up, CLI read, CLI add, open, save (in that order)
    breakdown: dict[str, float]  # where our CLI read goes, phase by phase (see _PHASES)
    fsyncs: dict[str, int]  # fsync calls counted in-process: our read (open + get), our save, pykeepass save
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after, filled in by run.py


# -- data ------------------------------------------------------------------------------------


def record(i: int) -> tuple[str, str, str, str]:
    """(name, value, username, url) of record i, deterministic so any run can check a read."""
    value = hashlib.sha256(f"bench-value-{i}".encode()).hexdigest()[:40]
    return f"brokers/b{i % GROUPS}/acct{i}", value, f"trader{i}", f"https://api.b{i % GROUPS}.example.com"


def env(i: int) -> str:
    return "prod" if i % 3 else "paper"


def build_its(path: Path, config: Config) -> None:
    """The ITS vault, through the public API: create, then one bulk import (one save)."""
    incoming = []
    for i in range(config.records):
        name, value, username, url = record(i)
        incoming.append(Secret(name=name, value=value, type=SecretType.API_KEY,
                               fields={"username": username, "url": url},
                               tags={"env": env(i), "broker": f"b{i % GROUPS}"}))
    with Vault.create(path, PASSWORD, kdf=config.kdf) as vault:
        vault.import_secrets(incoming, source="bench")


def build_kdbx(path: Path, config: Config) -> None:
    """The KDBX 4 file, through pykeepass: the same entries in groups mirroring the folders,
    and the header's KDF switched to Argon2id with our parameters."""
    from pykeepass import create_database
    from pykeepass.kdbx_parsing import kdf_uuids

    kp = create_database(str(path), password=PASSWORD)
    kdf = kp.kdbx.header.value.dynamic_header.kdf_parameters.data.dict
    kdf["$UUID"].value = kdf_uuids["argon2id"]
    kdf["M"].value = config.kdf.memory_kib * 1024  # KDBX stores bytes
    kdf["I"].value = config.kdf.time_cost
    kdf["P"].value = config.kdf.parallelism
    top = kp.add_group(kp.root_group, "brokers")
    groups = [kp.add_group(top, f"b{g}") for g in range(GROUPS)]
    for i in range(config.records):
        name, value, username, url = record(i)
        kp.add_entry(groups[i % GROUPS], name.rsplit("/", 1)[1], username, value, url=url,
                     tags=[env(i), f"b{i % GROUPS}"], force_creation=True)
    kp.save()
    check_kdbx_kdf(path, config)


def check_kdbx_kdf(path: Path, config: Config) -> None:
    """Read the saved file back: the comparison is void unless its KDF is really ours."""
    from pykeepass import PyKeePass

    kp = PyKeePass(str(path), password=PASSWORD)
    kdf = {k: v.value for k, v in kp.kdbx.header.value.dynamic_header.kdf_parameters.data.dict.items()}
    got = (kp.kdf_algorithm, kdf["M"] // 1024, kdf["I"], kdf["P"])
    wanted = ("argon2id", config.kdf.memory_kib, config.kdf.time_cost, config.kdf.parallelism)
    if got != wanted:
        raise RuntimeError(f"the KDBX KDF is {got}, expected {wanted}")


def prepare(config: Config, log: Callable[[str], None]) -> tuple[Path, Path]:
    """Build (or reuse) the pristine data for these parameters and copy it to a fresh run
    folder, so that every run starts from the same files however many adds came before."""
    cache = WORK / "data" / config.cache_key()
    done = cache / "complete"
    if not done.exists():
        shutil.rmtree(cache, ignore_errors=True)
        (cache / "its").mkdir(parents=True)
        log(f"building {config.records:,} records into {cache.relative_to(HERE)} (cached for next time)")
        start = time.perf_counter()
        build_its(cache / "its" / "vault.its", config)
        build_kdbx(cache / "db.kdbx", config)
        done.write_text("ok\n")
        log(f"built in {time.perf_counter() - start:.1f} s")
    shutil.rmtree(RUN, ignore_errors=True)
    shutil.copytree(cache, RUN, ignore=shutil.ignore_patterns("*.lock", "complete"))
    return RUN / "its" / "vault.its", RUN / "db.kdbx"


# -- timing ----------------------------------------------------------------------------------


def interleaved(fns: list[Callable[[], object]], reps: int, warmup: int) -> list[list[float]]:
    """Time each function ``reps`` times, taking turns, after ``warmup`` untimed rounds: a change
    of machine load mid-run then hits every side alike. Returns the samples per function."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(reps):
        for fn, taken in zip(fns, samples):
            start = time.perf_counter()
            fn()
            taken.append(time.perf_counter() - start)
    return samples


class Comparison:
    """Runs ours and theirs side by side, with a raw KDF derivation (our function, our parameters)
    taking its turn between them, so each figure has a KDF time taken under the same load."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.kdf_samples: list[float] = []
        salt = os.urandom(32)
        self._kdf = lambda: argon2id(PASSWORD.encode(), salt, config.kdf)

    def figure(self, label: str, ours: Callable[[], object], theirs: Callable[[], object], kdfs: tuple[int, int],
               reps: int, *extra: Callable[[], object]) -> tuple[Figure, list[list[float]]]:
        """The figure, and the samples of any ``extra`` functions run in the same rotation."""
        a, b, k, *rest = interleaved([ours, theirs, self._kdf, *extra], reps, self.config.warmup)
        self.kdf_samples += k
        med = statistics.median
        return Figure(label, med(a), med(b), med(k), *kdfs), rest


def durable_write(folder: Path, size: int) -> float:
    """What one crash-safe save of a file this size costs here: the vault's own atomic_write
    (temp file, fsync, rename, fsync of the folder). The floor under any durable save."""
    probe = folder / "durable-write.probe"
    data = os.urandom(size)
    (samples,) = interleaved([lambda: atomic_write(probe, data)], 9, 2)
    probe.unlink()
    return statistics.median(samples)


class FsyncCounter:
    """Counts os.fsync calls in this process while active (the vault calls os.fsync)."""

    def __init__(self) -> None:
        self.count = 0
        self._real = os.fsync

    def __enter__(self) -> FsyncCounter:
        def counting(fd: int) -> None:
            self.count += 1
            self._real(fd)

        os.fsync = counting  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        os.fsync = self._real


# -- the command lines -----------------------------------------------------------------------


def its_vault_script() -> str:
    """The its-vault console script of the interpreter running us (the project's venv)."""
    script = Path(sys.executable).parent / "its-vault"
    if not script.exists():
        raise RuntimeError(f"{script} not found: install the project (make test) first")
    return str(script)


def kpx_version() -> str:
    if shutil.which(KPX_CLI) is None:
        raise RuntimeError(f"{KPX_CLI} not found: apt-get install -y keepassxc (make bench does it)")
    return subprocess.run([KPX_CLI, "--version"], capture_output=True, text=True, check=True).stdout.strip()


def run_cli(argv: list[str], stdin: str, env: dict[str, str] | None = None) -> str:
    """Run one command to completion; any failure stops the benchmark (a fast error is no result)."""
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])}... exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def expect(output: str, wanted: str, who: str) -> None:
    if output.strip() != wanted:
        raise RuntimeError(f"{who} printed {output.strip()[:60]!r}, expected the record's value")


def cli_env(vault: Path) -> dict[str, str]:
    """Credentials in the environment for ours; private config folders for both.

    Bytecode caching is forced on (into the scratch folder) because an installed its-vault
    runs from cached bytecode; with PYTHONDONTWRITEBYTECODE set, as some CI shells do, every
    run would recompile the project's modules and the figure would mean nothing.
    """
    env = dict(os.environ)
    env.update(ITS_MASTER_PASSWORD=PASSWORD, ITS_VAULT_PATH=str(vault), PYTHONPYCACHEPREFIX=str(WORK / "pycache"),
               XDG_CONFIG_HOME=str(RUN / "config"), XDG_DATA_HOME=str(RUN / "data"), XDG_CACHE_HOME=str(RUN / "cache"))
    for name in ("PYTHONDONTWRITEBYTECODE", "ITS_LOCK_TIMEOUT", "PYTHONPROFILEIMPORTTIME"):
        env.pop(name, None)
    return env


# Runs in a fresh interpreter and does what `its-vault get` does, timing each phase; prints JSON.
_PHASES = """
import json, os, sys, time
t0 = time.perf_counter()
import its_desktop.cli.main, its_desktop.cli.commands
t1 = time.perf_counter()
from its_desktop.core.vault.api import Vault
from its_desktop.core.vault.header import FORMAT_VERSION
vault = Vault.open(os.environ["ITS_VAULT_PATH"], os.environ["ITS_MASTER_PASSWORD"])
t2 = time.perf_counter()
vault.get(sys.argv[1])
vault.lock()
t3 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "open": t2 - t1, "get": t3 - t2}))
"""


def bench_cli(vault: Path, kdbx: Path, cmp: Comparison) -> tuple[list[Figure], dict[str, float]]:
    """Start-up, read one secret, add one secret: a fresh process per call, as a script runs them.
    The read also takes turns with a phase-timed copy of itself and a bare interpreter, which
    together say where our read's time goes."""
    its, env, reps = its_vault_script(), cli_env(vault), cmp.config.cli_reps
    name, value, _, _ = record(cmp.config.records // 2)

    startup, _ = cmp.figure("start-up only (--version)", lambda: run_cli([its, "--version"], "", env),
                            lambda: run_cli([KPX_CLI, "--version"], "", env), (0, 0), reps)

    def its_read() -> None:
        expect(run_cli([its, "get", name], "", env), value, "its-vault get")

    def kpx_read() -> None:
        expect(run_cli([KPX_CLI, "show", "-q", "-s", "-a", "Password", str(kdbx), name], PASSWORD + "\n", env),
               value, "keepassxc-cli show")

    phases: list[dict[str, float]] = []

    def its_phases() -> None:
        start = time.perf_counter()
        timed: dict[str, float] = json.loads(run_cli([sys.executable, "-c", _PHASES, name], "", env))
        timed["start-up and exit"] = time.perf_counter() - start - sum(timed.values())
        phases.append(timed)

    read, (_, bare) = cmp.figure("CLI read one secret", its_read, kpx_read, (1, 1), reps,
                                 its_phases, lambda: run_cli([sys.executable, "-c", "pass"], "", env))
    breakdown = {key: statistics.median(p[key] for p in phases[-reps:]) for key in phases[0]}
    breakdown["bare interpreter"] = statistics.median(bare)

    fresh = itertools.count(CLI_ADDED)  # indexes past the built records: never a collision
    last: dict[str, int] = {}

    def its_add() -> None:
        last["its"] = i = next(fresh)
        n, v, user, url = record(i)
        run_cli([its, "set", n, "--type", "api_key", "--value-stdin", "--field", f"username={user}",
                 "--field", f"url={url}"], v, env)

    def kpx_add() -> None:
        last["kpx"] = i = next(fresh)
        n, v, user, url = record(i)
        run_cli([KPX_CLI, "add", "-q", "-u", user, "--url", url, "-p", str(kdbx), n], f"{PASSWORD}\n{v}\n", env)

    # KeePassXC derives the key again on every save (it re-salts the KDF), so an add costs it two.
    add, _ = cmp.figure("CLI add one secret (full save)", its_add, kpx_add, (1, 2), reps)
    n, v, _, _ = record(last["its"])  # the adds really landed, on both sides
    expect(run_cli([its, "get", n], "", env), v, "its-vault get (after set)")
    n, v, _, _ = record(last["kpx"])
    expect(run_cli([KPX_CLI, "show", "-q", "-s", "-a", "Password", str(kdbx), n], PASSWORD + "\n", env), v,
           "keepassxc-cli show (after add)")
    return [startup, read, add], breakdown


# -- in-process ------------------------------------------------------------------------------


def bench_inproc(vault: Path, kdbx: Path, cmp: Comparison) -> tuple[list[Figure], dict[str, int]]:
    """Vault.open and vault.set against PyKeePass(...) and add_entry + save."""
    from pykeepass import PyKeePass

    reps = cmp.config.inproc_reps
    opened, _ = cmp.figure("open (Vault.open / PyKeePass)", lambda: Vault.open(vault, PASSWORD).lock(),
                           lambda: PyKeePass(str(kdbx), password=PASSWORD), (1, 1), reps)

    fresh = itertools.count(INPROC_ADDED)
    ours = Vault.open(vault, PASSWORD)
    theirs = PyKeePass(str(kdbx), password=PASSWORD)
    group = theirs.find_groups(path=["brokers", "b1"])

    def its_save() -> None:
        n, v, user, url = record(next(fresh))
        ours.set(n, v, type="api_key", fields={"username": user, "url": url})

    def kpx_save() -> None:
        n, v, user, url = record(next(fresh))
        theirs.add_entry(group, n.rsplit("/", 1)[1], user, v, url=url, force_creation=True)
        theirs.save()  # re-salts the KDF and derives again, as KeePassXC does

    saved, _ = cmp.figure("save one change (set / add+save)", its_save, kpx_save, (0, 1), reps)
    fsyncs: dict[str, int] = {}
    with FsyncCounter() as counter:
        with Vault.open(vault, PASSWORD) as v:  # what `its-vault get` does
            v.get(record(0)[0])
    fsyncs["read"] = counter.count
    with FsyncCounter() as counter:
        its_save()
    fsyncs["save"] = counter.count
    with FsyncCounter() as counter:
        kpx_save()
    fsyncs["pykeepass save"] = counter.count
    ours.lock()
    return [opened, saved], fsyncs


def run(config: Config, log: Callable[[str], None]) -> Results:
    version = kpx_version()
    vault, kdbx = prepare(config, log)
    cmp = Comparison(config)
    log(f"timing the command lines ({config.cli_reps} runs each, taking turns with a raw KDF)")
    cli, breakdown = bench_cli(vault, kdbx, cmp)
    log(f"timing in-process open and save ({config.inproc_reps} runs each, taking turns with a raw KDF)")
    inproc, fsyncs = bench_inproc(vault, kdbx, cmp)
    size = vault.stat().st_size
    return Results(config, version, statistics.median(cmp.kdf_samples), durable_write(vault.parent, size), size,
                   kdbx.stat().st_size, cli + inproc, breakdown, fsyncs)
