"""The one question before an emergency lockdown: what it will do, so nobody presses it to see.

A lockdown cannot be undone from the app (grants must be given again, every secret shows as
overdue until rotated), so the question says so, and Cancel is the default.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

WHAT_HAPPENS = (
    "• every agent grant is revoked: bots must be allowed again;\n"
    "• every secret is marked \"rotate now\": the Rotation tab becomes the checklist;\n"
    "• the clipboard is cleared, whatever it holds;\n"
    "• the vault locks, and needs the full unlock (no quick unlock)."
)


class LockdownQuestion(QMessageBox):
    """Lock down now? Lock down / Cancel (the default); ``confirmed`` once it is answered."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(QMessageBox.Icon.Warning, "Emergency lockdown", "Lock everything down now?",
                         QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, parent)
        self.setAccessibleName("Confirm emergency lockdown")
        self.setInformativeText("Use it when a key may have leaked or this machine may be compromised.\n\n"
                                + WHAT_HAPPENS)
        self.lockdown_button = self.button(QMessageBox.StandardButton.Yes)
        self.lockdown_button.setText("Lock down")
        self.lockdown_button.setAccessibleName("Lock down")
        self.button(QMessageBox.StandardButton.Cancel).setAccessibleName("Cancel")
        self.setDefaultButton(QMessageBox.StandardButton.Cancel)

    @property
    def confirmed(self) -> bool:
        return self.clickedButton() is self.lockdown_button
