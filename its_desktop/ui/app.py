"""The desktop application's entry point (``its-desktop``, ``python -m its_desktop``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from .. import __version__
from ..core.vault.api import default_vault_path
from .controller import VaultController
from .window import MainWindow

ICON = Path(__file__).parents[2] / "resources" / "its-desktop.svg"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="its-desktop", description="The ITS Desktop vault.")
    parser.add_argument("--vault", type=Path, help="vault file (default: $ITS_VAULT_PATH or the user data folder)")
    parser.add_argument("--demo", action="store_true",
                        help="open a populated demo vault in a temporary folder, with emulated hardware keys")
    parser.add_argument("--version", action="version", version=f"its-desktop {__version__}")
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
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("ITS Desktop")
    app.setWindowIcon(QIcon(str(ICON)))
    path = args.vault or default_vault_path()
    if args.demo:
        from .demo import make_demo_vault

        path = make_demo_vault()
    controller, window = build(path)
    window.show()
    code = app.exec()
    controller.runner.shutdown()
    return code
