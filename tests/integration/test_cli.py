"""The `its-vault` command line, driven as a user or a script would: real subprocesses, real
files, exact stdout, exit codes and one-line errors.

Every test works in its own vault (the `cli_env` fixture) with the cheapest KDF the CLI allows.
Secret values used here carry a unique token, so a leak into stderr, a listing, the audit log or
any file beside the vault is caught by `Cli.assert_clean`. Runs that do not depend on each other
go side by side (`run_all`), which keeps the module fast.
"""

from __future__ import annotations

import fcntl
import json
import re
import stat
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.integration.cli_runner import (
    CliRunner,
    Result,
    assert_one_line_error,
    call,
    expect_failure,
    expect_ok,
)

FAST_INIT = ("init", "--kdf-memory", "8", "--kdf-time", "1")

# Values with a unique token each, so any leak is unmistakable.
API_KEY = "AKIA-uniq-0e6b41f2c9"
SPACED = "a value with  spaces uniq-7d1f8a"
UNICODE = "clé-秘密-ключ-🔑-uniq-c3a9e0"
MULTI = "-----BEGIN TEST-----\nline two uniq-2b8e55\n\tindented uniq-9f4d01\n-----END TEST-----"
FIELD_VALUE = "U7731-field-uniq-61a0bb"
NEW_PASSWORD = "a whole new master uniq-44e2d7"
WRONG_PASSWORD = "not the master uniq-5e9a1c"

NO_PASSWORD_ENV = ("ITS_MASTER_PASSWORD",)


class Cli(CliRunner):
    """Runs `its-vault` in a private environment and remembers every run for the hygiene check."""

    # -- shortcuts -------------------------------------------------------------------------

    def init(self) -> str:
        """Creates the vault; returns the recovery code."""
        return self.ok(*FAST_INIT).stdout.strip()

    def set(self, name: str, value: str, *options: str, **run_options) -> Result:
        result = self.ok("set", name, "--value-stdin", *options, input=value, **run_options)
        assert result.stdout == ""
        return result

    def get(self, name: str, *options: str, **run_options) -> str:
        return self.ok("get", name, *options, **run_options).stdout

    def get_all(self, *names: str) -> dict[str, str]:
        """The stdout of `get NAME` for each name (each must succeed)."""
        results = self.run_all(*(call("get", name) for name in names))
        return {name: expect_ok(result).stdout for name, result in zip(names, results)}

    def list_json(self) -> list[dict]:
        return json.loads(self.ok("list", "--json").stdout)

    def audit_json(self) -> list[dict]:
        return [json.loads(line) for line in self.ok("audit", "--json").stdout.splitlines()]

    def files_beside_vault(self) -> dict[Path, bytes]:
        return {p: p.read_bytes() for p in self.vault.parent.iterdir() if p.is_file()}

    # -- secret hygiene --------------------------------------------------------------------

    def assert_clean(self, secrets: list[str], listing: bool = True) -> None:
        """No secret in any stderr, in any stdout but `get`'s (and the recovery code `init`
        prints), in `list` and `list --json`, in any file beside the vault (the vault included:
        it is encrypted), and no unexpected internal error was logged."""
        if listing:
            for result in self.run_all(call("list"), call("list", "--json")):
                expect_ok(result)
        needles = set()
        for secret in secrets:
            needles.add(secret)
            needles.add(json.dumps(secret)[1:-1])  # as it would appear inside JSON
            needles.update(token for token in re.findall(r"\S+", secret) if "uniq" in token)
        for result in self.results:
            for needle in needles:
                assert needle not in result.stderr, f"a secret leaked into the stderr of {result.args}"
                if "get" not in result.args and "init" not in result.args:
                    assert needle not in result.stdout, f"a secret leaked into the stdout of {result.args}"
        for path, data in self.files_beside_vault().items():
            for needle in needles:
                assert needle.encode("utf-8") not in data, f"a secret is in plain text in {path.name}"
        assert not list((self.tmp_path / "state").rglob("*.log")), "an unexpected internal error was logged"


