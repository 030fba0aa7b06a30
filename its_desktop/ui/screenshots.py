"""``make screenshots``: render the unlock page and every panel of the demo vault to PNGs.

    python -m its_desktop.ui.screenshots docs/screenshots

Runs on the offscreen platform (or under Xvfb); widgets render themselves with ``grab()``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def render(out: Path) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["ITS_SETTINGS_PATH"] = str(Path(tempfile.mkdtemp()) / "settings.json")
    from PySide6.QtWidgets import QApplication

    from ..factors.base import QuietPrompter
    from .controller import VaultController
    from .demo import DEMO_PASSWORD, make_demo_vault
    from .window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    out.mkdir(parents=True, exist_ok=True)
    controller = VaultController(make_demo_vault())
    window = MainWindow(controller)
    window.resize(1200, 760)
    window.show()
    written = []

    def shot(name: str) -> None:
        app.processEvents()
        path = out / f"{name}.png"
        window.grab().save(str(path))
        written.append(path)

    shot("unlock")
    controller.session.unlock(DEMO_PASSWORD, QuietPrompter(), "fido2")
    controller.unlocked.emit()
    for index, panel in enumerate(window.panels):
        window.tabs.setCurrentIndex(index)
        if hasattr(panel, "select"):  # show a secret in the editor (its value stays hidden)
            panel.select("brokers/ibkr/api_key")
        shot(panel.title.lower().replace(" ", "-"))
    controller.lock(quick=False)
    controller.runner.shutdown()
    return written


if __name__ == "__main__":
    for written in render(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")):
        print(written)
