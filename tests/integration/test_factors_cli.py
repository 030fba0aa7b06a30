"""Hardware unlock factors through the `its-vault` command line: real subprocesses, the emulated
YubiKey and FIDO2 key (``ITS_EMULATED_KEYS``: one state file is one pair of keys, a second file a
different pair), exact exit codes, one-line errors and secret hygiene.

Every test has its own vault (the `cli_env` fixture) and its own key files under `tmp_path`; most
start from a copy of a template vault that real CLI runs made once per module (`templates`).
Runs that do not depend on each other go side by side (`Cli.run_all`). Values, passwords, PINs and
codes carry a unique token, so a leak into stderr, stdout or the audit files is caught by
`Cli.assert_clean`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from its_desktop.core.errors import IncorrectFactor
from its_desktop.core.vault import slots as slotlib
from its_desktop.core.vault import throttle
from its_desktop.core.vault.header import PREFIX, KeySlot, parse_file
from tests.conftest import PASSWORD
from tests.integration.cli_runner import CliRunner, Result, call, error_line, expect_failure, expect_ok

FAST_INIT = ("init", "--kdf-memory", "8", "--kdf-time", "1")

# Values with a unique token each, so any leak is unmistakable.
VALUE = "AKIA-factor-uniq-5c1e0d"
WRONG_PASSWORD = "not the master uniq-81f0aa"
NEW_PASSWORD = "a brand new master uniq-3b7d20"
PIN = "pin-uniq-73519"
WRONG_PIN = "pin-uniq-00000"

NO_PASSWORD_ENV = ("ITS_MASTER_PASSWORD",)
NO_KEYS = ("ITS_EMULATED_KEYS",)
NEVER_TOUCHED = {"ITS_EMULATED_TOUCH": "never", "ITS_EMULATED_TOUCH_TIMEOUT": "0.5"}

ENROLMENTS = [
    pytest.param("yubikey", ("--slot", "2"), id="yubikey-slot2"),
    pytest.param("yubikey", ("--slot", "1"), id="yubikey-slot1"),
    pytest.param("fido2", (), id="fido2"),
]
INPUT_PARAM = {"yubikey": "challenge", "fido2": "salt"}
KIND_OF = {"yubikey2": "yubikey", "fido2": "fido2"}  # template -> its factor


@dataclass(frozen=True)
class Template:
    """A vault made once per module by real CLI runs, copied into the tests that start from it."""

    root: Path
    code: str
    slot_id: str | None


class Cli(CliRunner):
    """Runs `its-vault` with the emulated keys of `keys/a.json` plugged in, and remembers every
    run for the hygiene check."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.keys = tmp_path / "keys" / "a.json"
        super().__init__({**env, "ITS_EMULATED_KEYS": str(self.keys)}, tmp_path)
        self.codes: list[str] = []

    def keys_env(self, name: str) -> dict[str, str]:
        """The environment that plugs in another pair of keys (`keys/<name>.json`) instead."""
        return {"ITS_EMULATED_KEYS": str(self.tmp_path / "keys" / f"{name}.json")}

    def restore(self, template: Template, vault: Path | None = None) -> Template:
        """Copy a template's vault (with its audit files) and its keys file into this test."""
        vault = vault or self.vault
        vault.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for path in (p for p in (template.root / "cli").iterdir() if p.is_file()):  # not the .backups folder
            shutil.copyfile(path, vault.with_name(path.name.replace("vault.its", vault.name)))
        if (template.root / "keys" / "a.json").exists() and not self.keys.exists():
            self.keys.parent.mkdir(exist_ok=True)
            shutil.copyfile(template.root / "keys" / "a.json", self.keys)
        self.codes.append(template.code)
        return template

    # -- shortcuts -------------------------------------------------------------------------

    def init(self) -> str:
        """Creates the vault holding `k` = VALUE; returns the recovery code."""
        code = self.ok(*FAST_INIT).stdout.strip()
        self.codes.append(code)
        assert self.ok("set", "k", "--value-stdin", input=VALUE).stdout == ""
        return code

    def enrol(self, kind: str, *options: str, **run_options) -> KeySlot:
        """`factor add KIND`; returns the slot it added (read from the vault file)."""
        before = {s.id for s in self.slots()}
        result = self.ok("factor", "add", kind, *options, **run_options)
        assert result.stdout == ""
        (added,) = [s for s in self.slots() if s.id not in before]
        assert added.kind == kind
        return added

    def slots(self, path: Path | None = None) -> tuple[KeySlot, ...]:
        return parse_file((path or self.vault).read_bytes()).header.slots

    def slot(self, slot_id: str, path: Path | None = None) -> KeySlot:
        (slot,) = [s for s in self.slots(path) if s.id == slot_id]
        return slot

    def slot_id(self, kind: str, path: Path | None = None) -> str:
        (slot_id,) = [s.id for s in self.slots(path) if s.kind == kind]
        return slot_id

    def remove_password_slot(self, **options) -> None:
        self.ok("factor", "rm", self.slot_id("password"), **options)
        assert "password" not in {s.kind for s in self.slots()}

    def audit_json(self, **options) -> list[dict]:
        return [json.loads(line) for line in self.ok("audit", "--json", **options).stdout.splitlines()]

    def get(self, **options) -> str:
        return self.ok("get", "k", **options).stdout

    # -- secret hygiene --------------------------------------------------------------------

    def key_secrets(self) -> list[str]:
        """The emulated keys' own secrets (HMAC keys, FIDO2 master secrets), from every key file."""
        found = []
        for path in (self.tmp_path / "keys").glob("*.json"):
            state = json.loads(path.read_text())
            found.append(state["fido2"]["master_secret"])
            found.extend(record["key"] for record in state["yubikey"]["slots"].values() if record)
        return found

    def assert_clean(self) -> None:
        """No value, password, PIN, recovery code or key secret in any stderr, in any stdout but
        `get`'s (and the codes `init` and `factor add recovery` print), in the audit files or any
        other file beside the vault; no internal error was logged."""
        needles = {VALUE, PASSWORD, WRONG_PASSWORD, NEW_PASSWORD, PIN, WRONG_PIN, *self.codes, *self.key_secrets()}
        needles |= {json.dumps(n)[1:-1] for n in list(needles)}
        for result in self.results:
            prints_secrets = "get" in result.args or "init" in result.args or result.args[-2:] == ("add", "recovery")
            for needle in needles:
                assert needle not in result.stderr, f"a secret leaked into the stderr of {result.args}"
                if not prints_secrets:
                    assert needle not in result.stdout, f"a secret leaked into the stdout of {result.args}"
        beside = [p for p in self.vault.parent.iterdir() if p.is_file()]
        assert any(p.name.endswith(".audit") for p in beside)
        for path in beside:
            data = path.read_bytes()
            for needle in needles:
                assert needle.encode("utf-8") not in data, f"a secret is in plain text in {path.name}"
        assert not list((self.tmp_path / "state").rglob("*.log")), "an unexpected internal error was logged"