@pytest.fixture
def cli(cli_env, tmp_path) -> Cli:
    return Cli(cli_env, tmp_path)


@pytest.fixture
def code(cli) -> str:
    """An initialised vault; the value is its recovery code."""
    return cli.init()


# -- init ------------------------------------------------------------------------------------


def test_init_prints_only_the_recovery_code_and_makes_private_files(cli):
    result = cli.ok(*FAST_INIT)
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1
    recovery = result.stdout.strip()
    assert len(recovery) >= 16 and not re.search(r"\s", recovery)
    assert recovery not in result.stderr
    assert "recovery" in result.stderr.lower()  # the explanation goes to stderr
    assert cli.vault.is_file()
    for path in cli.files_beside_vault():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path.name} is open to other users"
    assert stat.S_IMODE(cli.vault.parent.stat().st_mode) & 0o077 == 0
    assert cli.list_json() == []


def test_init_over_an_existing_vault_is_refused_and_nothing_is_lost(cli, code):
    cli.set("keep/me", API_KEY)
    before = cli.vault.read_bytes()
    result = cli.run(*FAST_INIT)
    assert result.code in (1, 2) and result.stdout == ""
    assert "exist" in result.stderr
    assert cli.vault.read_bytes() == before
    by_password, by_recovery, verify = cli.run_all(
        call("get", "keep/me"),
        # the first recovery code still opens it: no new vault was made behind our back
        call("get", "keep/me", "--factor", "recovery", env={"ITS_RECOVERY_CODE": code}, unset=NO_PASSWORD_ENV),
        call("audit", "verify"),
    )
    assert expect_ok(by_password).stdout == API_KEY + "\n"
    assert expect_ok(by_recovery).stdout == API_KEY + "\n"
    expect_ok(verify)
    # a refusal is one line, like every other error (no KDF warning about a vault never made)
    assert_one_line_error(result)


def test_init_rejects_weak_kdf_parameters(cli):
    cli.all_fail(2, call("init", "--kdf-memory", "4", "--kdf-time", "1"),
                 call("init", "--kdf-memory", "8", "--kdf-time", "0"),
                 call("init", "--kdf-memory", "lots"))
    assert not cli.vault.exists()


# -- set / get -------------------------------------------------------------------------------


def test_set_and_get_print_exactly_the_value(cli, code):
    values = {"brokers/ibkr/api_key": API_KEY, "notes/spaced": SPACED, "notes/unicode": UNICODE,
              "certs/multi": MULTI,
              # a trailing newline on stdin ends the line; it is not part of the value
              "notes/newline": f"{API_KEY}-nl\n"}
    # writers side by side: each waits for the lock, none is lost
    for result in cli.run_all(*(call("set", name, "--value-stdin", input=value) for name, value in values.items())):
        assert expect_ok(result).stdout == ""
    printed = cli.get_all(*values)
    for name, value in values.items():
        assert printed[name] == value.removesuffix("\n") + "\n", name
    cli.assert_clean([API_KEY, SPACED, UNICODE, MULTI])


