"""The TPM 2.0 slot against a real software TPM (swtpm), through tpm2-pytss and tpm2-tss: the
vault API first, then `its-vault` subprocesses with exact exit codes and one-line errors."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from its_desktop.core.crypto import random_bytes
from its_desktop.core.errors import InvalidInput, WrongCredentials
from its_desktop.core.vault.api import Vault
from its_desktop.core.vault.header import parse_file
from its_desktop.factors import tpm2
from its_desktop.factors.base import FactorError
from tests.conftest import FAST_KDF, PASSWORD
from tests.integration.cli_runner import CliRunner, error_line
from tests.integration.swtpm import Swtpm, other_swtpm, swtpm  # noqa: F401 (fixtures)

PIN = "tpm-pin-uniq-40917"
WRONG_PIN = "tpm-pin-uniq-00000"
VALUE = "AKIA-tpm-uniq-9f2c77"


def _extend_pcr7(tpm: Swtpm) -> None:
    """What a firmware or Secure Boot change does to PCR 7."""
    from tpm2_pytss import ESAPI
    from tpm2_pytss.constants import ESYS_TR, TPM2_ALG
    from tpm2_pytss.types import TPML_DIGEST_VALUES, TPMT_HA, TPMU_HA

    with ESAPI(tpm.tcti) as esapi:
        esapi.pcr_extend(ESYS_TR.PCR7, TPML_DIGEST_VALUES([TPMT_HA(hashAlg=TPM2_ALG.SHA256,
                                                                   digest=TPMU_HA(sha256=b"\x01" * 32))]))


@pytest.fixture
def enrolled(vault: Vault, swtpm: Swtpm) -> Vault:
    vault.set("broker/ibkr", VALUE)
    tpm2.enroll(vault, PIN, tcti_string=swtpm.tcti)
    return vault


def _open(path: Path, pin: str, tcti: str) -> Vault:
    return Vault.open(path, openers=(tpm2.TpmOpener(pin, tcti),))


# --- the vault API -----------------------------------------------------------------------

def test_seal_and_unseal_round_trip(swtpm):
    secret, auth = random_bytes(32), tpm2.pin_auth(PIN, b"salt" * 8)
    with tpm2.Tpm(swtpm.tcti) as tpm:
        sealed = tpm.seal(secret, auth, (7,))
        assert bytes(tpm.unseal(sealed, auth)) == secret
        assert secret not in sealed.public + sealed.private  # sealed, not stored


def test_the_secret_and_the_pin_never_cross_the_bus_in_the_clear(tmp_path):
    tpm = Swtpm(tmp_path / "logged", log_io=True).start()
    try:
        secret, auth = random_bytes(32), tpm2.pin_auth(PIN, random_bytes(32))
        with tpm2.Tpm(tpm.tcti) as session:
            sealed = session.seal(secret, auth, (7,))
            assert bytes(session.unseal(sealed, auth)) == secret
        traffic = tpm.io_hex()
    finally:
        tpm.stop()
    assert sealed.private[2:].hex().upper() in traffic, "the log did not capture the traffic"  # the control
    assert secret.hex().upper() not in traffic and auth.hex().upper() not in traffic


def test_pin_and_workstation_open_the_vault_without_the_password(enrolled, swtpm, vault_path):
    enrolled.lock()
    with _open(vault_path, PIN, swtpm.tcti) as vault:
        assert vault.value("broker/ibkr") == VALUE
    with Vault.open(vault_path, PASSWORD) as vault:
        unlocks = [r.event.detail for r in vault.audit_records() if r.event.op == "unlock"]
    assert any(detail.startswith("tpm2 slot") for detail in unlocks)
    slot = next(s for s in parse_file(vault_path.read_bytes()).header.slots if s.kind == "tpm2")
    assert slot.params["pcrs"] == [7] and slot.params["pcr_bank"] == "sha256"
    assert PIN not in vault_path.read_text(errors="replace")


def test_a_reboot_keeps_the_slot_working(enrolled, swtpm, vault_path):
    enrolled.lock()
    swtpm.restart()
    with _open(vault_path, PIN, swtpm.tcti) as vault:
        assert vault.value("broker/ibkr") == VALUE


def test_wrong_pin_is_refused_and_counted_then_the_tpm_locks_out(enrolled, swtpm, vault_path):
    enrolled.lock()
    for _ in range(3):  # swtpm's dictionary-attack threshold
        with pytest.raises(tpm2.WrongTpmPin):
            Vault.open(vault_path, openers=(tpm2.TpmOpener(WRONG_PIN, swtpm.tcti),), wait=lambda s: None)
    with pytest.raises(tpm2.TpmLockedOut, match="locked out"):
        Vault.open(vault_path, openers=(tpm2.TpmOpener(PIN, swtpm.tcti),), wait=lambda s: None)
    # the password slot is untouched by the TPM's lockout
    with Vault.open(vault_path, PASSWORD, wait=lambda s: None) as vault:
        failed = [r for r in vault.audit_records() if r.event.op == "unlock" and r.event.outcome == "failed"]
        assert len(failed) == 4


def test_a_changed_pcr_refuses_and_an_unbound_slot_does_not_care(vault, swtpm, vault_path):
    bound = tpm2.enroll(vault, PIN, (7,), name="bound", tcti_string=swtpm.tcti)
    unbound = tpm2.enroll(vault, PIN, (), name="unbound", tcti_string=swtpm.tcti)
    vault.lock()
    _extend_pcr7(swtpm)
    opener = tpm2.TpmOpener(PIN, swtpm.tcti)
    slots = {s.id: s for s in parse_file(vault_path.read_bytes()).header.slots}
    with pytest.raises(tpm2.TpmRefused, match="PCRs"):
        opener.unseal(slots[bound.id])
    assert len(opener.unseal(slots[unbound.id])) == 32
    with _open(vault_path, PIN, swtpm.tcti) as reopened:  # the unbound slot opens it
        assert reopened.generation >= 1


def test_another_machines_tpm_cannot_open_the_slot(enrolled, other_swtpm, vault_path):
    enrolled.lock()
    with pytest.raises(tpm2.TpmRefused, match="another machine"):
        _open(vault_path, PIN, other_swtpm.tcti)


def test_no_tpm_is_a_factor_error_naming_the_tcti(enrolled, swtpm, vault_path):
    enrolled.lock()
    tcti = swtpm.tcti
    swtpm.stop()
    with pytest.raises(FactorError, match="cannot reach the TPM") as caught:
        _open(vault_path, PIN, tcti)
    assert "\n" not in str(caught.value)


def test_tampered_sealed_blob_never_opens(enrolled, swtpm, vault_path):
    slot = next(s for s in enrolled.slots if s.kind == "tpm2")
    private = bytearray(base64.b64decode(slot.params["tpm_private"]))
    private[len(private) // 2] ^= 1
    params = {**slot.params, "tpm_private": base64.b64encode(bytes(private)).decode()}
    tampered = type(slot)(**{**slot.__dict__, "params": params})
    with pytest.raises(WrongCredentials):
        tpm2.TpmOpener(PIN, swtpm.tcti).unseal(tampered)


def test_rekey_drops_a_slot_the_tpm_refuses_for_good_and_keeps_the_others(vault, swtpm, vault_path):
    bound = tpm2.enroll(vault, PIN, (7,), name="bound", tcti_string=swtpm.tcti)
    unbound = tpm2.enroll(vault, PIN, (), name="unbound", tcti_string=swtpm.tcti)
    _extend_pcr7(swtpm)
    rebuild, dropped = tpm2.rewrap(vault, PIN, swtpm.tcti)
    assert dropped == (bound.id,)
    vault.rekey(PASSWORD, rebuild, dropped)
    assert {s.id for s in vault.slots if s.kind == "tpm2"} == {unbound.id}
    vault.lock()
    with _open(vault_path, PIN, swtpm.tcti) as reopened:
        assert reopened.generation >= 1


def test_short_pin_and_bad_pcr_lists_are_refused(vault, swtpm):
    with pytest.raises(InvalidInput, match="at least 4"):
        tpm2.enroll(vault, "123", tcti_string=swtpm.tcti)
    with pytest.raises(InvalidInput):
        tpm2.parse_pcrs("7,x")
    with pytest.raises(InvalidInput):
        tpm2.parse_pcrs("24")
    assert tpm2.parse_pcrs("none") == () and tpm2.parse_pcrs("7,0,7") == (0, 7)


def test_rekey_keeps_the_tpm_slot_with_its_pin(enrolled, swtpm, vault_path):
    rebuild, dropped = tpm2.rewrap(enrolled, PIN, swtpm.tcti)
    assert dropped == ()
    enrolled.rekey(PASSWORD, rebuild)
    enrolled.lock()
    with _open(vault_path, PIN, swtpm.tcti) as vault:
        assert vault.value("broker/ibkr") == VALUE
    with pytest.raises(tpm2.WrongTpmPin):
        tpm2.rewrap(vault, WRONG_PIN, swtpm.tcti)


# --- the command line --------------------------------------------------------------------

@pytest.fixture
def cli(cli_env, tmp_path, swtpm) -> CliRunner:
    runner = CliRunner({**cli_env, "ITS_TPM_TCTI": swtpm.tcti}, tmp_path)
    runner.ok("init", "--kdf-memory", "8", "--kdf-time", "1")
    runner.ok("set", "broker/ibkr", "--value-stdin", input=VALUE)
    return runner


def test_cli_enrol_list_and_unlock_with_the_pin_alone(cli):
    none_yet = cli.fails(2, "--factor", "tpm2", "get", "broker/ibkr", env={"ITS_TPM_PIN": PIN},
                         unset=("ITS_MASTER_PASSWORD",))
    assert "no TPM factor" in error_line(none_yet)
    enrolled = cli.ok("factor", "add", "tpm2", env={"ITS_TPM_PIN": PIN})
    assert "PCR 7" in enrolled.stderr
    listed = cli.ok("factor", "list")
    assert "tpm2" in listed.stdout and "PIN, PCR 7" in listed.stdout
    got = cli.ok("--factor", "tpm2", "get", "broker/ibkr", env={"ITS_TPM_PIN": PIN}, unset=("ITS_MASTER_PASSWORD",))
    assert got.stdout.strip() == VALUE
    for result in cli.results:
        assert PIN not in result.stdout + result.stderr


def test_cli_wrong_pin_exit_3_and_no_tpm_exit_1(cli, swtpm):
    cli.ok("factor", "add", "tpm2", "--pcrs", "none", env={"ITS_TPM_PIN": PIN})
    wrong = cli.fails(3, "--factor", "tpm2", "get", "broker/ibkr", env={"ITS_TPM_PIN": WRONG_PIN},
                      unset=("ITS_MASTER_PASSWORD",))
    assert "wrong TPM PIN" in error_line(wrong)
    no_pin = cli.fails(2, "--factor", "tpm2", "get", "broker/ibkr", unset=("ITS_MASTER_PASSWORD",))
    assert "tpm pin" in error_line(no_pin).lower()
    swtpm.stop()
    gone = cli.fails(1, "--factor", "tpm2", "get", "broker/ibkr", env={"ITS_TPM_PIN": PIN},
                     unset=("ITS_MASTER_PASSWORD",))
    assert "cannot reach the TPM" in error_line(gone)


def test_cli_rekey_keeps_or_drops_the_tpm_slot(cli):
    cli.ok("factor", "add", "tpm2", env={"ITS_TPM_PIN": PIN})
    cli.fails(3, "rekey", env={"ITS_TPM_PIN": WRONG_PIN})  # refused before anything changed
    cli.ok("rekey", env={"ITS_TPM_PIN": PIN})
    cli.ok("--factor", "tpm2", "get", "broker/ibkr", env={"ITS_TPM_PIN": PIN}, unset=("ITS_MASTER_PASSWORD",))
    dropped = cli.ok("rekey")
    assert "could not be unsealed" in dropped.stderr
    assert "tpm2" not in cli.ok("factor", "list").stdout
