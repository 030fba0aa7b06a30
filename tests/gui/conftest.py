"""GUI fixtures: a controller and main window on a throw-away vault path."""

from __future__ import annotations

import pytest

from its_desktop.ui.controller import VaultController
from its_desktop.ui.window import MainWindow


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