def test_set_with_fields_tags_expiry_rotation_and_type_and_list_never_shows_values(cli, code):
    for result in cli.run_all(
        call("set", "brokers/ibkr/api_key", "--value-stdin", "--type", "api_key", "--field", f"account={FIELD_VALUE}",
             "--field", "region=eu", "--tag", "env=prod", "--tag", "desk=fx",
             "--expires", "2037-06-30", "--rotate-every", "90", input=API_KEY),
        call("set", "notes/multi", "--value-stdin", "--type", "note", input=MULTI),
        call("set", "old/expired", "--value-stdin", "--expires", "2001-01-01", input=SPACED),
    ):
        expect_ok(result)
    account, region, value, expired = cli.run_all(call("get", "brokers/ibkr/api_key", "--field", "account"),
                                                  call("get", "brokers/ibkr/api_key", "--field", "region"),
                                                  call("get", "brokers/ibkr/api_key"),
                                                  call("get", "old/expired"))
    assert expect_ok(account).stdout == FIELD_VALUE + "\n"
    assert expect_ok(region).stdout == "eu\n"
    assert expect_ok(value).stdout == API_KEY + "\n"
    # an expired secret still prints exactly its value; the warning goes to stderr
    assert expect_ok(expired).stdout == SPACED + "\n" and "expired" in expired.stderr
    cli.fails(4, "get", "brokers/ibkr/api_key", "--field", "nope")

    rows = {row["name"]: row for row in cli.list_json()}
    assert sorted(rows) == ["brokers/ibkr/api_key", "notes/multi", "old/expired"]
    assert rows["old/expired"]["status"] == "expired" and rows["notes/multi"]["status"] == "ok"
    row = rows["brokers/ibkr/api_key"]
    assert row["type"] == "api_key" and rows["notes/multi"]["type"] == "note"
    assert row["tags"] == {"env": "prod", "desk": "fx"}
    assert row["fields"] == ["account", "region"]  # names only
    assert row["expires_at"].startswith("2037-06-30")
    assert row["rotation_every_days"] == 90
    assert row["version"] == 1
    assert all("value" not in r for r in rows.values())
    text = cli.ok("list").stdout
    assert "brokers/ibkr/api_key" in text and "notes/multi" in text and "env=prod" in text

    # a metadata-only update keeps the value and the version
    cli.ok("set", "brokers/ibkr/api_key", "--tag", "env=paper")
    row = {r["name"]: r for r in cli.list_json()}["brokers/ibkr/api_key"]
    assert row["tags"] == {"env": "paper", "desk": "fx"} and row["version"] == 1
    assert cli.get("brokers/ibkr/api_key") == API_KEY + "\n"
    cli.assert_clean([API_KEY, MULTI, FIELD_VALUE, SPACED], listing=False)  # both listings ran above


def test_generate_makes_a_password_of_the_requested_length(cli, code):
    assert cli.ok("set", "db/main/password", "--type", "password", "--generate", "--length", "40").stdout == ""
    cli.ok("set", "db/other", "--generate")
    first, default = cli.get_all("db/main/password", "db/other").values()
    assert first.endswith("\n") and len(first) == 40 + 1 and not re.search(r"\s", first[:-1])
    assert len(default) == 32 + 1
    # generating again makes a new, different value
    cli.ok("set", "db/main/password", "--generate", "--length", "40")
    second = cli.get("db/main/password")
    assert len(second) == 40 + 1 and second != first
    cli.fails((1, 2), "set", "db/short", "--generate", "--length", "4")
    cli.fails(4, "get", "db/short")
    cli.assert_clean([first[:-1], second[:-1], default[:-1]], listing=False)


def test_set_rejects_bad_input_without_creating_anything(cli, code):
    cli.all_fail(2,
                 call("set", "x/bad-date", "--expires", "2027-02-30", "--value-stdin", input=API_KEY),
                 call("set", "x/bad-date", "--expires", "next tuesday", "--value-stdin", input=API_KEY),
                 call("set", "x/bad-rotation", "--rotate-every", "0", "--value-stdin", input=API_KEY),
                 call("set", "x/bad-field", "--field", "no-equals-sign", "--value-stdin", input=API_KEY),
                 call("set", "x/two-sources", "--value-stdin", "--generate", input=API_KEY))
    cli.all_fail((1, 2),
                 call("set", "x/bad-type", "--type", "no_such_type", "--value-stdin", input=API_KEY),
                 call("set", "x//empty-segment", "--value-stdin", input=API_KEY),
                 call("set", "x/no-value"))  # a new secret needs a value, and no terminal can ask
    assert cli.list_json() == []
    cli.assert_clean([API_KEY], listing=False)


# -- history, restore, rm ----------------------------------------------------------------------


