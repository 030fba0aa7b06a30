"""``its-vault scan PATH...`` end to end in subprocesses: findings as lines or JSON, the summary
on stderr, exit 8 while findings remain, --fix (asks, or --yes) writing references that
``its-vault run --env-file`` resolves, and never a value in any output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from its_desktop.cli.scan import EXIT_FINDINGS
from its_desktop.core.vault.api import Vault
from tests.conftest import FAST_KDF, ITS_VAULT, PASSWORD

VALUE = "Qm4Rt8Yp2Wz6Lk1Hd9Sx"
DB_PASSWORD = "s3cr3t:pa$$-word!"
AWS_ID = "AKIA" + "T" * 16


@pytest.fixture
def its(cli_env, tmp_path):
    path = Path(cli_env["ITS_VAULT_PATH"])
    path.parent.mkdir(parents=True)
    with Vault.create(path, PASSWORD, kdf=FAST_KDF) as vault:
        vault.set("brokers/ibkr/api_key", VALUE)
        vault.set("db/main", "ignored-value-0000", fields={"password": DB_PASSWORD, "host": "db1"})
        vault.set("short", "abc")
    command = list(ITS_VAULT)

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        result = subprocess.run(command + list(args), env=cli_env, input=stdin, capture_output=True, text=True,
                                cwd=tmp_path, timeout=60)
        for text in (result.stdout, result.stderr):
            assert VALUE not in text and DB_PASSWORD not in text and AWS_ID not in text
            assert "Traceback" not in text
        return result

    return run


@pytest.fixture
def tree(tmp_path):
    bot = tmp_path / "home" / "bot"
    bot.mkdir(parents=True)
    (bot / ".env").write_text(f"API_KEY={VALUE}\nDB_PASS='{DB_PASSWORD}'\nMODE=live\n")
    (bot / "settings.json").write_text(f'{{\n  "key": "{VALUE}"\n}}\n')
    (bot / "aws.txt").write_text(f"id {AWS_ID}\n")
    (bot / ".gitignore").write_text("cache/\n")
    (bot / "cache").mkdir()
    (bot / "cache" / "copy.txt").write_text(VALUE)
    (tmp_path / "home" / "clean.md").write_text("nothing to see\n")
    return tmp_path / "home"


def test_findings_lines_summary_and_exit_code(its, tree):
    result = its("scan", str(tree))
    assert result.returncode == EXIT_FINDINGS, result.stderr
    assert result.stdout.splitlines() == [
        f"{tree}/bot/.env:1: secret brokers/ibkr/api_key",
        f"{tree}/bot/.env:2: secret db/main#password",
        f"{tree}/bot/aws.txt:1: AWS access key id (pattern)",
        f"{tree}/bot/settings.json:2: secret brokers/ibkr/api_key",
    ]
    assert "scanned 5 files" in result.stderr and "files per second" in result.stderr
    assert "1 value shorter than 8 characters not searched" in result.stderr
    assert "1 ignored" in result.stderr

    one_process = its("scan", str(tree), "--jobs", "1")
    assert (one_process.returncode, one_process.stdout) == (EXIT_FINDINGS, result.stdout)
    bad_jobs = its("scan", str(tree), "--jobs", "0")
    assert bad_jobs.returncode == 2 and bad_jobs.stderr.count("\n") == 1 and "--jobs" in bad_jobs.stderr

    everything = its("scan", str(tree), "--no-gitignore", "--json")
    doc = json.loads(everything.stdout)
    assert everything.returncode == EXIT_FINDINGS
    assert {(Path(f["path"]).name, f["line"], f.get("secret") or f["pattern"]) for f in doc["findings"]} >= {
        ("copy.txt", 1, "brokers/ibkr/api_key"), ("aws.txt", 1, "aws-access-key-id")}
    assert doc["findings"][0]["column"] >= 1 and doc["stats"]["files_scanned"] == 6

    clean = its("scan", str(tree / "clean.md"))
    assert (clean.returncode, clean.stdout) == (0, "")


def test_fix_asks_first_then_writes_references_run_resolves(its, tree, cli_env):
    refused = its("scan", str(tree), "--fix")  # no terminal to ask in
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1
    assert refused.stderr.startswith("its-vault: error: --fix asks before")

    fixed = its("scan", str(tree / "bot"), "--fix", "--yes")
    assert fixed.returncode == EXIT_FINDINGS  # the AWS key id is still there: only the owner can rotate it
    assert "replaced 3 values in 2 files with its:// references" in fixed.stderr
    env = (tree / "bot" / ".env").read_text()
    assert env == "API_KEY=its://brokers/ibkr/api_key\nDB_PASS=its://db/main#password\nMODE=live\n"
    assert '"key": "its://brokers/ibkr/api_key"' in (tree / "bot" / "settings.json").read_text()
    again = its("scan", str(tree / "bot"), "--no-patterns")
    assert (again.returncode, again.stdout) == (0, "")

    check = ("import os, sys; sys.exit(0 if (os.environ['API_KEY'], os.environ['DB_PASS'], os.environ['MODE']) "
             f"== ({VALUE!r}, {DB_PASSWORD!r}, 'live') else 3)")
    resolved = subprocess.run(ITS_VAULT + ["run", "--env-file", str(tree / "bot" / ".env"), "--",
                                           sys.executable, "-c", check],
                              env=cli_env, capture_output=True, text=True, timeout=60)
    assert resolved.returncode == 0, resolved.stderr


def test_usage_errors_are_one_line(its, tree):
    missing = its("scan", str(tree / "nope"))
    assert missing.returncode == 2 and missing.stderr == f"its-vault: error: no such file or folder: {tree / 'nope'}\n"
    bad = its("scan", str(tree), "--max-size", "lots")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1


def test_the_scan_is_audited_with_counts_only(its, tree, cli_env):
    its("scan", str(tree))
    with Vault.open(cli_env["ITS_VAULT_PATH"], PASSWORD) as vault:
        scans = [r.event for r in vault.audit_records() if r.event.op == "scan"]
    assert [(e.outcome, e.name, e.detail) for e in scans] == [("ok", None, "5 files, 3 vault values, 1 patterns found")]
