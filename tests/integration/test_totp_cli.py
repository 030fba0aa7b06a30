"""`its-vault totp` as a user or a script runs it: real subprocesses, QR images made with segno,
exact stdout, exit codes, one-line errors, and no secret on any terminal stream."""

from __future__ import annotations

import json
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
import segno
from PIL import Image

from its_desktop.core import totp
from its_desktop.services import qr
from tests.conftest import ITS_VAULT, PASSWORD

FAST_INIT = ("init", "--kdf-memory", "8", "--kdf-time", "1")
SHA1_SEED = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # RFC 6238's "12345678901234567890"
SHA512_SEED = "GEZDGNBVGY3TQOJQ" * 6 + "GEZDGNA="  # its 64-byte seed, with the padding some apps write
SECRET = "KRSXG5CTMVRXEZLUKVXGS4LVMVPQ"  # a distinctive secret for the leak checks
WRONG_PASSWORD = "not the master password uniq-73b1"


@dataclass
class Run:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str


class TotpCli:
    """Runs `its-vault` in the test's private environment and keeps every run for the leak check."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd, self.runs = env, cwd, []

    def run(self, *args: str, input: str | None = None, env: dict[str, str] | None = None,
            unset: tuple[str, ...] = ()) -> Run:
        full_env = {k: v for k, v in {**self.env, **(env or {})}.items() if k not in unset}
        proc = subprocess.run([*ITS_VAULT, *args], input=None if input is None else input.encode(),
                              stdin=subprocess.DEVNULL if input is None else None, capture_output=True,
                              env=full_env, cwd=self.cwd, timeout=120)
        run = Run(args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())
        self.runs.append(run)
        return run

    def ok(self, *args: str, **options) -> Run:
        run = self.run(*args, **options)
        assert run.code == 0, f"its-vault {' '.join(args)} -> {run.code}: {run.stderr}"
        return run

    def fails(self, code: int, *args: str, **options) -> Run:
        run = self.run(*args, **options)
        assert run.code == code, f"its-vault {' '.join(args)} -> {run.code}, expected {code}: {run.stderr}"
        assert run.stderr.startswith("its-vault: error: ") and run.stderr.count("\n") == 1, run.stderr
        assert "Traceback" not in run.stderr
        return run

    def side_by_side(self, *calls: tuple[tuple[str, ...], dict]) -> list[Run]:
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda c: self.run(*c[0], **c[1]), calls))

    def assert_no_leak(self, *secrets: str) -> None:
        for run in self.runs:
            for secret in secrets:
                assert secret not in run.stderr, f"a secret leaked into the stderr of {run.args}"
                assert secret not in run.stdout, f"a secret leaked into the stdout of {run.args}"


@pytest.fixture
def cli(cli_env, tmp_path) -> TotpCli:
    runner = TotpCli(cli_env, tmp_path)
    runner.ok(*FAST_INIT)
    return runner


def _qr_png(path: Path, uri: str) -> Path:
    segno.make(uri, error="m", micro=False).save(str(path), kind="png", scale=5)
    return path


def test_add_from_stdin_and_from_a_qr_image_then_print_codes(cli, tmp_path):
    sha1 = f"otpauth://totp/RFC:sha1?secret={SHA1_SEED}&issuer=RFC&digits=8"
    sha512 = f"otpauth://totp/RFC:sha512?secret={SHA512_SEED}&issuer=RFC&digits=8&algorithm=SHA512"
    own = f"otpauth://totp/Acme%20Exchange:desk@acme?secret={SECRET}&issuer=Acme%20Exchange&period=60"
    image = _qr_png(tmp_path / "acme.png", own)
    for run in cli.side_by_side(
        (("totp", "add", "totp/rfc-sha1", "--uri-stdin"), {"input": sha1 + "\n"}),
        # the password line first, then the URI: the order every --password-stdin command uses
        (("totp", "add", "totp/rfc-sha512", "--uri-stdin", "--password-stdin"),
         {"input": f"{PASSWORD}\n{sha512}\n", "unset": ("ITS_MASTER_PASSWORD",)}),
        (("totp", "add", "totp/acme", "--qr", str(image)), {}),
    ):
        assert run.code == 0 and run.stdout == "", run.stderr
    first, second, third, now = cli.side_by_side(
        (("totp", "code", "totp/rfc-sha1", "--at", "59"), {}),
        (("totp", "code", "totp/rfc-sha512", "--at", "1111111109"), {}),
        (("totp", "code", "totp/acme", "--at", "1700000000"), {}),
        (("totp", "code", "totp/acme"), {}),
    )
    assert first.stdout == "94287082\n"  # RFC 6238 Appendix B
    assert second.stdout == "25091201\n"
    assert third.stdout == pyotp.TOTP(SECRET, interval=60).at(1700000000) + "\n"
    assert now.code == 0 and len(now.stdout) == 7 and now.stdout[:6].isdigit()
    rows = {r["name"]: r for r in json.loads(cli.ok("list", "--json").stdout)}
    assert rows["totp/acme"]["type"] == "totp"
    assert rows["totp/acme"]["fields"] == ["account", "algorithm", "digits", "issuer", "kind", "period"]
    assert cli.ok("get", "totp/acme", "--field", "issuer").stdout == "Acme Exchange\n"
    cli.assert_no_leak(SECRET, SHA512_SEED)


def test_hotp_codes_use_up_the_counter(cli):
    cli.ok("totp", "add", "totp/bank", "--uri-stdin", input=f"otpauth://hotp/Bank:ada?secret={SECRET}&counter=3")
    codes = [cli.ok("totp", "code", "totp/bank").stdout for _ in range(2)]
    reference = pyotp.HOTP(SECRET)
    assert codes == [reference.at(3) + "\n", reference.at(4) + "\n"]
    assert cli.ok("get", "totp/bank", "--field", "counter").stdout == "5\n"
    cli.fails(2, "totp", "code", "totp/bank", "--at", "59")
    assert cli.ok("get", "totp/bank", "--field", "counter").stdout == "5\n"


def test_qr_reauthenticates_and_writes_a_private_png_that_round_trips(cli, tmp_path):
    uri = f"otpauth://totp/Acme:desk?secret={SECRET}&issuer=Acme&algorithm=SHA256&digits=7&period=45"
    cli.ok("totp", "add", "totp/acme", "--uri-stdin", input=uri)
    out = tmp_path / "export" / "acme.png"
    out.parent.mkdir()
    assert cli.ok("totp", "qr", "totp/acme", "--out", str(out)).stdout == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    (decoded,) = qr.decode_file(out)
    assert decoded == totp.parse_uri(uri).uri() and totp.parse_uri(decoded) == totp.parse_uri(uri)
    assert sorted(p.name for p in out.parent.iterdir()) == ["acme.png"]  # no temporary file left
    # an existing file (even one open to others) is replaced by a private one
    out.chmod(0o644)
    cli.ok("totp", "qr", "totp/acme", "--out", str(out))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    audit = [json.loads(line) for line in cli.ok("audit", "--json").stdout.splitlines()]
    exports = [e for e in audit if e["op"] == "export"]
    assert [(e["name"], e["detail"]) for e in exports] == [("totp/acme", "totp qr")] * 2
    assert [e["outcome"] for e in audit if e["op"] == "reauth"] == ["ok", "ok"]
    cli.assert_no_leak(SECRET)


def test_qr_needs_the_master_password_whatever_opened_the_vault(cli, tmp_path, cli_env):
    recovery = cli.runs[0].stdout.strip()  # init printed it
    cli.ok("totp", "add", "totp/acme", "--uri-stdin", input=f"otpauth://totp/Acme:desk?secret={SECRET}")
    out = tmp_path / "qr.png"
    by_recovery = {"env": {"ITS_RECOVERY_CODE": recovery}, "unset": ("ITS_MASTER_PASSWORD",)}
    wrong_unlock, wrong_reauth, right = cli.side_by_side(
        (("totp", "qr", "totp/acme", "--out", str(out)), {"env": {"ITS_MASTER_PASSWORD": WRONG_PASSWORD}}),
        (("totp", "qr", "totp/acme", "--out", str(out), "--factor", "recovery", "--password-stdin"),
         {**by_recovery, "input": WRONG_PASSWORD + "\n"}),
        (("totp", "qr", "totp/acme", "--out", str(tmp_path / "right.png"), "--factor", "recovery",
          "--password-stdin"), {**by_recovery, "input": PASSWORD + "\n"}),
    )
    for run in (wrong_unlock, wrong_reauth):
        assert run.code == 3 and run.stderr.count("\n") == 1 and run.stdout == "", run.stderr
    assert "re-authentication" in wrong_reauth.stderr
    assert not out.exists()
    assert right.code == 0, right.stderr
    assert qr.decode_file(tmp_path / "right.png") == [totp.parse_uri(f"otpauth://totp/Acme:desk?secret={SECRET}").uri()]
    cli.assert_no_leak(SECRET, WRONG_PASSWORD, PASSWORD)


def test_missing_accounts_and_bad_input_fail_in_one_line(cli, tmp_path):
    cli.ok("set", "keys/api", "--value-stdin", input=SECRET)
    blank = tmp_path / "blank.png"
    Image.new("L", (120, 120), 255).save(blank)
    other_text = _qr_png(tmp_path / "text.png", "just text, no account")
    not_image = tmp_path / "not-an-image.png"
    not_image.write_text(SECRET)
    runs = cli.side_by_side(
        (("totp", "code", "totp/missing"), {}),
        (("totp", "qr", "totp/missing", "--out", str(tmp_path / "m.png")), {}),
        (("totp", "add", "totp/bad", "--uri-stdin"), {"input": f"otpauth://totp/x?secret={SECRET}&algorithm=MD5"}),
        (("totp", "add", "totp/bad", "--uri-stdin"), {"input": f"otpauth://totp/x?secret={SECRET}1"}),
        (("totp", "add", "totp/bad", "--uri-stdin"), {"input": f"https://example.com/?secret={SECRET}"}),
        (("totp", "add", "totp/bad", "--uri-stdin"), {"input": ""}),
        (("totp", "add", "totp/bad", "--qr", str(blank)), {}),
        (("totp", "add", "totp/bad", "--qr", str(other_text)), {}),
        (("totp", "add", "totp/bad", "--qr", str(not_image)), {}),
        (("totp", "add", "totp/bad", "--qr", str(tmp_path / "nowhere.png")), {}),
        (("totp", "code", "keys/api"), {}),  # not a one-time-code account
        (("totp", "add", "totp/bad"), {}),  # neither --uri-stdin nor --qr
        (("totp", "code", "totp/x", "--at", "yesterday"), {}),
        (("totp", "qr", "totp/x"), {}),  # --out is required
    )
    expected = [4, 4] + [1] * 9 + [2, 2, 2]
    for run, code in zip(runs, expected):
        assert run.code == code, f"{run.args} -> {run.code}, expected {code}: {run.stderr}"
        assert run.stderr.startswith("its-vault: error: ") and run.stderr.count("\n") == 1, run.stderr
        assert run.stdout == ""
    assert "algorithm" in runs[2].stderr and "no QR code" in runs[6].stderr and "otpauth" in runs[7].stderr
    assert [r["name"] for r in json.loads(cli.ok("list", "--json").stdout)] == ["keys/api"]
    cli.fails(1, "totp", "add", "keys/api", "--uri-stdin", input=f"otpauth://totp/x?secret={SECRET}")  # exists
    cli.assert_no_leak(SECRET)