def test_history_restore_and_rm(cli, code):
    values = [f"{API_KEY}-v{i}" for i in (1, 2, 3)]
    for value in values:
        cli.set("rot/key", value)
    as_json, as_text = cli.run_all(call("history", "rot/key", "--json"), call("history", "rot/key"))
    rows = json.loads(expect_ok(as_json).stdout)
    assert [r["version"] for r in rows] == [1, 2, 3]
    assert [r["current"] for r in rows] == [False, False, True]
    lines = expect_ok(as_text).stdout.splitlines()
    assert len(lines) == 3 and "current" in lines[-1] and "current" not in lines[0]

    cli.ok("restore", "rot/key", "--version", "1")
    assert cli.get("rot/key") == values[0] + "\n"
    rows = json.loads(cli.ok("history", "rot/key", "--json").stdout)
    assert [r["version"] for r in rows] == [1, 2, 3, 4] and rows[-1]["current"]

    cli.all_fail(4, call("restore", "rot/key", "--version", "99"),
                 call("restore", "rot/missing", "--version", "1"),
                 call("history", "rot/missing"))
    cli.fails(2, "restore", "rot/key")  # --version is required
    cli.assert_clean(values)

    assert cli.ok("rm", "rot/key").stdout == ""
    cli.all_fail(4, call("get", "rot/key"), call("rm", "rot/key"), call("history", "rot/key"))
    cli.assert_clean(values, listing=False)


# -- import-env --------------------------------------------------------------------------------


def test_import_env_with_quotes_comments_export_and_prefix(cli, code, tmp_path):
    env_file = tmp_path / "alpha.env"
    env_file.write_text(
        "# bot alpha\n"
        "\n"
        f"API_KEY={API_KEY}   # inline comment\n"
        f"export DB_PASSWORD='{SPACED}'\n"
        f'GREETING="{UNICODE}"\n'
        f'PEM_KEY="{MULTI}"\n'
        "export   LITERAL='${HOME} \\n stays'\n"
        "TOKEN=first\n"
        "TOKEN=second-uniq-1d2c3b\n",
        encoding="utf-8",
    )
    cli.ok("import-env", str(env_file), "--prefix", "bots/alpha")
    expected = {"API_KEY": API_KEY, "DB_PASSWORD": SPACED, "GREETING": UNICODE, "PEM_KEY": MULTI,
                "LITERAL": "${HOME} \\n stays", "TOKEN": "second-uniq-1d2c3b"}
    printed = cli.get_all(*(f"bots/alpha/{key}" for key in expected))
    assert printed == {f"bots/alpha/{key}": value + "\n" for key, value in expected.items()}
    rows = {r["name"]: r for r in cli.list_json()}
    assert sorted(rows) == sorted(f"bots/alpha/{key}" for key in expected)
    assert rows["bots/alpha/DB_PASSWORD"]["type"] == "password"
    assert rows["bots/alpha/API_KEY"]["type"] == "api_key"

    # importing the same file again changes nothing
    cli.ok("import-env", str(env_file), "--prefix", "bots/alpha")
    assert {r["name"]: r["version"] for r in cli.list_json()} == {name: 1 for name in rows}
    cli.assert_clean(list(expected.values()))


def test_import_env_malformed_file_imports_nothing(cli, code, tmp_path):
    env_file = tmp_path / "broken.env"
    env_file.write_text(
        f"GOOD_ONE={API_KEY}\n"
        "# fine\n"
        f"this line has no equals sign {SPACED}\n"
        f"ALSO_GOOD='{UNICODE}'\n"
        f'BAD_QUOTE="{FIELD_VALUE}" trailing\n',
        encoding="utf-8",
    )
    result, missing = cli.all_fail((1, 2, 4), call("import-env", str(env_file), "--prefix", "bots/beta"),
                                   call("import-env", str(tmp_path / "no-such.env")))
    assert result.code != 4
    assert "broken.env:3" in result.stderr  # the file and the first bad line
    assert cli.list_json() == []
    cli.assert_clean([API_KEY, SPACED, UNICODE, FIELD_VALUE], listing=False)


# -- passwords and factors -----------------------------------------------------------------------


