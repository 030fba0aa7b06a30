"""Every factor in the registry is reachable everywhere it must be (STYLE.md #7)."""

from pathlib import Path

from its_desktop.cli.main import build_parser
from its_desktop.factors import hardware
from its_desktop.factors.registry import FACTORS, HARDWARE_KINDS

TESTS = Path(__file__).parent


def test_every_factor_is_a_cli_choice():
    parser = build_parser()
    for factor in FACTORS:
        args = parser.parse_args(["--factor", factor.kind, "list"])
        assert args.factor == factor.kind
        if factor.kind != "password":
            assert parser.parse_args(["factor", "add", factor.kind]).type == factor.kind


def test_every_hardware_factor_has_discovery_and_an_emulated_device_test(monkeypatch, tmp_path):
    monkeypatch.setenv("ITS_EMULATED_KEYS", str(tmp_path / "keys.json"))
    found = {key.kind for key in hardware.list_keys()}
    assert found == set(HARDWARE_KINDS)
    emulated_tests = {"yubikey": "test_emulated_yubikey.py", "fido2": "test_emulated_fido2.py"}
    assert set(emulated_tests) == set(HARDWARE_KINDS)
    for name in emulated_tests.values():
        assert (TESTS / name).exists()


def test_the_tpm_factor_has_its_software_tpm_tests():
    assert "tpm2" in {f.kind for f in FACTORS}
    assert (TESTS.parent / "integration" / "test_tpm2.py").exists()
    assert (TESTS.parent / "gui" / "test_tpm_gui.py").exists()
