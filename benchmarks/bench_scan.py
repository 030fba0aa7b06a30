"""The leak scan's speed on a home-like folder, next to its floors, measured in one run:

* scan: ``its_desktop.scan.scanner.scan`` with a matcher built from 1,000 vault secrets (their
  values and secret-looking fields), ``.gitignore`` honoured, patterns on: files per second,
  with one worker process per CPU (what ``its-vault scan`` does) and in one process (the app);
* bare read: an ``os.walk`` that opens and reads every file of the same tree, nothing else:
  the floor under any scanner written in Python;
* grep: ``grep -rIF -f VALUES`` over the same tree (the ignored folders excluded), a C
  multi-string search of the plain values: what a quick shell check costs (and what we refuse
  to do: it needs the values in a file).

The tree (built in a temporary folder, removed afterwards): N small text files (default
100,000; code, JSON, prose, logs with unique ids, .env files; 200 B to 6 KB) in nested project
folders, plus binaries, files over 1 MiB, ``.gitignore``d ``node_modules`` and ``build``
folders, and a few planted leaks (vault values and well-known credentials), which must all be
found. Each figure runs once after a warm-up read, so all of them read from the page cache.

    .venv/bin/python benchmarks/bench_scan.py               # 100,000 files
    .venv/bin/python benchmarks/bench_scan.py --files 10000 # quicker

Target: at least grep's files per second (grep is C and holds the plain values; we hold
fingerprints). A report, not a test: a missed target prints MISS and the exit status is still 0 (except when
a planted leak is not found: that is a bug, exit 1). Progress goes to stderr, the table to
stdout.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from its_desktop.core.secrets import Secret, SecretType  # noqa: E402
from its_desktop.scan.matcher import Matcher, secret_sources  # noqa: E402
from its_desktop.scan.scanner import ScanOptions, default_workers, scan  # noqa: E402

B64 = string.ascii_letters + string.digits + "+/"
ALNUM = string.ascii_letters + string.digits
PUNCT = ALNUM + "!@#$%^&*-_=+:;,.?"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_secrets(rng: random.Random, count: int) -> list[Secret]:
    secrets = []
    for i in range(count):
        kind = i % 5
        if kind == 0:
            value = "".join(rng.choices(B64, k=40))
        elif kind == 1:
            value = "".join(rng.choices("0123456789abcdef", k=64))
        elif kind == 2:
            value = "".join(rng.choices(ALNUM, k=32))
        elif kind == 3:
            value = "".join(rng.choices(PUNCT, k=20))
        else:
            value = "sk_live_" + "".join(rng.choices(ALNUM, k=28))
        fields = {"account": f"U{i:07d}", "url": f"https://broker{i % 50}.example.com"}
        if i % 10 == 0:
            fields["password"] = "".join(rng.choices(PUNCT, k=24))
        secrets.append(Secret(name=f"brokers/b{i % 50}/acct{i}", value=value, type=SecretType.API_KEY,
                              fields=fields))
    return secrets


class Text:
    """Home-folder-like text: Zipf-distributed words, identifiers, unique ids in logs."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        words = {"".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 11))) for _ in range(30000)}
        self.words = sorted(words)
        total, self.cumulative = 0.0, []
        for rank in range(len(self.words)):
            total += 1 / (rank + 1)
            self.cumulative.append(total)

    def some(self, n: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cumulative, k=n)

    def code(self) -> str:
        rng, lines = self.rng, []
        for _ in range(rng.randint(5, 120)):
            a, b, c = self.some(3)
            form = rng.randrange(5)
            if form == 0:
                lines.append(f"def {a}_{b}(self, {c}):")
            elif form == 1:
                lines.append(f"    {a} = self.{b}.{c}({rng.randint(0, 999)})")
            elif form == 2:
                lines.append(f"    return {a}_{b}[{c!r}]")
            elif form == 3:
                lines.append(f"# {' '.join(self.some(rng.randint(3, 10)))}")
            else:
                lines.append(f"from {a}.{b} import {c.capitalize()}{a.capitalize()}")
        return "\n".join(lines) + "\n"

    def json(self) -> str:
        keys = self.some(self.rng.randint(3, 60))
        items = [f'  "{k}": "{" ".join(self.some(self.rng.randint(1, 5)))}"' for k in keys]
        return "{\n" + ",\n".join(items) + "\n}\n"

    def prose(self) -> str:
        return "\n".join(" ".join(self.some(self.rng.randint(5, 16))) for _ in range(self.rng.randint(3, 50))) + "\n"

    def logs(self) -> str:
        rng = self.rng
        return "".join(f"2026-05-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z "
                       f"{rng.choice(('INFO', 'WARN', 'DEBUG'))} req={os.urandom(8).hex()} "
                       f"{' '.join(self.some(rng.randint(3, 9)))}\n" for _ in range(rng.randint(5, 60)))

    def env(self) -> str:
        return "".join(f"{w.upper()}_{v.upper()}={x}\n" for w, v, x in zip(self.some(8), self.some(8), self.some(8)))

    def any(self) -> tuple[str, str]:
        pick = self.rng.random()
        if pick < 0.35:
            return ".py", self.code()
        if pick < 0.55:
            return ".json", self.json()
        if pick < 0.8:
            return ".md", self.prose()
        if pick < 0.95:
            return ".log", self.logs()
        return ".env", self.env()


