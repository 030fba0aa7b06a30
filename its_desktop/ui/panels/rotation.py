"""The rotation schedule: what must be rotated (or replaced before it expires), and when.

Everything is seen at ``controller.clock()``, re-read on every vault change and once a minute,
so a row turns "due soon", then "overdue", while the window stays open. The model is brought
to each new schedule incrementally, which keeps the user's selection on a row that moves.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QItemSelectionModel, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import VaultError
from ...core.passwords import generate_password
from ...core.rotation import RotationStatus
from ...core.schedule import ScheduleEntry, build_schedule, count_by_status
from ...core.secrets import SecretType
from ..controller import VaultController
from ..models.rotation_model import STATUS_LABELS, Column, RotationModel, StatusFilter
from ..widgets.timeline import RotationTimeline
from ..widgets.tables import row_table
from .base import Panel

TICK_MS = 60_000
# A random password is a valid new value only for these; a certificate, an SSH key or a TOTP
# seed is re-issued elsewhere and then marked rotated.
GENERATED_TYPES = (SecretType.PASSWORD, SecretType.DATABASE, SecretType.API_KEY, SecretType.GENERIC)
FILTERS: tuple[tuple[str, RotationStatus | None], ...] = (
    ("All", None), ("Due soon", RotationStatus.DUE_SOON), ("Overdue", RotationStatus.OVERDUE),
    ("Expired", RotationStatus.EXPIRED), ("OK", RotationStatus.OK),
)


class RotationPanel(Panel):
    """The schedule table (filterable by status), the two rotation actions for the selected
    row, and the 90-day timeline; a timeline click selects the row."""

    title = "Rotation"

    def __init__(self, controller: VaultController, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.model = RotationModel(self)
        self.proxy = StatusFilter(self)
        self.proxy.setSourceModel(self.model)
        self.confirm_box: QMessageBox | None = None

        self.filter = QComboBox()
        self.filter.setAccessibleName("Filter by status")
        for label, status in FILTERS:
            self.filter.addItem(label, status.value if status else "")
        self.filter.currentIndexChanged.connect(self._filter_changed)
        self.summary = QLabel()
        self.summary.setAccessibleName("Rotation summary")

        self.table = row_table(self.proxy, "Rotation schedule", Column.NAME)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)

        self.mark_button = QPushButton("&Mark rotated")
        self.mark_button.setAccessibleName("Mark rotated")
        self.mark_button.setToolTip("The value was changed elsewhere: record the rotation and re-arm the schedule")
        self.mark_button.clicked.connect(self.mark_rotated)
        self.rotate_button = QPushButton("&Rotate now…")
        self.rotate_button.setAccessibleName("Rotate now")
        self.rotate_button.clicked.connect(self.ask_rotate)
        self.message = QLabel()
        self.message.setAccessibleName("Rotation message")
        self.message.setWordWrap(True)

        self.timeline = RotationTimeline()
        self.timeline.entry_clicked.connect(self.select)

        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.populate)

        top = QHBoxLayout()
        top.addWidget(QLabel("&Show:", buddy=self.filter))
        top.addWidget(self.filter)
        top.addStretch()
        top.addWidget(self.summary)
        buttons = QHBoxLayout()
        buttons.addWidget(self.mark_button)
        buttons.addWidget(self.rotate_button)
        buttons.addWidget(self.message, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.timeline)
        self._update_buttons()

    # -- Panel ---------------------------------------------------------------------------------------

    def populate(self) -> None:
        vault = self.controller.vault
        if vault is None:
            self.clear()
            return
        now = self.controller.clock()
        try:
            entries = build_schedule(vault.summaries(), now)
        except VaultError as error:
            self.message.setText(str(error))
            return
        self.model.set_entries(entries)
        self.timeline.set_entries(entries, now)
        counts = count_by_status(entries)
        urgent_first = reversed(RotationStatus)
        self.summary.setText(" · ".join(f"{counts[s]} {STATUS_LABELS[s].lower()}" for s in urgent_first if counts[s])
                             or "Nothing to rotate")
        if not self.timer.isActive():
            self.timer.start()
        self._update_buttons()

    def clear(self) -> None:
        self.timer.stop()
        if self.confirm_box is not None:
            self.confirm_box.reject()
        self.model.clear()
        self.timeline.clear()
        self.summary.clear()
        self.message.clear()
        self._update_buttons()

    # -- selection -----------------------------------------------------------------------------------

    def selected(self) -> ScheduleEntry | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.entry(self.proxy.mapToSource(rows[0]).row()) if rows else None

    def select(self, name: str) -> None:
        """Select ``name``'s row, showing every status first if the filter hides it."""
        row = self.model.row_of(name)
        if row == -1:
            return
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():
            self.filter.setCurrentIndex(0)
            index = self.proxy.mapFromSource(self.model.index(row, 0))
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().setCurrentIndex(index, flags)
        self.table.scrollTo(index)

    def _filter_changed(self) -> None:
        value = self.filter.currentData()
        self.proxy.set_status(RotationStatus(value) if value else None)

    def _update_buttons(self) -> None:
        entry = self.selected()
        self.mark_button.setEnabled(entry is not None)
        can_generate = entry is not None and entry.type in GENERATED_TYPES
        self.rotate_button.setEnabled(can_generate)
        self.rotate_button.setToolTip(
            "Replace the value with a new random one (the old one stays in history)" if can_generate or entry is None
            else "A new value of this type is issued elsewhere: rotate it there, then mark it rotated")

    # -- actions -------------------------------------------------------------------------------------

    def mark_rotated(self) -> None:
        entry, vault = self.selected(), self.controller.vault
        if entry is None or vault is None:
            return
        self._change(lambda: vault.mark_rotated(entry.name), f"Marked '{entry.name}' rotated.")

    def ask_rotate(self) -> None:
        """Ask first: whoever holds the old value (a bot, a colleague, the broker's side) stops
        working once it changes, and must be given the new one."""
        entry = self.selected()
        if entry is None:
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Rotate now",
                          f"Replace the value of '{entry.name}' with a new random one?", parent=self)
        box.setAccessibleName("Confirm rotation")
        box.setInformativeText("The old value stays in history, but whatever uses it stops working: "
                               "tell its owner and give them the new value.")
        confirm = box.addButton("Rotate", QMessageBox.ButtonRole.AcceptRole)
        confirm.setAccessibleName("Rotate")
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        cancel.setAccessibleName("Cancel")
        box.setDefaultButton(cancel)

        def finished() -> None:
            self.confirm_box = None
            if box.clickedButton() is confirm:
                self.rotate(entry.name)
            box.deleteLater()

        box.finished.connect(finished)
        self.confirm_box = box
        box.open()

    def rotate(self, name: str) -> None:
        """Rotate now, without asking (``ask_rotate`` asks)."""
        vault = self.controller.vault
        if vault is None:
            return
        self._change(lambda: vault.rotate(name, generate_password(), detail="new random value"),
                     f"Rotated '{name}': give the new value to whatever used the old one.")

    def _change(self, change: Callable[[], object], done: str) -> None:
        """Run one vault change; every panel (this one included) then re-reads, and this
        panel's model moves the row rather than rebuilding."""
        try:
            change()
        except VaultError as error:
            self.message.setText(str(error))
            return
        self.controller.notify_changed()
        self.message.setText(done)
