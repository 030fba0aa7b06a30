"""The packaging files agree with each other and with the code, without a PyInstaller build
(``make package`` does the build and runs the built binaries' self-tests)."""

from __future__ import annotations

import configparser
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from its_desktop import __version__
from its_desktop.ui.app import APP_ID, APP_NAME, ICON, ICON_SIZES, icon_png

ROOT = Path(__file__).parents[2]
RESOURCES = ROOT / "resources"
SPEC = ROOT / "packaging" / "its-desktop.spec"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCRIPTS = PYPROJECT["project"]["scripts"]
GUI_SCRIPT = "its-desktop"


def desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(RESOURCES / f"{APP_ID}.desktop", encoding="utf-8")
    return parser["Desktop Entry"]


def metainfo() -> ET.Element:
    return ET.parse(RESOURCES / f"{APP_ID}.metainfo.xml").getroot()


def test_desktop_file_launches_the_gui_script_with_our_icon():
    entry = desktop_entry()
    for key in ("Type", "Name", "Comment", "Exec", "TryExec", "Icon", "Categories", "StartupWMClass"):
        assert entry.get(key), key
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] == entry["TryExec"] == GUI_SCRIPT
    assert SCRIPTS[GUI_SCRIPT] == "its_desktop.ui.app:main"
    assert entry["Icon"] == ICON.stem == icon_png(ICON_SIZES[0]).stem
    assert entry["StartupWMClass"] == APP_NAME  # Qt's X11 WM_CLASS class is the application name
    assert entry["Categories"].endswith(";")


def test_metainfo_matches_pyproject_and_the_desktop_file():
    root = metainfo()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    launchable = root.find("launchable")
    assert launchable is not None and launchable.get("type") == "desktop-id"
    assert launchable.text == f"{APP_ID}.desktop"
    assert root.findtext("name") == desktop_entry()["Name"]
    assert root.findtext("icon[@type='stock']") == desktop_entry()["Icon"]
    versions = [release.get("version") for release in root.iter("release")]
    assert versions[0] == PYPROJECT["project"]["version"] == __version__  # newest first
    assert {b.text for b in root.iter("binary")} <= set(SCRIPTS)
    for tag in ("summary", "description", "metadata_license", "project_license", "content_rating"):
        assert root.find(tag) is not None, tag


@pytest.mark.parametrize("size", ICON_SIZES)
def test_every_icon_size_is_a_square_png_of_that_size(size):
    with Image.open(icon_png(size)) as image:
        assert image.format == "PNG"
        assert image.size == (size, size)


def test_spec_refers_to_files_and_modules_that_exist():
    text = SPEC.read_text()
    paths = re.findall(r'(ROOT|ICONS)((?:\s*/\s*"[^"]+")+)', text)
    assert len(paths) >= 5
    for base, parts in paths:
        folder = ROOT if base == "ROOT" else RESOURCES
        assert folder.joinpath(*re.findall(r'"([^"]+)"', parts)).exists(), parts
    hidden = re.search(r"hiddenimports = \[(.*?)\n\]", text, re.S)
    assert hidden is not None
    for module in re.findall(r'^\s*"([\w.]+)",', hidden.group(1), re.M):
        assert importlib.util.find_spec(module) is not None, module
    for name, target in SCRIPTS.items():  # the spec writes a launcher for each
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), name
    assert set(re.findall(r'GUI, CLI = "([\w-]+)", "([\w-]+)"', text)[0]) <= set(SCRIPTS)
    assert re.findall(r'^APP_ID = "([^"]+)"', text, re.M) == [APP_ID]


def test_cli_self_test_passes_in_process(capsys):
    from its_desktop.cli.main import main

    before = {k: v for k, v in os.environ.items() if k.startswith("ITS_")}
    assert main(["self-test"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "self-test passed"
    assert all(line.startswith("ok ") for line in lines[:-1]) and len(lines) > 5
    assert {k: v for k, v in os.environ.items() if k.startswith("ITS_")} == before


def test_a_failing_check_is_named_and_fails_the_command(capsys, monkeypatch):
    from its_desktop import selftest
    from its_desktop.cli.main import main

    def missing_sdk(test: selftest.SelfTest) -> None:
        import its_desktop_no_such_sdk  # noqa: F401

    monkeypatch.setattr(selftest, "CHECKS", (*selftest.CHECKS[:1], ("an SDK", missing_sdk)))
    assert main(["self-test"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ok ")
    assert lines[1] == "FAILED an SDK: ModuleNotFoundError: No module named 'its_desktop_no_such_sdk'"
    assert lines[-1] == "self-test failed: an SDK"


def test_gui_self_test_passes_offscreen(tmp_path):
    """In a process of its own: the self-test makes the QApplication, as the packaged app does."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}
    code = "import sys; from its_desktop.ui.app import main; sys.exit(main(['--self-test']))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ok     main window" in result.stdout
    assert result.stdout.splitlines()[-1] == "self-test passed"