@pytest.fixture
def cli(cli_env, tmp_path) -> Cli:
    return Cli(cli_env, tmp_path)


TEMPLATES = {
    "plain": (),  # password and recovery slots, `k` set
    "yubikey2": ("yubikey", "--slot", "2"),  # + a YubiKey slot-2 (touch) factor, password slot removed
    "fido2": ("fido2",),  # + a FIDO2 factor, password slot removed
}


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, Template]:
    """The starting vaults, made once by real CLI runs in an environment like `cli_env`'s."""

    def build(name: str, enrolment: tuple[str, ...]) -> tuple[str, Template]:
        root = tmp_path_factory.mktemp(f"template-{name}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ITS_")}
        env.update({"ITS_VAULT_PATH": str(root / "cli" / "vault.its"), "ITS_MASTER_PASSWORD": PASSWORD,
                    "XDG_STATE_HOME": str(root / "state"), "XDG_DATA_HOME": str(root / "data"),
                    "ITS_LOCK_TIMEOUT": "20"})
        maker = Cli(env, root)
        code = maker.init()
        slot_id = None
        if enrolment:
            slot_id = maker.enrol(*enrolment).id
            maker.remove_password_slot()
        maker.assert_clean()
        return name, Template(root, code, slot_id)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(lambda item: build(*item), TEMPLATES.items()))


