"""`its-vault import` end to end, as a user or a script runs it: real subprocesses on files made
by pykeepass or laid out as the exporters document, exact exit codes, problems one per line
before a one-line error, and no value on any terminal stream or in the audit log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from its_desktop.core import totp
from tests.integration.cli_runner import CliRunner, Result, call, expect_failure, expect_ok
from tests.unit.test_importers import (
    ACCOUNT,
    BINANCE_SECRET,
    IBKR_KEY,
    KDBX_PASSWORD,
    ONEPASSWORD_8,
    SECRETS,
    TOTP_SEED,
    bitwarden_export,
    csv_text,
    make_kdbx,
    write,
)

FAST_INIT = ("init", "--kdf-memory", "8", "--kdf-time", "1")
KDBX_ENV = {"ITS_IMPORT_PASSWORD": KDBX_PASSWORD}


class ImportCli(CliRunner):
    def assert_clean(self) -> None:
        """No value on any stream but `get`'s stdout, and none in the audit log."""
        for result in self.results:
            for value in SECRETS:
                assert value not in result.stderr, f"a value leaked into the stderr of {result.args}"
                if result.args[0] != "get":
                    assert value not in result.stdout, f"a value leaked into the stdout of {result.args}"
        audit = self.ok("audit", "--json").stdout
        assert all(value not in audit for value in SECRETS)

    def names(self) -> dict[str, dict]:
        return {row["name"]: row for row in json.loads(self.ok("list", "--json").stdout)}


@pytest.fixture
def cli(cli_env, tmp_path) -> ImportCli:
    runner = ImportCli(cli_env, tmp_path)
    runner.ok(*FAST_INIT)
    return runner


def problems_then_error(result: Result, code: int = 1) -> list[str]:
    """The problem lines a refused import printed before its one-line error."""
    assert result.code == code, result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("its-vault: error: ") and "Traceback" not in result.stderr
    return lines[:-1]


def test_kdbx_with_the_password_from_the_environment_then_get_field(cli, tmp_path):
    make_kdbx(tmp_path / "desk.kdbx")
    result = cli.ok("import", "kdbx", "desk.kdbx", "--prefix", "keepass", env=KDBX_ENV)
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == "imported kdbx desk.kdbx: 5 created, 0 merged, 0 unchanged, 0 skipped"
    assert "note: entry 4 'Old broker': in the recycle bin, left out" in result.stderr
    assert sorted(cli.names()) == ["keepass/Brokers/IBKR/API", "keepass/Brokers/IBKR/API/totp",
                                   "keepass/Exchanges/Binance", "keepass/Exchanges/Binance/totp", "keepass/Top level"]
    field, value, code = cli.run_all(call("get", "keepass/Brokers/IBKR/API", "--field", "account"),
                                     call("get", "keepass/Brokers/IBKR/API"),
                                     call("totp", "code", "keepass/Brokers/IBKR/API/totp", "--at", "120"))
    assert expect_ok(field).stdout == ACCOUNT + "\n" and expect_ok(value).stdout == IBKR_KEY + "\n"
    assert expect_ok(code).stdout == totp.totp(totp.decode_secret(TOTP_SEED), 120, period=60, digits=8) + "\n"
    assert cli.names()["keepass/Exchanges/Binance"]["expires_at"].startswith("2027-06-30")

    wrong, no_password, missing = cli.run_all(
        call("import", "kdbx", "desk.kdbx", env={"ITS_IMPORT_PASSWORD": "not it"}),
        call("import", "kdbx", "desk.kdbx"),
        call("import", "kdbx", "nowhere.kdbx", env=KDBX_ENV))
    assert "wrong password for the KeePass file desk.kdbx" in expect_failure(wrong, 3).stderr
    assert "ITS_IMPORT_PASSWORD" in expect_failure(no_password, 2).stderr
    assert "no such file: nowhere.kdbx" in expect_failure(missing, 4).stderr
    cli.assert_clean()