def test_passwd_and_the_recovery_code(cli, code):
    cli.set("k", API_KEY)
    cli.ok("passwd", env={"ITS_NEW_MASTER_PASSWORD": NEW_PASSWORD})
    recovery = {"ITS_RECOVERY_CODE": code}
    wrong_code = {"ITS_RECOVERY_CODE": ("B" if code[0] != "B" else "C") + code[1:]}  # well-formed, not ours
    old, new, recovery_after, recovery_before, bad_code = cli.run_all(
        call("get", "k"),
        call("get", "k", env={"ITS_MASTER_PASSWORD": NEW_PASSWORD}),
        # the recovery code opens the vault on its own, and survives a password change
        call("get", "k", "--factor", "recovery", env=recovery, unset=NO_PASSWORD_ENV),
        call("--factor", "recovery", "get", "k", env=recovery, unset=NO_PASSWORD_ENV),
        call("get", "k", "--factor", "recovery", env=wrong_code, unset=NO_PASSWORD_ENV),
    )
    expect_failure(old, 3)
    assert expect_ok(new).stdout == API_KEY + "\n"
    assert expect_ok(recovery_after).stdout == API_KEY + "\n"
    assert expect_ok(recovery_before).stdout == API_KEY + "\n"
    expect_failure(bad_code, 3)

    # and back through stdin: the current password on the first line, the new one on the next
    cli.ok("passwd", "--password-stdin", input=f"{NEW_PASSWORD}\n{PASSWORD}\n", unset=NO_PASSWORD_ENV)
    old, new = cli.run_all(call("get", "k", env={"ITS_MASTER_PASSWORD": NEW_PASSWORD}), call("get", "k"))
    expect_failure(old, 3)
    assert expect_ok(new).stdout == API_KEY + "\n"
    cli.all_fail(2, call("passwd", "--password-stdin", input=f"{PASSWORD}\n", unset=NO_PASSWORD_ENV),  # no new one
                 call("get", "k", "--factor", "fingerprint"))
    cli.assert_clean([API_KEY, NEW_PASSWORD, PASSWORD, code], listing=False)


def test_password_stdin_alone_and_with_value_stdin(cli, code):
    result = cli.ok("--password-stdin", "set", "k", "--value-stdin", input=f"{PASSWORD}\n{MULTI}\n",
                    unset=NO_PASSWORD_ENV)
    assert result.stdout == ""
    with_newline, without_newline = cli.run_all(
        call("get", "k", "--password-stdin", input=PASSWORD + "\n", unset=NO_PASSWORD_ENV),
        call("get", "k", "--password-stdin", input=PASSWORD, unset=NO_PASSWORD_ENV))
    assert expect_ok(with_newline).stdout == MULTI + "\n"
    assert expect_ok(without_newline).stdout == MULTI + "\n"
    cli.all_fail(3, call("get", "k", "--password-stdin", input=WRONG_PASSWORD + "\n", unset=NO_PASSWORD_ENV),
                 call("set", "k", "--password-stdin", "--value-stdin", input=f"{WRONG_PASSWORD}\n{API_KEY}",
                      unset=NO_PASSWORD_ENV))
    cli.all_fail(2, call("get", "k", "--password-stdin", input="", unset=NO_PASSWORD_ENV),
                 call("get", "k", unset=NO_PASSWORD_ENV))  # no password anywhere, no terminal to ask
    assert cli.get("k") == MULTI + "\n"
    cli.assert_clean([MULTI, API_KEY, PASSWORD, WRONG_PASSWORD])


def test_password_stdin_first_line_is_never_stored_as_the_value(cli, code):
    # A script written for --password-stdin, run where ITS_MASTER_PASSWORD also happens to be set:
    # the first line is still the password line. Storing it inside the value would copy the
    # master password into a secret that is later printed or exported; either skip the line
    # or refuse the ambiguous call.
    result = cli.run("--password-stdin", "set", "k", "--value-stdin", input=f"{PASSWORD}\n{API_KEY}\n")
    printed = cli.run("get", "k")
    assert PASSWORD not in printed.stdout, "the master password was stored inside a secret's value"
    if result.code == 0:
        assert printed.stdout == API_KEY + "\n"
    else:
        assert result.code == 2 and printed.code == 4
        assert_one_line_error(result)