def ok_unlocks(audit: list[dict]) -> list[str]:
    return [r["detail"] for r in audit if r["op"] == "unlock" and r["outcome"] == "ok"]


def failed_unlocks(audit: list[dict]) -> list[dict]:
    return [r for r in audit if r["op"] == "unlock" and r["outcome"] != "ok"]


def unlock_by(audit: list[dict], result: Result) -> str:
    """The slot a run unlocked with, from its own audit record."""
    (detail,) = [r["detail"] for r in audit
                 if r["op"] == "unlock" and r["outcome"] == "ok" and r["actor"]["pid"] == result.pid]
    return detail


# -- enrol and unlock ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, options", ENROLMENTS)
def test_enrol_then_password_and_key_unlock(cli, templates, kind, options):
    cli.restore(templates["plain"])
    slot = cli.enrol(kind, *options, "--name", "my key")
    assert slot.name == "my key"
    keys = json.loads(cli.keys.read_text())
    if kind == "yubikey":
        assert slot.params["serial"] == keys["yubikey"]["serial"]
        assert slot.params["otp_slot"] == int(options[1])
        assert len(base64.b64decode(slot.params["challenge"])) == 32
    else:
        assert slot.params["rp_id"] == "its-desktop"
        assert len(base64.b64decode(slot.params["credential_id"])) > 16
        assert len(base64.b64decode(slot.params["salt"])) == 32
        assert (slot.params["pin"], slot.params["up"], slot.params["uv"]) == (False, True, "discouraged")
    cli.remove_password_slot()

    plain, forced, key_alone = cli.run_all(
        call("get", "k"), call("--factor", kind, "get", "k"),
        call("get", "k", env={"ITS_MASTER_PASSWORD": WRONG_PASSWORD}))  # both are needed
    assert expect_ok(plain).stdout == VALUE + "\n"
    assert expect_ok(forced).stdout == VALUE + "\n"
    expect_failure(key_alone, 3)
    audit = cli.audit_json()
    assert unlock_by(audit, plain) == unlock_by(audit, forced) == f"{kind} slot {slot.id}"
    assert len(failed_unlocks(audit)) == 1
    cli.assert_clean()


def test_factor_list_json_shape_and_types(cli, templates):
    cli.restore(templates["plain"])
    cli.enrol("yubikey")
    cli.enrol("yubikey", "--slot", "1", "--name", "spare yubikey")
    cli.enrol("fido2", "--name", "blue key")
    as_json, as_text, bad_slot, bad_type = cli.run_all(
        call("factor", "list", "--json"), call("factor", "list"),
        call("factor", "add", "yubikey", "--slot", "3"), call("factor", "add", "smartcard"))
    expect_failure(bad_slot, 2)
    expect_failure(bad_type, 2)
    rows = json.loads(expect_ok(as_json).stdout)
    assert isinstance(rows, list) and len(rows) == 5
    for row in rows:
        assert isinstance(row, dict) and set(row) == {"id", "type", "name", "created"}, row
        assert all(isinstance(v, str) and v for v in row.values()), row
        created = datetime.fromisoformat(row["created"])
        assert created.tzinfo is not None
        assert abs(created - datetime.now(timezone.utc)) < timedelta(hours=1), row
    assert [r["type"] for r in rows] == ["password", "recovery", "yubikey", "yubikey", "fido2"]
    assert [r["id"] for r in rows] == [s.id for s in cli.slots()]
    assert len({r["id"] for r in rows}) == 5
    assert [r["name"] for r in rows[3:]] == ["spare yubikey", "blue key"]
    assert rows[2]["name"] != ""
    text = expect_ok(as_text).stdout.splitlines()
    assert len(text) == 5
    for line, row in zip(text, rows):
        assert row["id"] in line and row["type"] in line and row["name"] in line

    new_code = cli.ok("factor", "add", "recovery").stdout.strip()
    cli.codes.append(new_code)
    after = json.loads(cli.ok("factor", "list", "--json").stdout)
    assert [r["type"] for r in after] == ["password", "yubikey", "yubikey", "fido2", "recovery"]
    assert after[-1]["id"] != rows[1]["id"]
    cli.assert_clean()


