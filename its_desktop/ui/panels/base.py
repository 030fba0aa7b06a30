"""What every panel does: fill itself when the vault unlocks, empty itself when it locks."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from ..controller import VaultController


class Panel(QWidget):
    """A tab of the main window. ``title`` names the tab; subclasses fill ``populate`` and
    ``clear`` (which must drop every model row and widget text that showed vault data).

    In the main window panels are ``deferred``: a hidden tab fills itself when it is first
    shown, so unlocking pays only for the tab in front (10,000 secrets are listed once, not
    four times)."""

    title = "Panel"

    def __init__(self, controller: VaultController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.deferred = False
        self._stale = False
        self.setAccessibleName(self.title)
        controller.unlocked.connect(self.follow_vault)
        controller.changed.connect(self.follow_vault)
        controller.locked.connect(self._locked)

    def follow_vault(self) -> None:
        if self.deferred and not self.isVisible():
            self._stale = True
            return
        self._stale = False
        self.populate()

    def _locked(self) -> None:
        self._stale = False
        self.clear()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        if self._stale and self.controller.vault is not None:
            self._stale = False
            self.populate()

    def populate(self) -> None:
        """Read what the panel shows from ``self.controller.vault``."""

    def clear(self) -> None:
        """Forget everything shown (called on lock)."""