def test_passwd_password_stdin_reads_current_then_new_even_with_the_environment_set(cli, code):
    # The same script for passwd: line one is the current password, line two the new one. Taking
    # line one as the new password "changes" it to the old one while saying it was changed.
    cli.set("k", API_KEY)
    result = cli.run("passwd", "--password-stdin", input=f"{PASSWORD}\n{NEW_PASSWORD}\n")
    if result.code == 0:
        with_new, with_old = cli.run_all(call("get", "k", env={"ITS_MASTER_PASSWORD": NEW_PASSWORD}),
                                         call("get", "k"))
        assert with_new.code == 0 and with_new.stdout == API_KEY + "\n", "the new password does not open the vault"
        assert with_old.code == 3
    else:
        assert result.code == 2
        assert_one_line_error(result)


def test_wrong_password_is_exit_3_changes_nothing_and_is_audited(cli, code):
    cli.set("k", API_KEY)
    before = cli.vault.read_bytes()
    cli.all_fail(3, call("get", "k", env={"ITS_MASTER_PASSWORD": WRONG_PASSWORD}),
                 call("set", "k", "--value-stdin", env={"ITS_MASTER_PASSWORD": WRONG_PASSWORD}, input=SPACED))
    assert cli.vault.read_bytes() == before
    assert cli.get("k") == API_KEY + "\n"
    failed = [r for r in cli.audit_json() if r["op"] == "unlock" and r["outcome"] != "ok"]
    assert len(failed) == 2
    cli.ok("audit", "verify")
    cli.assert_clean([API_KEY, SPACED, WRONG_PASSWORD], listing=False)


# -- the vault path --------------------------------------------------------------------------


def test_vault_option_before_or_after_the_command_overrides_the_environment(cli, code, tmp_path):
    other = tmp_path / "elsewhere" / "other.its"
    cli.ok("--vault", str(other), *FAST_INIT)
    cli.set("only/there", API_KEY, "--vault", str(other))
    after, before, by_env = cli.run_all(
        call("get", "only/there", "--vault", str(other)),
        call("--vault", str(other), "get", "only/there"),
        call("get", "only/there", env={"ITS_VAULT_PATH": str(other)}))
    for result in (after, before, by_env):
        assert expect_ok(result).stdout == API_KEY + "\n"
    cli.all_fail(4, call("get", "only/there"),  # not in the vault ITS_VAULT_PATH names
                 call("get", "only/there", env={"ITS_VAULT_PATH": str(tmp_path / "nowhere" / "v.its")}))


def test_a_missing_vault_is_exit_4(cli, tmp_path):
    (tmp_path / "fine.env").write_text(f"KEY={API_KEY}\n", encoding="utf-8")
    results = cli.all_fail(4, call("get", "k"), call("list"), call("audit", "verify"), call("rm", "k"),
                           call("import-env", "fine.env"), call("passwd"))
    for result in results:
        assert str(cli.vault) in result.stderr
    assert not cli.vault.exists()


# -- damage and tampering ----------------------------------------------------------------------