# -- refusals: wrong password, wrong key, missing key, tampering ------------------------------------


def _reprogrammed_copy(cli: Cli, kind: str) -> dict[str, str]:
    """The same device (same serial, same FIDO2 model) with a new secret, as after a reset or a
    re-programmed OTP slot: a different key that the same password must not open with."""
    state = json.loads(cli.keys.read_text())
    if kind == "yubikey":
        for record in state["yubikey"]["slots"].values():
            record["key"] = os.urandom(16).hex()
    else:
        state["fido2"]["master_secret"] = os.urandom(32).hex()
    env = cli.keys_env("reprogrammed")
    Path(env["ITS_EMULATED_KEYS"]).write_text(json.dumps(state))
    return env


@pytest.mark.parametrize("kind", ["yubikey2", "fido2"])
def test_wrong_password_wrong_key_missing_key_are_exit_3_with_one_message(cli, templates, kind):
    cli.restore(templates[kind])
    kind = KIND_OF[kind]
    reprogrammed = _reprogrammed_copy(cli, kind)
    before = cli.vault.read_bytes()
    wrong_password, missing_key, same_password_other_key = cli.all_fail(
        3,
        call("get", "k", env={"ITS_MASTER_PASSWORD": WRONG_PASSWORD}),
        call("get", "k", unset=NO_KEYS),
        call("get", "k", env=reprogrammed),
    )
    assert cli.vault.read_bytes() == before, "a failed unlock changed the vault file"
    assert cli.get() == VALUE + "\n"  # (and clears the failure count)
    before = cli.vault.read_bytes()
    wrong_key, forced = cli.all_fail(3, call("get", "k", env=cli.keys_env("b")),
                                     call("--factor", kind, "get", "k", env=cli.keys_env("b")))
    assert cli.vault.read_bytes() == before, "a failed unlock changed the vault file"
    for result in (wrong_password, wrong_key, missing_key, same_password_other_key, forced):
        assert result.stdout == ""
    cli.assert_clean()
    # a wrong key and a wrong password get the same message
    assert error_line(same_password_other_key) == error_line(wrong_password)
    assert error_line(wrong_key) == error_line(wrong_password), \
        f"wrong key: {error_line(wrong_key)!r}, wrong password: {error_line(wrong_password)!r}"
    assert error_line(forced) == error_line(wrong_password)


def _value_span(header: str, slot_id: str, field: str) -> tuple[int, int]:
    """Where `field`'s value sits in the canonical header JSON of slot `slot_id` (a field of the
    slot's params when prefixed with "params.")."""
    start = header.index(f'"id":"{slot_id}"')
    params = header.index('"params":{', start)
    params_end = header.index('},"salt":', params)
    inside_params = field.startswith("params.")
    name = field.removeprefix("params.")
    at = header.index(f'"{name}":', params if inside_params else params_end) + len(name) + 3
    assert (at < params_end) == inside_params
    end = at
    while header[end] not in '",}':
        end += 1
    if header[at] == '"':
        at += 1
        end = header.index('"', at)
    return at, end


def _substitute(char: str) -> str:
    """Another character of the same class, so the header stays well-formed JSON and base64."""
    if char.isdigit():
        return str((int(char) + 1) % 10)
    if char.isalpha():
        return char.swapcase()
    return {"+": "/", "/": "+"}[char]


TAMPERED_FIELDS = {
    "yubikey2": ["wrapped", "salt", "params.challenge", "params.serial"],
    "fido2": ["wrapped", "salt", "params.salt", "params.credential_id"],
}


