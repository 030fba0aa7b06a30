"""The layering rules of STYLE.md, checked by import-linter on every test run."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken" in result.stdout


def test_cli_get_path_does_not_load_qt_or_sdks():
    """`its-vault get` must start fast: importing the CLI pulls in no Qt and no SDK."""
    code = ("import sys, its_desktop.cli.main, its_desktop.cli.commands; "
            "print(','.join(m for m in ('PySide6', 'boto3', 'hvac', 'fido2', 'ykman') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
