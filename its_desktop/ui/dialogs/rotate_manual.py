"""A manual rotation (a broker's API key that only its website can rotate), in one dialog.

The engine asks its ``Interaction`` from the worker thread it runs on, where no widget may be
touched, so the dialog collects everything first on the GUI thread (the new value, typed twice
and masked, and whether it is confirmed to work) and hands the answers over as a
``PrefilledInteraction``. Unconfirmed, the engine stops at its test step with the new value
saved as pending and the current one still in use; opened again for a pending rotation, the
dialog asks only for the confirmation (or offers to discard the pending value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

DISCARDED = 2  # the dialog's result when the user drops the pending value
MIN_WIDTH = 480


@dataclass
class PrefilledInteraction:
    """Answers collected on the GUI thread beforehand, for an engine running on a worker."""

    value: str | None = field(default=None, repr=False)
    confirmed: bool = False

    def guide(self, name: str, text: str) -> None:
        """The dialog showed the guidance already."""

    def new_value(self, name: str) -> str | None:
        return self.value

    def confirm(self, question: str) -> bool:
        return self.confirmed


class ManualRotationDialog(QDialog):
    """Guidance, the new value twice (or, for a pending rotation, nothing to type) and the
    confirmation. After ``accepted``, ``take_answers()`` hands over the answers once."""

    def __init__(self, name: str, guidance: str, pending_since: datetime | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.pending = pending_since is not None
        self._answers: PrefilledInteraction | None = None
        self.setWindowTitle("Rotate by hand")
        self.setAccessibleName("Manual rotation")
        self.setMinimumWidth(MIN_WIDTH)  # wrapped labels need a width to compute their height from
        self.guidance = QLabel(guidance)
        self.guidance.setAccessibleName("What to do")
        self.guidance.setTextFormat(Qt.TextFormat.PlainText)
        self.guidance.setWordWrap(True)
        self.guidance.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.pending_note = QLabel()
        self.pending_note.setAccessibleName("Pending value")
        self.pending_note.setWordWrap(True)
        self.value = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.value.setAccessibleName("New value")
        self.repeat = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.repeat.setAccessibleName("New value again")
        self.show_box = QCheckBox("Show")
        self.show_box.setAccessibleName("Show the new value")
        self.confirmed = QCheckBox("The new value works (confirmed)")
        self.confirmed.setAccessibleName("The new value works")
        self.hint = QLabel("Not confirmed yet? The new value is kept as pending and the current one stays in use; "
                           "come back here to confirm it.")
        self.hint.setWordWrap(True)
        self.status = QLabel()
        self.status.setAccessibleName("Manual rotation status")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setAccessibleName("Rotate")
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setAccessibleName("Cancel")
        self.discard_button = QPushButton("Discard the new value")
        self.discard_button.setAccessibleName("Discard the new value")
        self.discard_button.setToolTip("It was never confirmed: forget it and keep the current value")
        self.buttons.addButton(self.discard_button, QDialogButtonBox.ButtonRole.DestructiveRole)

        form = QFormLayout()
        form.addRow("New value", self.value)
        form.addRow("Again", self.repeat)
        form.addRow("", self.show_box)
        layout = QVBoxLayout(self)
        layout.addWidget(self.guidance)
        layout.addWidget(self.pending_note)
        layout.addLayout(form)
        layout.addWidget(self.confirmed)
        layout.addWidget(self.hint)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

        if self.pending:
            when = pending_since.astimezone().strftime("%Y-%m-%d %H:%M") if pending_since else ""
            self.pending_note.setText(f"A new value entered on {when} is pending; the current one is still in use. "
                                      "Confirm that the new one works to make it current.")
        for row in range(form.rowCount()):  # nothing to type: the value is saved already
            form.setRowVisible(row, not self.pending)
        self.pending_note.setVisible(self.pending)
        self.hint.setVisible(not self.pending)  # the pending note says it already
        self.discard_button.setVisible(self.pending)
        self.show_box.toggled.connect(self._show)
        self.confirmed.toggled.connect(self._label_ok)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.discard_button.clicked.connect(lambda: self.done(DISCARDED))
        self._label_ok()

    def _show(self, on: bool) -> None:
        mode = QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password
        self.value.setEchoMode(mode)
        self.repeat.setEchoMode(mode)

    def _label_ok(self) -> None:
        """Unconfirmed, a new value is saved as pending; a pending one has nothing to do but
        be confirmed (Cancel keeps it pending)."""
        confirmed = self.confirmed.isChecked()
        self.ok_button.setText("Rotate" if confirmed or self.pending else "Save as pending")
        self.ok_button.setEnabled(confirmed or not self.pending)

    def accept(self) -> None:
        """Check the two entries, take the answers out of the widgets, close."""
        value = None
        if not self.pending:
            value = self.value.text()
            if not value:
                self.status.setText("Enter the new value you made at the issuer.")
                return
            if value != self.repeat.text():
                self.status.setText("The two entries differ: type the new value again.")
                self.repeat.clear()
                return
        self._answers = PrefilledInteraction(value, self.confirmed.isChecked())
        self.wipe()
        super().accept()

    def done(self, result: int) -> None:
        if result != QDialog.DialogCode.Accepted.value:
            self.wipe()
        super().done(result)

    def take_answers(self) -> PrefilledInteraction | None:
        answers, self._answers = self._answers, None
        return answers

    def wipe(self) -> None:
        """Drop what was typed (at close and at lock): a value lives in no widget longer than needed."""
        self.value.clear()
        self.repeat.clear()
        self.show_box.setChecked(False)
        self.status.clear()