@pytest.mark.parametrize("kind", ["yubikey2", "fido2"])
def test_a_tampered_slot_is_exit_5_and_the_file_is_untouched(cli, templates, kind, tmp_path):
    template = cli.restore(templates[kind])
    good = cli.vault.read_bytes()
    header_length = int.from_bytes(good[10:14], "big")
    header = good[PREFIX.size:PREFIX.size + header_length].decode("ascii")
    copies = {}
    for field in TAMPERED_FIELDS[kind]:
        start, end = _value_span(header, template.slot_id, field)
        offset = PREFIX.size + (start + end) // 2
        data = bytearray(good)
        data[offset] = ord(_substitute(chr(data[offset])))
        path = tmp_path / f"tampered-{field}.its"
        path.write_bytes(bytes(data))
        copies[field] = (path, bytes(data))
    results = cli.run_all(*(call("--vault", str(path), "get", "k") for path, _ in copies.values()))
    assert cli.get() == VALUE + "\n"  # the untouched vault still opens
    for field, (path, data) in copies.items():
        assert path.read_bytes() == data, f"{field}: the tampered file was modified"
    cli.assert_clean()
    for field, result in zip(copies, results):
        assert result.code == 5, f"one byte changed in the slot's {field}: exit {result.code}, {result.stderr!r}"
        expect_failure(result, 5)


# -- several keys, PIN, touch ----------------------------------------------------------------------


def test_two_fido2_keys_enrolled_either_one_unlocks(cli, templates):
    cli.restore(templates["plain"])
    first = cli.enrol("fido2", "--name", "key A")
    second = cli.enrol("fido2", "--name", "key B", env=cli.keys_env("b"))
    cli.remove_password_slot()
    with_first, with_second, with_third = cli.run_all(call("get", "k"), call("get", "k", env=cli.keys_env("b")),
                                                      call("get", "k", env=cli.keys_env("c")))
    assert expect_ok(with_first).stdout == VALUE + "\n"
    assert expect_ok(with_second).stdout == VALUE + "\n"
    expect_failure(with_third, 3)
    audit = cli.audit_json()
    # each unlocked with the slot of the key that was plugged in
    assert unlock_by(audit, with_first) == f"fido2 slot {first.id}"
    assert unlock_by(audit, with_second) == f"fido2 slot {second.id}"
    cli.assert_clean()


def test_pin_protected_fido2_key(cli, templates):
    cli.env["ITS_EMULATED_KEYS_PIN"] = PIN  # set before the key file is first created
    cli.restore(templates["plain"])
    assert not cli.keys.exists()
    initial = cli.slots()
    cli.all_fail(3, call("factor", "add", "fido2"),  # no PIN, and no terminal to ask for one
                 call("factor", "add", "fido2", env={"ITS_FIDO2_PIN": WRONG_PIN}))
    assert cli.slots() == initial, "a refused enrolment added a slot"
    assert json.loads(cli.keys.read_text())["fido2"]["pin_hash"]
    slot = cli.enrol("fido2", env={"ITS_FIDO2_PIN": PIN})
    assert (slot.params["pin"], slot.params["uv"]) == (True, "required")
    cli.remove_password_slot(env={"ITS_FIDO2_PIN": PIN})
    right, wrong, missing = cli.run_all(call("get", "k", env={"ITS_FIDO2_PIN": PIN}),
                                        call("get", "k", env={"ITS_FIDO2_PIN": WRONG_PIN}),
                                        call("get", "k"))  # no PIN and no terminal to ask
    assert expect_ok(right).stdout == VALUE + "\n"
    expect_failure(wrong, 3)
    expect_failure(missing, 3)
    assert error_line(wrong) != error_line(missing)  # the user learns which one to fix
    cli.assert_clean()


def test_an_unlock_failed_on_a_wrong_pin_is_audited(cli, templates):
    cli.env["ITS_EMULATED_KEYS_PIN"] = PIN
    cli.restore(templates["plain"])
    cli.enrol("fido2", env={"ITS_FIDO2_PIN": PIN})
    wrong = cli.fails(3, "--factor", "fido2", "get", "k", env={"ITS_FIDO2_PIN": WRONG_PIN})
    audit = cli.audit_json(env={"ITS_FIDO2_PIN": PIN})
    cli.assert_clean()
    assert wrong.pid in {r["actor"]["pid"] for r in failed_unlocks(audit)}, \
        "an unlock that failed on a wrong PIN left no audit record"


