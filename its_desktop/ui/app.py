"""The desktop application's entry point (``its-desktop``, ``python -m its_desktop``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from .. import __version__
from ..core.vault.api import default_vault_path
from .controller import VaultController
from .window import MainWindow

# Beside the package in a checkout and in the packaged app (packaging/its-desktop.spec).
RESOURCES = Path(__file__).parents[2] / "resources"
ICON = RESOURCES / "its-desktop.svg"
# The reverse-DNS id of resources/APP_ID.desktop and .metainfo.xml: desktops match our windows
# to the .desktop file by it (Wayland's app id), so both must agree.
APP_ID = "io.its_desktop.ITSDesktop"
APP_NAME = "ITS Desktop"  # also the X11 WM_CLASS class Qt sets, the .desktop's StartupWMClass
ICON_SIZES = (16, 32, 48, 64, 128, 256)  # resources/icons/hicolor/NxN/apps/its-desktop.png


def icon_png(size: int) -> Path:
    return RESOURCES / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "its-desktop.png"


def app_icon() -> QIcon:
    """The rendered PNGs (no SVG plugin needed at their sizes), the SVG for any other size."""
    icon = QIcon(str(ICON))
    for size in ICON_SIZES:
        icon.addFile(str(icon_png(size)), QSize(size, size))
    return icon


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="its-desktop", description="The ITS Desktop vault.")
    parser.add_argument("--vault", type=Path, help="vault file (default: $ITS_VAULT_PATH or the user data folder)")
    parser.add_argument("--demo", action="store_true",
                        help="open a populated demo vault in a temporary folder, with emulated hardware keys")
    parser.add_argument("--version", action="version", version=f"its-desktop {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="check this build headless (a throw-away vault; nothing of yours is touched), then exit")
    return parser.parse_args(argv)


def build(path: Path) -> tuple[VaultController, MainWindow]:
    from .panels.settings import apply_theme
    from .settings import AppSettings

    settings = AppSettings.load()
    apply_theme(settings.theme)
    controller = VaultController(path, settings=settings)
    return controller, MainWindow(controller)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.self_test:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    else:
        from ..core.memory import harden_process

        harden_process()  # the app holds keys and serves the agent: no core files, not dumpable
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName(APP_NAME)
    app.setDesktopFileName(APP_ID)
    app.setWindowIcon(app_icon())
    if args.self_test:
        from ..selftest import run

        return 0 if run(extra=[("main window: build, unlock, every panel, lock", _check_window)]) else 1
    path = args.vault or default_vault_path()
    if args.demo:
        from .demo import make_demo_vault

        path = make_demo_vault()
    controller, window = build(path)
    window.show()
    code = app.exec()
    controller.runner.shutdown()
    return code


def _check_window(test) -> None:
    """The self-test's GUI check: the window and every panel build offscreen on the self-test's
    vault (Qt's plugins, styles and our icon are bundled), then everything locks and closes."""
    from ..factors.base import QuietPrompter

    app = QApplication.instance()
    if app.windowIcon().isNull() or app.windowIcon().pixmap(QSize(48, 48)).isNull():
        raise AssertionError("the application icon did not load")
    controller, window = build(test.vault_path)
    try:
        window.show()
        controller.session.unlock(test.password, QuietPrompter())
        controller.unlocked.emit()
        for index in range(len(window.panels)):
            window.tabs.setCurrentIndex(index)
            app.processEvents()
        _settle(app, controller)
    finally:
        controller.lock(quick=False)
        _settle(app, controller)  # nothing queued for shutdown to cancel
        window.close()
        controller.runner.shutdown()


def _settle(app: QApplication, controller: VaultController, quiet: float = 0.5, limit: float = 30.0) -> None:
    """Process events until the background work is done and nothing new came for ``quiet``
    seconds (the vault-folder watcher reacts to our own saves after a short delay)."""
    import time

    start = idle_since = time.monotonic()
    while time.monotonic() - idle_since < quiet:
        app.processEvents()
        time.sleep(0.01)
        if controller.runner.pending:
            idle_since = time.monotonic()
        if time.monotonic() - start > limit:
            raise AssertionError(f"background work did not finish within {limit:.0f} s")
