"""The desktop application's entry point (``its-desktop``)."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

from .. import __version__

ICON = Path(__file__).parents[2] / "resources" / "its-desktop.svg"


class MainWindow(QMainWindow):
    """The main window. The panels arrive with the GUI issue; this shell proves Qt starts."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("ITS Desktop")
        self.setObjectName("main-window")
        label = QLabel(f"ITS Desktop {__version__}")
        label.setAccessibleName("version")
        self.setCentralWidget(label)
        self.resize(900, 600)


def main(argv: list[str] | None = None) -> int:
    app = QApplication.instance() or QApplication([sys.argv[0], *(argv or [])])
    app.setApplicationName("ITS Desktop")
    app.setWindowIcon(QIcon(str(ICON)))
    window = MainWindow()
    window.show()
    return app.exec()