def test_touch_timeout_is_exit_3_within_seconds(cli, templates):
    cli.restore(templates["plain"])
    for result in cli.run_all(call("factor", "add", "yubikey"),  # slot 2: wants a touch
                              call("factor", "add", "fido2")):
        expect_ok(result)
    before = cli.vault.read_bytes()
    initial = cli.slots()
    assert sorted(s.kind for s in initial) == ["fido2", "password", "recovery", "yubikey"]
    *results, fallback = cli.run_all(
        call("--factor", "yubikey", "get", "k", env=NEVER_TOUCHED),
        call("--factor", "fido2", "get", "k", env=NEVER_TOUCHED),
        call("--factor", "password", "factor", "add", "fido2", env=NEVER_TOUCHED),  # the enrolment's touch
        call("get", "k", env=NEVER_TOUCHED),
    )
    # A key left untouched does not lock the password slot out: it is tried next.
    assert fallback.code == 0 and fallback.stdout == VALUE + "\n", fallback
    for result in results:
        expect_failure(result, 3, touch_prompts=True)
        assert result.seconds < 5, f"{result.args} took {result.seconds:.1f} s"
        assert result.stdout == ""
        assert "touch" in error_line(result).lower()
    assert cli.vault.read_bytes() == before
    # a slow touch is waited for, and the user is told to touch
    slow = cli.ok("--factor", "yubikey", "get", "k", env={"ITS_EMULATED_TOUCH": "300"})
    assert slow.stdout == VALUE + "\n" and "Touch your YubiKey" in slow.stderr and slow.seconds >= 0.3
    cli.assert_clean()


# -- recovery ------------------------------------------------------------------------------------


def test_recovery_code_unlocks_and_re_enrols_a_key(cli, templates):
    code = cli.restore(templates["plain"]).code
    cli.enrol("fido2", "--name", "lost key")
    initial = cli.slots()
    recovery = {"ITS_RECOVERY_CODE": code}
    by_code, refused = cli.run_all(
        call("--factor", "recovery", "get", "k", env=recovery, unset=NO_PASSWORD_ENV),
        # a new key must be bound to the vault's password, not to any password
        call("--factor", "recovery", "factor", "add", "fido2",
             env={**recovery, **cli.keys_env("b"), "ITS_MASTER_PASSWORD": WRONG_PASSWORD}),
    )
    assert expect_ok(by_code).stdout == VALUE + "\n"
    expect_failure(refused, 3)
    assert cli.slots() == initial, "a refused enrolment changed the slots"
    cli.ok("--factor", "recovery", "factor", "add", "fido2", "--name", "replacement",
           env={**recovery, **cli.keys_env("b")})
    (replacement,) = [s for s in cli.slots() if s.id not in {i.id for i in initial}]
    assert replacement.kind == "fido2" and replacement.name == "replacement"
    old_key, new_key, new_key_wrong_password = cli.run_all(
        call("--factor", "fido2", "get", "k"), call("--factor", "fido2", "get", "k", env=cli.keys_env("b")),
        call("--factor", "fido2", "get", "k", env={**cli.keys_env("b"), "ITS_MASTER_PASSWORD": WRONG_PASSWORD}))
    assert expect_ok(old_key).stdout == VALUE + "\n"
    assert expect_ok(new_key).stdout == VALUE + "\n"
    expect_failure(new_key_wrong_password, 3)
    cli.assert_clean()


def test_factor_add_recovery_prints_a_new_code_and_the_old_one_stops_working(cli, templates):
    old = cli.restore(templates["plain"]).code
    result = cli.ok("factor", "add", "recovery")
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1
    new = result.stdout.strip()
    cli.codes.append(new)
    assert new != old and len(new) == len(old) and not re.search(r"\s", new)
    assert new not in result.stderr
    with_old, with_new = cli.run_all(
        call("--factor", "recovery", "get", "k", env={"ITS_RECOVERY_CODE": old}, unset=NO_PASSWORD_ENV),
        call("--factor", "recovery", "get", "k", env={"ITS_RECOVERY_CODE": new}, unset=NO_PASSWORD_ENV))
    expect_failure(with_old, 3)
    assert expect_ok(with_new).stdout == VALUE + "\n"
    assert [s.kind for s in cli.slots()].count("recovery") == 1
    cli.assert_clean()


