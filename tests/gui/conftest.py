"""GUI fixtures: a controller and main window on a throw-away vault path."""

from __future__ import annotations

import pytest

from its_desktop.ui.controller import VaultController
from its_desktop.ui.window import MainWindow


@pytest.fixture(autouse=True)
def private_settings(tmp_path, monkeypatch):
    """Settings the panels save go to the test's folder, never the user's."""
    monkeypatch.setenv("ITS_SETTINGS_PATH", str(tmp_path / "settings.json"))
    monkeypatch.setenv("ITS_AGENT_DIR", str(tmp_path / "agent"))  # the window's agent socket


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("ITS_EMULATED_KEYS", str(tmp_path / "keys.json"))
    controller = VaultController(tmp_path / "vault.its")
    win = MainWindow(controller)
    qtbot.addWidget(win)
    win.show()
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow)  # shortcuts (Ctrl+L...) only reach an active window
    yield win
    controller.lock(quick=False)
    controller.runner.shutdown()


@pytest.fixture
def unlocked_controller(qtbot, tmp_path, monkeypatch):
    """A controller whose vault is created and unlocked (synchronously), for panel tests:
    build a panel with it, then call ``controller.unlocked.emit()`` or ``controller.lock()``."""
    from its_desktop.core.vault.api import Vault
    from its_desktop.factors.base import QuietPrompter
    from tests.conftest import FAST_KDF, PASSWORD

    monkeypatch.setenv("ITS_EMULATED_KEYS", str(tmp_path / "keys.json"))
    path = tmp_path / "vault.its"
    Vault.create(path, PASSWORD, kdf=FAST_KDF).lock()
    controller = VaultController(path)
    controller.session.unlock(PASSWORD, QuietPrompter())
    yield controller
    qtbot.waitUntil(lambda: controller.runner.pending == 0, timeout=30_000)  # no result for a deleted panel
    controller.lock(quick=False)
    controller.runner.shutdown()