def build_tree(root: Path, files: int, secrets: list[Secret], rng: random.Random) -> tuple[int, int]:
    """The tree; returns the number of planted vault values and patterns."""
    text = Text(rng)
    per_folder = 40
    written = 0
    folders: list[Path] = []
    while written < files:
        project = root / f"proj{len(folders) // 10}" / rng.choice(("src", "docs", "notes", "conf", "data")) / \
            f"d{len(folders)}"
        project.mkdir(parents=True, exist_ok=True)
        folders.append(project)
        for _ in range(min(per_folder, files - written)):
            suffix, body = text.any()
            (project / f"f{written}{suffix}").write_text(body)
            written += 1
    for p in range(len(folders) // 10 + 1):  # every project ignores its build output and dependencies
        base = root / f"proj{p}"
        if not base.exists():
            continue
        (base / ".gitignore").write_text("node_modules/\nbuild/\n*.tmp\n!keep.tmp\n")
        for ignored in ("node_modules/pkg", "build"):
            folder = base / ignored
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(20):
                (folder / f"x{i}.js").write_text(text.code())
    for i in range(max(1, files // 200)):  # binaries
        (rng.choice(folders) / f"blob{i}.bin").write_bytes(os.urandom(512) + b"\x00" + os.urandom(512))
    for i in range(max(1, files // 5000)):  # large files
        (rng.choice(folders) / f"big{i}.log").write_text(text.prose() * (2 * 1024 * 1024 // len(text.prose()) + 1))
    leaks = 0
    for i, secret in enumerate(rng.sample(secrets, 20)):
        target = rng.choice(folders) / f"leak{i}.env"
        target.write_text(f"# config\nNAME=x\nAPI_KEY={secret.value}\n")
        leaks += 1
    patterns = 0
    for i, line in enumerate(("aws_access_key_id = AKIA" + "".join(rng.choices(string.ascii_uppercase, k=16)),
                              "-----BEGIN RSA PRIVATE KEY-----",
                              "token: ghp_" + "".join(rng.choices(ALNUM, k=36)))):
        (rng.choice(folders) / f"creds{i}.txt").write_text(f"{line}\n")
        patterns += 1
    return leaks, patterns


def bare_read(root: Path) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ("node_modules", "build")]
        for name in names:
            with open(os.path.join(folder, name), "rb") as fh:
                fh.read()
            count += 1
    return count, time.perf_counter() - started


def grep(root: Path, values_file: Path) -> tuple[float | None, int]:
    if shutil.which("grep") is None:
        return None, 0
    started = time.perf_counter()
    result = subprocess.run(["grep", "-rIlF", "-f", str(values_file), "--exclude-dir=node_modules",
                             "--exclude-dir=build", str(root)], capture_output=True, text=True)
    return time.perf_counter() - started, len(result.stdout.splitlines())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--secrets", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    secrets = make_secrets(rng, args.secrets)
    with tempfile.TemporaryDirectory(prefix="its-bench-scan-") as tmp:
        root = Path(tmp) / "home"
        log(f"building a tree of {args.files:,} text files…")
        started = time.perf_counter()
        leaks, patterns = build_tree(root, args.files, secrets, rng)
        log(f"  built in {time.perf_counter() - started:.1f} s")
        values_file = Path(tmp) / "values.txt"  # for grep only: synthetic values
        values_file.write_text("".join(s.value + "\n" for s in secrets))

        bare_read(root)  # warm the page cache
        started = time.perf_counter()
        matcher = Matcher(secret_sources(secrets))
        build_seconds = time.perf_counter() - started
        workers = default_workers()
        log(f"scanning with {workers} workers (the command line's default)…")
        report = scan([root], matcher, ScanOptions(), workers=workers)
        log("scanning in one process (the app)…")
        single = scan([root], matcher, ScanOptions())
        log("bare read…")
        bare_files, bare_seconds = bare_read(root)
        log("grep…")
        grep_seconds, grep_files = grep(root, values_file)

    stats = report.stats
    found_values = len(report.secret_findings)
    found_patterns = len(report.pattern_findings)
    rate = stats.files_per_second
    bare_rate = bare_files / bare_seconds
    grep_rate = bare_files / grep_seconds if grep_seconds else None
    ok = grep_rate is None or rate >= grep_rate  # target: no slower than grep's C search of plain values
    print(f"leak scan: {stats.files_scanned:,} files scanned ({stats.bytes_scanned / 1e6:.0f} MB), "
          f"{stats.skipped} skipped ({stats.skipped_ignored} ignored, {stats.skipped_binary} binary, "
          f"{stats.skipped_large} large), {stats.values_searched:,} values searched")
    print(f"{'figure':<34} {'seconds':>8} {'files/s':>10}")
    print(f"{'matcher built (1,000 secrets)':<34} {build_seconds:>8.3f} {'':>10}")
    print(f"{f'scan (ours, {workers} workers: CLI)':<34} {stats.seconds:>8.2f} {rate:>10,.0f}   "
          f"{'ok' if ok else 'MISS'} (target: at least grep's files/s; {rate / bare_rate:.0%} of the bare read)")
    print(f"{'scan (ours, one process: app)':<34} {single.stats.seconds:>8.2f} {single.stats.files_per_second:>10,.0f}")
    print(f"{'bare os.walk + read (floor)':<34} {bare_seconds:>8.2f} {bare_rate:>10,.0f}")
    if grep_seconds is not None:
        print(f"{'grep -rIF -f values (C, plain)':<34} {grep_seconds:>8.2f} {grep_rate:>10,.0f}   "
              f"({grep_files} files matched)")
    print(f"files scanned per second: {rate:,.0f}")
    print(f"planted: {leaks} vault values, {patterns} patterns; found: {found_values} vault values, "
          f"{found_patterns} patterns")
    if single.findings != report.findings:
        print("BUG: the workers and one process found different things", file=sys.stderr)
        return 1
    if found_values < leaks or found_patterns < patterns:
        print("BUG: a planted leak was not found", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
