"""A headless self-test for installed and frozen builds (``its-vault self-test``,
``its-desktop --self-test``).

A packaged app can start, print ``--version`` and still lack a data file, a native library or a
module only imported lazily (the sync SDKs, the QR reader). These checks drive each of them once
on a throw-away vault in a temporary folder, with the emulated hardware keys and a private
environment, so they prove the bundle is complete without touching the user's vault, settings
or agent. Each check prints one line; no secret value is ever printed (a failure shows the
error's type and first line, never a value).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

SECRET_NAME = "selftest/api_key"


@dataclass
class SelfTest:
    """What the checks share: a private folder, a random password (never printed) and the vault."""

    folder: Path
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)

    @property
    def vault_path(self) -> Path:
        return self.folder / "selftest.its"


Check = tuple[str, Callable[[SelfTest], None]]


def _fast_kdf():
    """The cheapest Argon2id the format accepts: the self-test proves the code path, not the cost."""
    from .core.crypto import MIN_MEMORY_KIB, MIN_TIME_COST, Argon2Params

    return Argon2Params(MIN_MEMORY_KIB, MIN_TIME_COST, 1)


def check_vault(test: SelfTest) -> None:
    from .core.vault.api import Vault

    value = secrets.token_urlsafe(32)
    with Vault.create(test.vault_path, test.password, kdf=_fast_kdf()) as vault:
        vault.take_recovery_code()
        vault.set(SECRET_NAME, value, type="api_key", fields={"account": "selftest"})
    with Vault.open(test.vault_path, test.password) as vault:
        if vault.value(SECRET_NAME) != value or vault.value(SECRET_NAME, "account") != "selftest":
            raise AssertionError("the secret read back differs from the one written")


def check_audit(test: SelfTest) -> None:
    from .core.vault.api import Vault

    with Vault.open(test.vault_path, test.password) as vault:
        if vault.verify_audit() < 3:  # init, create, read at least
            raise AssertionError("the audit chain holds fewer records than were written")


def check_totp(test: SelfTest) -> None:
    """RFC 6238 appendix B's SHA-1 vector, then an account through its otpauth:// URI."""
    from .core import totp

    if totp.totp(b"12345678901234567890", 59, digits=8) != "94287082":
        raise AssertionError("the RFC 6238 test vector does not match")
    account = totp.generate_account("ITS", "selftest@example.com")
    again = totp.parse_uri(totp.build_uri(account))
    now = time.time()
    if not again.verify(account.code(now), now):
        raise AssertionError("a TOTP code does not verify after an otpauth:// round trip")


def check_qr(test: SelfTest) -> None:
    """segno draws, Pillow opens, zxing-cpp (a native library) reads back."""
    from .services import qr

    text = "otpauth://totp/ITS:selftest?secret=JBSWY3DPEHPK3PXP&issuer=ITS"
    if qr.decode_image_bytes(qr.encode_png(text)) != [text]:
        raise AssertionError("the QR code read back differs from the one drawn")


def check_hardware_keys(test: SelfTest) -> None:
    """Enrol the emulated YubiKey and FIDO2 key, then open the vault with each key alone
    (password + key, no password slot offered), through the real yubikit and python-fido2."""
    from .core.vault.api import Vault
    from .factors import hardware
    from .factors.base import QuietPrompter
    from .factors.registry import HARDWARE_KINDS

    prompter = QuietPrompter()
    with Vault.open(test.vault_path, test.password) as vault:
        for kind in HARDWARE_KINDS:
            (key,) = hardware.list_keys(kind)
            hardware.enroll(vault, key, test.password, prompter, f"selftest {kind}", {"otp_slot": 2})
        slots = vault.slots
    for kind in HARDWARE_KINDS:
        openers = hardware.openers_for(slots, test.password, prompter, kind)
        if not openers:
            raise AssertionError(f"no {kind} key serves its new slot")
        with Vault.open(test.vault_path, openers=tuple(openers)) as vault:
            slots = vault.slots  # re-armed: the next unlock uses the slot as it is now