def test_a_file_with_problems_is_refused_then_its_valid_part_accepted(cli, tmp_path):
    document = bitwarden_export()
    document["items"][1]["login"] = "broken"
    write(tmp_path / "bitwarden.json", json.dumps(document))
    refused = cli.run("import", "bitwarden", "bitwarden.json")
    assert problems_then_error(refused) == ["item 2 'Binance': its 'login' part is missing or malformed"]
    assert "1 problem found, nothing imported" in refused.stderr and "--accept-partial imports the 6 valid" in refused.stderr
    assert cli.names() == {}

    accepted = cli.ok("import", "bitwarden", "bitwarden.json", "--accept-partial")
    assert "left out: item 2 'Binance'" in accepted.stderr
    names = cli.names()
    assert "Brokers/IBKR/API" in names and "Exchanges/Binance" not in names and len(names) == 6
    assert names["Brokers/IBKR/API"]["high_value"] is True

    text = json.dumps(bitwarden_export(), indent=2)
    write(tmp_path / "truncated.json", text[: len(text) // 3])
    write(tmp_path / "encrypted.json", json.dumps({"encrypted": True, "passwordProtected": True, "data": "2.x|y|z"}))
    truncated, encrypted = cli.all_fail(1, call("import", "bitwarden", "truncated.json"),
                                        call("import", "bitwarden", "encrypted.json"))
    assert "truncated.json: line" in truncated.stderr and "not valid JSON" in truncated.stderr
    assert "encrypted Bitwarden export" in encrypted.stderr
    cli.assert_clean()


def test_duplicates_skip_by_default_and_merge_keeps_history(cli, tmp_path):
    write(tmp_path / "bot.env", f"API_KEY={IBKR_KEY}\n")
    cli.ok("import", "env", "bot.env", "--prefix", "bots")
    write(tmp_path / "bot.env", f"API_KEY={BINANCE_SECRET}\nNEW_TOKEN=t-1\n")

    skipped = cli.ok("import", "env", "bot.env", "--prefix", "bots")
    assert "skipped bots/API_KEY (already in the vault)" in skipped.stderr
    assert cli.ok("get", "bots/API_KEY").stdout == IBKR_KEY + "\n"

    merged = cli.ok("import", "env", "bot.env", "--prefix", "bots", "--duplicates", "merge")
    assert merged.stderr.splitlines()[-1] == ("imported env bot.env: 0 created, 1 merged (old values kept in "
                                              "history), 1 unchanged, 0 skipped")
    assert cli.ok("get", "bots/API_KEY").stdout == BINANCE_SECRET + "\n"
    history = json.loads(cli.ok("history", "bots/API_KEY", "--json").stdout)
    assert [row["version"] for row in history] == [1, 2]
    cli.ok("restore", "bots/API_KEY", "--version", "1")
    assert cli.ok("get", "bots/API_KEY").stdout == IBKR_KEY + "\n"
    cli.assert_clean()


def test_dry_run_prints_the_preview_and_changes_nothing(cli, tmp_path):
    write(tmp_path / "1password.csv", csv_text(ONEPASSWORD_8) + "Short row,x\r\n")
    cli.ok("import", "1password", "1password.csv", "--accept-partial")
    before = cli.vault.read_bytes()
    write(tmp_path / "sheet.csv", csv_text([["name", "value", "folder"], ["IBKR API", IBKR_KEY, ""],
                                            ["db_password", BINANCE_SECRET, "db"], ["no value", "", ""]]))
    result = cli.ok("import", "csv", "sheet.csv", "--dry-run", "--duplicates", "merge")
    assert result.stdout.splitlines() == [
        "merge      password     IBKR API  (already in the vault)",
        "create     password     db/db_password",
        "problem    line 4 'no value': missing value",
        "csv sheet.csv: 1 to create, 1 to merge (old values kept in history), 0 unchanged, 0 to skip; 1 problem: "
        "nothing would be imported (--accept-partial imports the valid part)",
    ]
    assert cli.vault.read_bytes() == before
    assert problems_then_error(cli.run("import", "csv", "sheet.csv")) == ["line 4 'no value': missing value"]
    assert cli.vault.read_bytes() == before
    cli.assert_clean()


def test_usage_errors_and_the_first_spelling(cli, tmp_path):
    write(tmp_path / "sheet.csv", csv_text([["Title", "Secret"], ["a", IBKR_KEY]]))
    write(tmp_path / "odd.csv", csv_text([["Acct", "Secret thing"], ["a", IBKR_KEY]]))
    write(tmp_path / "bot.env", f"API_KEY={IBKR_KEY}\n")
    map_elsewhere, bad_map, unknown_kind, no_guess, mapped = cli.run_all(
        call("import", "env", "bot.env", "--map", "name=A,value=B"),
        call("import", "csv", "sheet.csv", "--map", "name=Title"),
        call("import", "lastpass", "sheet.csv"),
        call("import", "csv", "odd.csv"),
        call("import", "csv", "sheet.csv", "--map", "name=title,value=secret", "--prefix", "sheet"))
    expect_failure(map_elsewhere, 2)
    assert "say which column holds the value" in expect_failure(bad_map, 2).stderr
    expect_failure(unknown_kind, 2)
    assert "give --map" in expect_failure(no_guess, 1).stderr
    expect_ok(mapped)
    cli.ok("import-env", "bot.env", "--prefix", "sheet")  # import-env merges: a changed value is a new version
    write(tmp_path / "bot.env", f"API_KEY={BINANCE_SECRET}\n")
    assert "1 updated" in cli.ok("import-env", "bot.env", "--prefix", "sheet").stderr
    assert cli.names()["sheet/API_KEY"]["version"] == 2
    cli.assert_clean()


def test_the_guide_shows_the_contract(tmp_path):
    guide = (Path(__file__).parents[2] / "docs" / "import.md").read_text(encoding="utf-8")
    assert "its-vault import env|kdbx|bitwarden|1password|csv FILE [--prefix P]" in guide
    assert "ITS_IMPORT_PASSWORD" in guide
