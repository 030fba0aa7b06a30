"""Where the dialogs' window actions go in the menu bar."""

from __future__ import annotations

from PySide6.QtWidgets import QMainWindow, QMenu


def file_menu(window: QMainWindow) -> QMenu:
    """The window's File menu, else its Vault menu, else a new File menu."""
    menus = {a.text().replace("&", ""): a.menu() for a in window.menuBar().actions() if a.menu() is not None}
    return menus.get("File") or menus.get("Vault") or window.menuBar().addMenu("&File")