def check_device_libraries(test: SelfTest) -> None:
    """What real keys need: HID for FIDO2, yubikit/ykman for YubiKeys (ykman loads pyscard)."""
    import fido2.hid  # noqa: F401
    import ykman.device  # noqa: F401
    import yubikit.yubiotp  # noqa: F401


def check_tpm_library(test: SelfTest) -> None:
    """The TPM slot's bindings load (tpm2-pytss and the tpm2-tss libraries it links); no TPM is
    contacted. The TCTI modules (device, swtpm…) are loaded by tpm2-tss when a TPM is used."""
    import tpm2_pytss  # noqa: F401
    from tpm2_pytss.types import TPM2B_PUBLIC

    from .factors import tpm2

    TPM2B_PUBLIC.parse("ecc256:aes128cfb")
    if tpm2.parse_pcrs("7") != (7,):
        raise AssertionError("the TPM factor's PCR parsing is broken")


def check_sdks(test: SelfTest) -> None:
    """The SDKs sync and the rotators load lazily: boto3 with botocore's service data, hvac, and
    psycopg with its bundled libpq (clients are built, nothing is contacted)."""
    import boto3
    import hvac
    import psycopg

    from .rotators import postgresql  # noqa: F401
    from .sync import aws, openbao  # noqa: F401

    session = boto3.session.Session(aws_access_key_id="selftest", aws_secret_access_key="selftest",
                                    region_name="us-east-1")
    session.client("secretsmanager")
    session.client("sts")  # what a profile with an assumed role calls first
    hvac.Client(url="http://127.0.0.1:8200")
    if psycopg.pq.__impl__ not in ("binary", "c") or psycopg.pq.version() <= 0:
        raise AssertionError(f"psycopg runs without its compiled libpq ({psycopg.pq.__impl__})")


def check_keyring_entry_point(test: SelfTest) -> None:
    """The package metadata is there, so keyring finds our backend through its entry point."""
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="keyring.backends") if ep.name == "its"]
    if not found or not hasattr(found[0].load(), "ItsKeyring"):
        raise AssertionError("the 'its' keyring.backends entry point is missing")


CHECKS: tuple[Check, ...] = (
    ("vault: create, set, reopen, get", check_vault),
    ("audit chain verifies", check_audit),
    ("TOTP codes", check_totp),
    ("QR codes: draw and read", check_qr),
    ("emulated YubiKey and FIDO2 key: enrol and unlock", check_hardware_keys),
    ("hardware key libraries", check_device_libraries),
    ("TPM 2.0 library (tpm2-pytss)", check_tpm_library),
    ("sync and rotation SDKs: boto3, hvac, psycopg", check_sdks),
    ("keyring entry point", check_keyring_entry_point),
)


@contextmanager
def _private_environment(folder: Path) -> Iterator[None]:
    """Only the self-test's own ITS_* settings while it runs: its emulated keys (touched at
    once, no PIN), settings file and agent folder, never the user's; restored afterwards."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("ITS_")}
    for name in saved:
        del os.environ[name]
    os.environ.update({
        "ITS_EMULATED_KEYS": str(folder / "emulated-keys.json"),
        "ITS_SETTINGS_PATH": str(folder / "settings.json"),
        "ITS_AGENT_DIR": str(folder / "agent"),
    })
    try:
        yield
    finally:
        for name in [k for k in os.environ if k.startswith("ITS_")]:
            del os.environ[name]
        os.environ.update(saved)


def run(extra: Sequence[Check] = (), out: TextIO | None = None) -> bool:
    """Run every check (and ``extra``, e.g. the GUI's window), one line each; True if all passed."""

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="its-selftest-") as tmp, _private_environment(Path(tmp)):
        test = SelfTest(Path(tmp))
        for name, check in (*CHECKS, *extra):
            start = time.perf_counter()
            try:
                check(test)
            except Exception as exc:  # a failed check is reported and the others still run
                first = (str(exc).splitlines() or [""])[0][:200]
                say(f"FAILED {name}: {type(exc).__name__}{': ' + first if first else ''}")
                failed.append(name)
                continue
            say(f"ok     {name} ({time.perf_counter() - start:.2f} s)")
    say(f"self-test failed: {'; '.join(failed)}" if failed else "self-test passed")
    return not failed