def test_removing_the_last_way_in_is_refused(cli, templates, tmp_path):
    key_only = cli.restore(templates["yubikey2"])  # recovery + YubiKey: password + key required
    password_only = tmp_path / "password-only" / "vault.its"
    cli.restore(templates["plain"], password_only)  # recovery + password
    before = {path: path.read_bytes() for path in (cli.vault, password_only)}
    last_key, last_password, unknown = cli.all_fail(
        (1, 2),
        call("factor", "rm", key_only.slot_id),
        call("--vault", str(password_only), "factor", "rm", cli.slot_id("password", password_only)),
        call("--vault", str(password_only), "factor", "rm", "no-such-id"))
    assert "no-such-id" in unknown.stderr
    assert [s.kind for s in cli.slots()] == ["recovery", "yubikey"], "the last way in was removed"
    assert cli.slots(password_only) == parse_file(before[password_only]).header.slots
    assert password_only.read_bytes() == before[password_only], "a refused removal changed the vault"
    assert cli.get() == VALUE + "\n"  # and both still open
    assert cli.ok("--vault", str(password_only), "get", "k").stdout == VALUE + "\n"
    for result in (last_key, last_password, unknown):
        assert result.stdout == ""
    cli.assert_clean()


# -- re-arm ----------------------------------------------------------------------------------------


def _captured_response(cli: Cli, kind: str, slot: KeySlot, monkeypatch) -> bytes:
    """What the key answered for the slot's current input: what an eavesdropper on the USB
    link (or malware on this machine) could capture during an unlock."""
    value = base64.b64decode(slot.params[INPUT_PARAM[kind]])
    if kind == "yubikey":
        record = json.loads(cli.keys.read_text())["yubikey"]["slots"][str(slot.params["otp_slot"])]
        secret = bytes.fromhex(record["key"]) + bytes.fromhex(record["uid"])[:4]
        return hmac.new(secret, value, hashlib.sha1).digest()
    from its_desktop.factors import hardware
    from its_desktop.factors.base import QuietPrompter

    monkeypatch.setenv("ITS_EMULATED_KEYS", str(cli.keys))
    for name in ("ITS_EMULATED_TOUCH", "ITS_EMULATED_KEYS_PIN"):
        monkeypatch.delenv(name, raising=False)
    (key,) = hardware.list_keys("fido2")
    (output,) = key.respond(slot.params, [value], QuietPrompter())
    return output


@pytest.mark.parametrize("template", ["yubikey2", "fido2"])
def test_every_unlock_rearms_the_slot_and_a_captured_response_is_useless(cli, templates, template, tmp_path,
                                                                          monkeypatch):
    slot_id = cli.restore(templates[template]).slot_id
    kind = KIND_OF[template]
    first = cli.slot(slot_id)
    aside = tmp_path / "copied-aside.its"
    aside.write_bytes(cli.vault.read_bytes())
    captured = _captured_response(cli, kind, first, monkeypatch)
    vault_id = parse_file(aside.read_bytes()).header.vault_id

    seen = [first]
    for _ in range(2):
        assert cli.get() == VALUE + "\n"
        now = cli.slot(slot_id)
        for earlier in seen:
            assert now.params[INPUT_PARAM[kind]] != earlier.params[INPUT_PARAM[kind]], "the input was not re-armed"
            assert now.wrapped != earlier.wrapped, "the slot still wraps the same value"
        assert (now.kind, now.name, now.salt, now.created) == (first.kind, first.name, first.salt, first.created)
        seen.append(now)

    # a failed unlock re-arms nothing
    before = cli.vault.read_bytes()
    cli.fails(3, "get", "k", env={"ITS_MASTER_PASSWORD": WRONG_PASSWORD})
    assert cli.vault.read_bytes() == before

    # the response captured before the unlocks opened the slot as it was, not as it is now
    assert cli.slot(slot_id, aside) == first
    material = slotlib.stretch_password(PASSWORD, first.salt, first.kdf) + bytearray(captured)
    assert len(slotlib.open_with_material(first, material, vault_id)) == 32
    with pytest.raises(IncorrectFactor):
        slotlib.open_with_material(seen[-1], material, vault_id)
    cli.assert_clean()


# -- passwd ----------------------------------------------------------------------------------------


