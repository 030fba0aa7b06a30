"""What every panel does: fill itself when the vault unlocks, empty itself when it locks."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from ..controller import VaultController


class Panel(QWidget):
    """A tab of the main window. ``title`` names the tab; subclasses fill ``populate`` and
    ``clear`` (which must drop every model row and widget text that showed vault data)."""

    title = "Panel"

    def __init__(self, controller: VaultController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setAccessibleName(self.title)
        controller.unlocked.connect(self.populate)
        controller.changed.connect(self.populate)
        controller.locked.connect(self.clear)

    def populate(self) -> None:
        """Read what the panel shows from ``self.controller.vault``."""

    def clear(self) -> None:
        """Forget everything shown (called on lock)."""