def _damaged_copies(data: bytes) -> dict[str, bytes]:
    copies = {}
    for label, offset in [("magic", 0), ("header", 40), ("body", len(data) // 2), ("checksum", len(data) - 1)]:
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        copies[f"flipped-{label}"] = bytes(flipped)
    copies["truncated-half"] = data[: len(data) // 2]
    copies["truncated-last-byte"] = data[:-1]
    copies["empty"] = b""
    copies["foreign"] = b"%PDF-1.7\n" + bytes(range(256)) * 8
    return copies


def test_damaged_truncated_or_foreign_files_are_exit_5_and_left_untouched(cli, code, tmp_path):
    cli.set("k", API_KEY)
    good = cli.vault.read_bytes()
    copies = _damaged_copies(good)
    paths = {}
    for label, data in copies.items():
        paths[label] = tmp_path / f"{label}.its"
        paths[label].write_bytes(data)
    cli.all_fail(
        5,
        *(call("--vault", str(path), "get", "k") for path in paths.values()),
        # a writer must not "repair" a damaged file by overwriting it
        call("set", "k", "--value-stdin", "--vault", str(paths["flipped-body"]), input=SPACED),
        call("set", "k", "--value-stdin", "--vault", str(paths["truncated-last-byte"]), input=SPACED),
        # damage wins over a wrong password: the user learns the file is bad, not that they mistyped
        call("--vault", str(paths["flipped-body"]), "get", "k", env={"ITS_MASTER_PASSWORD": WRONG_PASSWORD}),
    )
    for label, path in paths.items():
        assert path.read_bytes() == copies[label], f"{label}: the damaged file was modified"

    # the vault itself, damaged in place
    cli.vault.write_bytes(copies["flipped-body"])
    cli.all_fail(5, call("get", "k"), call("rm", "k"))
    assert cli.vault.read_bytes() == copies["flipped-body"]
    cli.vault.write_bytes(good)
    assert cli.get("k") == API_KEY + "\n"
    cli.assert_clean([API_KEY, SPACED, WRONG_PASSWORD], listing=False)


def test_audit_shows_and_verifies(cli, code):
    cli.set("k", API_KEY)
    cli.get("k")
    cli.ok("rm", "k")
    text, as_json, verify = cli.run_all(call("audit"), call("audit", "--json"), call("audit", "verify"))
    for op in ("init", "unlock", "create", "read", "delete"):
        assert op in expect_ok(text).stdout
    records = [json.loads(line) for line in expect_ok(as_json).stdout.splitlines()]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert records[0]["op"] == "init"
    assert any(r["op"] == "create" and r["name"] == "k" for r in records)
    assert any(r["op"] == "delete" and r["name"] == "k" for r in records)
    assert expect_ok(verify).stdout.strip() != ""
    cli.fails(2, "audit", "erase")
    cli.assert_clean([API_KEY], listing=False)


def test_an_edited_audit_record_fails_verify_with_exit_5(cli, code):
    cli.set("k", API_KEY)
    cli.ok("audit", "verify")
    log = cli.vault.with_name(cli.vault.name + ".audit")
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    target = next(i for i, line in enumerate(lines) if json.loads(line)["op"] == "create")
    record = json.loads(lines[target])
    record["op"] = "read"  # hide the creation
    lines[target] = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    log.write_text("".join(lines), encoding="utf-8")
    result = cli.fails(5, "audit", "verify")
    assert "audit" in result.stderr
    cli.fails(5, "audit", "verify")  # still detected after that run appended its own records


def test_a_deleted_audit_record_fails_verify_with_exit_5(cli, code):
    cli.set("k", API_KEY)
    log = cli.vault.with_name(cli.vault.name + ".audit")
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:1] + lines[2:]))
    cli.fails(5, "audit", "verify")


# -- locking, usage ----------------------------------------------------------------------------


def test_a_held_writer_lock_is_exit_6_after_a_bounded_wait(cli, code):
    cli.set("k", API_KEY)
    before = cli.vault.read_bytes()
    lock_path = cli.vault.with_name(cli.vault.name + ".lock")
    short_wait = {"ITS_LOCK_TIMEOUT": "0.3"}
    with open(lock_path, "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        try:
            cli.all_fail(6, call("set", "k", "--value-stdin", input=SPACED, env=short_wait),
                         call("rm", "k", env=short_wait))
        finally:
            fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    assert cli.vault.read_bytes() == before
    assert cli.get("k") == API_KEY + "\n"
    cli.assert_clean([API_KEY, SPACED], listing=False)


def test_usage_errors_are_exit_2_in_one_line(cli):
    cli.all_fail(2, call("frobnicate"), call("get"), call("get", "k", "--no-such-option"),
                 call("set", "k", "--rotate-every", "soon"), call("history", "k", "--version", "1"),
                 call("restore", "k", "--version", "one"), call("list", "--json", "extra"))


def test_no_command_is_a_usage_error(cli):
    result = cli.run()
    assert result.code == 2
    assert "Traceback" not in result.stderr and result.stdout == ""