def test_passwd_with_keys_plugged_rewraps_them(cli, templates):
    cli.restore(templates["plain"])
    for result in cli.run_all(call("factor", "add", "yubikey"), call("factor", "add", "fido2"),
                              call("factor", "add", "fido2", "--name", "in a drawer", env=cli.keys_env("b"))):
        expect_ok(result)
    before = {s.id: s for s in cli.slots()}
    yubikey = cli.slot_id("yubikey")
    (fido2,) = [s.id for s in before.values() if s.kind == "fido2" and s.name != "in a drawer"]
    (absent,) = [s.id for s in before.values() if s.name == "in a drawer"]
    result = cli.ok("passwd", env={"ITS_NEW_MASTER_PASSWORD": NEW_PASSWORD})
    after = {s.id: s for s in cli.slots()}
    assert yubikey in after and fido2 in after
    assert after[yubikey].wrapped != before[yubikey].wrapped
    assert after[fido2].wrapped != before[fido2].wrapped
    # a key that was not plugged in cannot be re-wrapped: it goes, and the user is told
    assert absent not in after and absent in result.stderr
    old = {"ITS_MASTER_PASSWORD": PASSWORD}
    new = {"ITS_MASTER_PASSWORD": NEW_PASSWORD}
    # (at most two failures in a row, so that no attempt has to wait for the back-off)
    cli.all_fail(3, call("--factor", "yubikey", "get", "k", env=old), call("--factor", "fido2", "get", "k", env=old))
    for result in cli.run_all(call("--factor", "yubikey", "get", "k", env=new),
                              call("--factor", "fido2", "get", "k", env=new),
                              call("--factor", "password", "get", "k", env=new)):
        assert expect_ok(result).stdout == VALUE + "\n"
    cli.all_fail(3, call("--factor", "password", "get", "k", env=old),
                 call("--factor", "fido2", "get", "k", env={**new, **cli.keys_env("b")}))
    cli.assert_clean()


def test_passwd_without_a_password_slot_rewraps_the_keys(cli, templates):
    slot_id = cli.restore(templates["yubikey2"]).slot_id
    before = cli.slot(slot_id)
    cli.ok("passwd", env={"ITS_NEW_MASTER_PASSWORD": NEW_PASSWORD})
    assert [s.kind for s in cli.slots()] == ["recovery", "yubikey"]
    assert cli.slot(slot_id).wrapped != before.wrapped
    old, new = cli.run_all(call("get", "k"), call("get", "k", env={"ITS_MASTER_PASSWORD": NEW_PASSWORD}))
    expect_failure(old, 3)
    assert expect_ok(new).stdout == VALUE + "\n"
    cli.assert_clean()


# -- back-off --------------------------------------------------------------------------------------


def test_failed_unlocks_back_off_and_are_audited(cli, templates):
    cli.restore(templates["fido2"])
    failures = cli.all_fail(3, call("get", "k", env={"ITS_MASTER_PASSWORD": WRONG_PASSWORD}),
                            call("get", "k", env=cli.keys_env("b")),
                            call("get", "k", env={**cli.keys_env("b"), "ITS_MASTER_PASSWORD": WRONG_PASSWORD}))
    assert len({error_line(r) for r in failures}) == 1  # wrong password, wrong key, both: one message
    counted = throttle.read_failures(cli.vault)
    assert counted.count == 3
    waited = cli.ok("get", "k")
    finished = time.time()
    assert waited.stdout == VALUE + "\n"
    assert finished - counted.last >= 1.0, "the fourth attempt did not wait 1 s after the third failure"
    assert waited.seconds >= 0.5
    assert "wait" in waited.stderr
    audit = cli.audit_json()
    failed = failed_unlocks(audit)
    assert len(failed) == 3
    assert {r["actor"]["pid"] for r in failed} == {r.pid for r in failures}
    own = next(r for r in audit if r["op"] == "unlock" and r["actor"]["pid"] == waited.pid)
    assert all(r["seq"] < own["seq"] for r in failed)
    # a success clears the count: the next attempt runs at once
    assert throttle.read_failures(cli.vault).count == 0
    again = cli.ok("get", "k")
    assert "wait" not in again.stderr
    cli.assert_clean()
