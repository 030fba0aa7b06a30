"""`its-vault backup`, `restore-backup`, `backups` and `export` as scripts run them: real
subprocesses, exit codes, one-line errors, private files, audit records, and no value on any
terminal stream (values appear only in an export file, and in `get` on purpose)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import stat
from pathlib import Path

import pyotp
import pytest

from its_desktop.core.dotenv import parse_dotenv
from its_desktop.core.vault import backups
from its_desktop.core.vault.api import Vault
from tests.conftest import PASSWORD
from tests.integration.cli_runner import CliRunner, Result, assert_one_line_error, error_line

FAST = ("--kdf-memory", "8", "--kdf-time", "1")
PASSPHRASE = "a long backup passphrase uniq-5d1e"
NEW_MASTER = "the restored vault's password uniq-90c2"
SEED = "KRSXG5CTMVRXEZLUKVXGS4LVMVPQ"
VALUES = {
    "brokers/ibkr/api_key": "ibkr-second-value-uniq-7a1f",
    "db/main/password": "db pass with 'quotes' and \"more\" uniq-3b2c",
    "bots/alpha/TOKEN": "tok-uniq-88e4",
    "notes/pem": "-----BEGIN KEY-----\nline two uniq-41aa\n-----END KEY-----",
}
OLD_VALUE = "ibkr-first-value-uniq-6c0d"
FIELD = "U1234567-uniq-f1e1"
PENDING = "pending-value-uniq-2f2f"


class Cli(CliRunner):
    def assert_no_leak(self) -> None:
        """Only `get` and `totp code` print a value (on purpose); nothing else, anywhere."""
        needles = [*VALUES.values(), OLD_VALUE, FIELD, PENDING, SEED, PASSPHRASE, NEW_MASTER, PASSWORD]
        for result in self.results:
            on_purpose = "get" in result.args or "code" in result.args
            for needle in needles:
                assert needle not in result.stderr, f"a secret leaked into the stderr of {result.args}"
                assert on_purpose or needle not in result.stdout, f"a secret leaked into the stdout of {result.args}"


@pytest.fixture
def cli(cli_env, tmp_path) -> Cli:
    runner = Cli(cli_env, tmp_path)
    runner.ok("init", *FAST)
    runner.ok("set", "brokers/ibkr/api_key", "--type", "api_key", "--value-stdin", "--field", f"account={FIELD}",
              "--tag", "env=prod", "--expires", "2027-06-30", input=OLD_VALUE)
    for name, value in VALUES.items():
        runner.ok("set", name, "--value-stdin", input=value)
    runner.ok("totp", "add", "mfa/acme", "--uri-stdin", input=f"otpauth://totp/Acme:desk?secret={SEED}&issuer=Acme")
    with Vault.open(runner.vault, PASSWORD) as vault:  # what the command line cannot make directly
        vault.begin_rotation("db/main/password", PENDING, "generated")
        vault.change_settings(lambda s: s.update({"remotes": {"desk": {"type": "openbao"}},
                                                  "agent_grants": [{"id": "g1", "pattern": "brokers/*"}]}))
    return runner


def audit(cli: Cli, vault: Path | None = None, password: str = PASSWORD) -> list[dict]:
    args = ("audit", "--json") if vault is None else ("--vault", str(vault), "audit", "--json")
    out = cli.ok(*args, env={"ITS_MASTER_PASSWORD": password}).stdout
    return [json.loads(line) for line in out.splitlines()]


def tamper(path: Path, offset_from_end: int = 60) -> None:
    """Flip a body byte and fix the unkeyed checksum: only the AEAD can tell."""
    data = bytearray(path.read_bytes()[:-32])
    data[-offset_from_end] ^= 1
    path.write_bytes(bytes(data) + hashlib.sha256(data).digest())


def test_backup_then_restore_brings_everything_back_under_new_keys(cli, tmp_path):
    target = tmp_path / "usb" / "trading.its"
    target.parent.mkdir()
    done = cli.ok("backup", str(target), *FAST, env={"ITS_BACKUP_PASSWORD": PASSPHRASE})
    assert done.stdout == "" and "backed up 5 secrets" in done.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["trading.its"], "one file, nothing beside it"
    assert not any(v.encode() in target.read_bytes() for v in VALUES.values())
    cli.fails(1, "backup", str(target), env={"ITS_BACKUP_PASSWORD": PASSPHRASE})  # no silent overwrite
    records = [(r["op"], r["outcome"], r["detail"]) for r in audit(cli) if r["op"] == "backup"]
    assert records == [("backup", "ok", "5 secrets to trading.its")]

    restored = tmp_path / "restored" / "vault.its"
    env = {"ITS_BACKUP_PASSWORD": PASSPHRASE, "ITS_MASTER_PASSWORD": NEW_MASTER}
    done = cli.ok("restore-backup", str(target), "--vault", str(restored), *FAST, env=env)
    code = done.stdout.strip()
    assert len(code) == 39 and "restored 5 secrets from trading.its (a backup of vault" in done.stderr

    mine = {"ITS_MASTER_PASSWORD": NEW_MASTER}
    at = ("--vault", str(restored))
    got = cli.run_all(*[((*at, "get", name), {"env": mine}) for name in VALUES],
                      ((*at, "get", "brokers/ibkr/api_key", "--field", "account"), {"env": mine}),
                      ((*at, "history", "brokers/ibkr/api_key", "--json"), {"env": mine}),
                      ((*at, "totp", "code", "mfa/acme", "--at", "1700000000"), {"env": mine}),
                      ((*at, "audit", "verify"), {"env": mine}),
                      ((*at, "get", "brokers/ibkr/api_key"), {"env": {"ITS_MASTER_PASSWORD": PASSWORD}}))
    assert [r.stdout for r in got[:len(VALUES)]] == [v + "\n" for v in VALUES.values()]
    field, history, totp_code, verified, old_password = got[len(VALUES):]
    assert field.stdout == FIELD + "\n"
    assert [v["version"] for v in json.loads(history.stdout)] == [1, 2]
    assert totp_code.stdout == pyotp.TOTP(SEED).at(1700000000) + "\n"
    assert verified.code == 0 and old_password.code == 3

    first = audit(cli, restored, NEW_MASTER)[0]
    assert (first["seq"], first["op"]) == (1, "restore")
    assert first["detail"].startswith("restored from trading.its (a backup of vault ")
    assert first["detail"].endswith(", 5 secrets")
    with Vault.open(restored, NEW_MASTER) as vault, Vault.open(cli.vault, PASSWORD) as live:
        assert vault.vault_id != live.vault_id and vault.generation == 1
        assert vault.peek("db/main/password").pending.value == PENDING
        assert vault.peek("brokers/ibkr/api_key").history[0].value == OLD_VALUE
        settings = vault.settings()
        assert settings["remotes"] == {"desk": {"type": "openbao"}}
        assert "agent_grants" not in settings and backups.ORIGIN not in settings
    with Vault.open(restored, recovery_code=code) as vault:
        assert len(vault) == 5
    cli.assert_no_leak()


def test_a_wrong_passphrase_exits_3_and_a_tampered_backup_exits_5_writing_nothing(cli, tmp_path):
    target = tmp_path / "b.its"
    cli.ok("backup", str(target), *FAST, env={"ITS_BACKUP_PASSWORD": PASSPHRASE})
    restored = tmp_path / "r" / "vault.its"
    env = {"ITS_BACKUP_PASSWORD": PASSPHRASE, "ITS_MASTER_PASSWORD": NEW_MASTER}
    wrong = cli.fails(3, "restore-backup", str(target), "--vault", str(restored),
                      env={**env, "ITS_BACKUP_PASSWORD": "not it"})
    assert "wrong passphrase" in error_line(wrong)
    damaged = tmp_path / "damaged.its"
    damaged.write_bytes(target.read_bytes()[:-1] + b"\0")
    tampered = tmp_path / "tampered.its"
    tampered.write_bytes(target.read_bytes())
    tamper(tampered)
    cli.fails(5, "restore-backup", str(damaged), "--vault", str(restored), env=env)
    assert "tampered" in error_line(cli.fails(5, "restore-backup", str(tampered), "--vault", str(restored), env=env))
    cli.fails(4, "restore-backup", str(tmp_path / "missing.its"), "--vault", str(restored), env=env)
    assert not restored.parent.exists(), "nothing written for a backup that did not open"
    cli.assert_no_leak()


def test_restore_over_a_vault_is_refused_then_force_keeps_the_replaced_one(cli, tmp_path):
    target = tmp_path / "b.its"
    cli.ok("backup", str(target), *FAST, env={"ITS_BACKUP_PASSWORD": PASSPHRASE})
    cli.ok("set", "only/in-the-live-vault", "--value-stdin", input="later")
    env = {"ITS_BACKUP_PASSWORD": PASSPHRASE, "ITS_MASTER_PASSWORD": NEW_MASTER}
    before = cli.vault.read_bytes()
    refused = cli.fails(1, "restore-backup", str(target), env=env)
    assert "already exists" in error_line(refused) and cli.vault.read_bytes() == before

    cli.ok("restore-backup", str(target), "--force", *FAST, env=env)
    (replaced,) = [p for p in cli.vault.parent.iterdir() if p.name.startswith("vault.its.replaced-")
                   and p.is_file() and "." not in p.name[len("vault.its.replaced-"):]]
    assert replaced.read_bytes() == before
    assert replaced.with_name(replaced.name + ".audit").exists()
    assert replaced.with_name(replaced.name + ".backups").is_dir()  # its generations went with it
    cli.ok("--vault", str(replaced), "audit", "verify")  # the old vault still opens, log and all
    assert cli.ok("--vault", str(replaced), "get", "only/in-the-live-vault").stdout == "later\n"
    mine = {"ITS_MASTER_PASSWORD": NEW_MASTER}
    cli.fails(4, "get", "only/in-the-live-vault", env=mine)
    assert cli.ok("get", "bots/alpha/TOKEN", env=mine).stdout == VALUES["bots/alpha/TOKEN"] + "\n"
    cli.assert_no_leak()


def test_rolling_generations_are_listed_kept_and_restorable_with_the_master_password(cli, tmp_path):
    listed = json.loads(cli.ok("backups", "--json").stdout)
    assert [g["generation"] for g in listed] == list(range(1, 9))  # the 8 saves since init kept what they replaced
    assert cli.ok("backups", "--keep", "3").stdout == ""  # a save too: it prunes at once
    assert [g["generation"] for g in json.loads(cli.ok("backups", "--json").stdout)] == [7, 8, 9]
    newest = json.loads(cli.ok("backups", "--list", "--json").stdout)[-1]["path"]
    restored = tmp_path / "from-generation.its"
    done = cli.ok("restore-backup", newest, "--vault", str(restored), *FAST,
                  env={"ITS_BACKUP_PASSWORD": PASSWORD, "ITS_MASTER_PASSWORD": NEW_MASTER})
    assert "(generation 9, saved " in done.stderr
    got = cli.ok("--vault", str(restored), "get", "db/main/password", env={"ITS_MASTER_PASSWORD": NEW_MASTER})
    assert got.stdout == VALUES["db/main/password"] + "\n"
    cli.fails(2, "backups", "--keep", "-1")
    cli.assert_no_leak()


def _export(cli: Cli, target: Path, *args: str, reauth: str | None = PASSWORD) -> Result:
    env = {} if reauth is None else {"ITS_REAUTH_PASSWORD": reauth}
    return cli.run("export", str(target), *args, env=env)


def test_export_asks_again_warns_writes_a_private_file_and_is_audited(cli, tmp_path):
    target = tmp_path / "out" / "all.json"
    target.parent.mkdir()
    without = _export(cli, target, reauth=None)  # ITS_MASTER_PASSWORD alone is not enough
    assert without.code == 2 and "ITS_REAUTH_PASSWORD" in error_line(without)
    assert_one_line_error(without)
    wrong = _export(cli, target, reauth="not the password")
    assert wrong.code == 3 and "re-authentication failed" in error_line(wrong)
    assert "PLAIN TEXT" in wrong.stderr.splitlines()[0] and not target.exists()

    done = _export(cli, target)
    assert done.code == 0 and done.stdout == "" and "PLAIN TEXT" in done.stderr, done.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["all.json"]
    rows = {r["name"]: r for r in json.loads(target.read_text())}
    assert {n: rows[n]["value"] for n in VALUES} == VALUES
    ibkr = rows["brokers/ibkr/api_key"]
    assert ibkr["fields"] == {"account": FIELD} and ibkr["tags"] == {"env": "prod"} and ibkr["type"] == "api_key"
    assert ibkr["expires_at"].startswith("2027-06-30") and set(ibkr) == {
        "name", "type", "value", "fields", "tags", "description", "expires_at"}
    assert OLD_VALUE not in target.read_text() and PENDING not in target.read_text()  # current values only
    assert _export(cli, target).code == 1  # no silent overwrite

    events = [(r["op"], r["outcome"], r["detail"]) for r in audit(cli)]
    assert ("reauth", "failed", None) in events and ("reauth", "ok", None) in events
    assert ("export", "ok", "5 secrets as json to all.json") in events
    assert not any(v in json.dumps(events) for v in VALUES.values())
    cli.assert_no_leak()


def test_export_as_env_and_csv_reads_back_exactly(cli, tmp_path):
    env_file, csv_file = tmp_path / "bots.env", tmp_path / "all.csv"
    assert _export(cli, env_file, "--format", "env", "--prefix", "bots/alpha").code == 0
    assert [(e.key, e.value) for e in parse_dotenv(env_file.read_text())] == [("TOKEN", VALUES["bots/alpha/TOKEN"])]
    assert _export(cli, csv_file, "--format", "csv", "--force").code == 0
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(csv_file.read_text(), newline=""))}
    assert {n: rows[n]["value"] for n in VALUES} == VALUES and rows["brokers/ibkr/api_key"]["account"] == FIELD
    every = tmp_path / "every.env"
    assert _export(cli, every, "--format", "env").code == 0
    parsed = {e.key: e.value for e in parse_dotenv(every.read_text())}
    assert parsed["DB_MAIN_PASSWORD"] == VALUES["db/main/password"] and parsed["NOTES_PEM"] == VALUES["notes/pem"]
    assert _export(cli, tmp_path / "none.json", "--prefix", "nothing/here").code == 1
    cli.assert_no_leak()
