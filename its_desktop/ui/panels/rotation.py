"""The rotation schedule: what must be rotated (or replaced before it expires), when, how, and
"Rotate now" with the secret's own rotator.

Everything is seen at ``controller.clock()``, re-read on every vault change and once a minute,
so a row turns "due soon", then "overdue", while the window stays open. The model is brought
to each new schedule incrementally, which keeps the user's selection on a row that moves.

A rotation runs the engine (create → set → test → finish) on the runner, never on the GUI
thread; its steps come back as a queued signal for the progress bar, and a failure is one line
naming the step. The engine asks its ``Interaction`` from that worker thread, so a manual
rotation's answers are collected first in a dialog on the GUI thread (``rotate_manual``).
"""

from __future__ import annotations

import logging
from typing import Callable

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import VaultError
from ...core.rotation import RotationStatus
from ...core.schedule import ScheduleEntry, build_schedule, count_by_status
from ...core.secrets import Secret
from ...rotators import engine
from ...rotators.base import STEPS, Interaction, RotationFailed
from ...rotators.engine import Rotated
from ...rotators.manual import guidance
from ...rotators.registry import rotator_name
from ..controller import VaultController
from ..dialogs.rotate_manual import DISCARDED, ManualRotationDialog, PrefilledInteraction
from ..models.rotation_model import STATUS_LABELS, Column, RotationInfo, RotationModel, StatusFilter
from ..widgets.tables import row_table
from ..widgets.timeline import RotationTimeline
from .base import Panel

log = logging.getLogger(__name__)

TICK_MS = 60_000
MANUAL = "manual"  # the rotator a person does, through ManualRotationDialog
FILTERS: tuple[tuple[str, RotationStatus | None], ...] = (
    ("All", None), ("Due soon", RotationStatus.DUE_SOON), ("Overdue", RotationStatus.OVERDUE),
    ("Expired", RotationStatus.EXPIRED), ("OK", RotationStatus.OK),
)


class RotationPanel(Panel):
    """The schedule table (filterable by status), the rotation actions for the selected row,
    and the 90-day timeline; a timeline click selects the row."""

    title = "Rotation"
    step_started = Signal(str, str)  # (name, step), emitted on the worker thread

    def __init__(self, controller: VaultController, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.model = RotationModel(self)
        self.proxy = StatusFilter(self)
        self.proxy.setSourceModel(self.model)
        self.confirm_box: QMessageBox | None = None
        self.manual_dialog: ManualRotationDialog | None = None
        self.rotating: str | None = None  # the secret whose rotation runs on the runner

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
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Rotation progress")
        self.progress.setRange(0, len(STEPS))
        self.progress.setMaximumWidth(160)
        self.progress.hide()
        self.message = QLabel()
        self.message.setAccessibleName("Rotation message")
        self.message.setWordWrap(True)
        self.step_started.connect(self._step, Qt.ConnectionType.QueuedConnection)

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
        buttons.addWidget(self.progress)
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
            summaries = vault.summaries()
        except VaultError as error:
            self.message.setText(str(error))
            return
        entries = build_schedule(summaries, now)
        scheduled = {e.name for e in entries}
        infos = {s.name: RotationInfo.of(s) for s in summaries if s.name in scheduled}
        self.model.set_entries(entries, infos)
        self.timeline.set_entries(entries, now)
        counts = count_by_status(entries)
        urgent_first = reversed(RotationStatus)
        parts = [f"{counts[s]} {STATUS_LABELS[s].lower()}" for s in urgent_first if counts[s]]
        half_done = sum(1 for info in infos.values() if info.pending_since is not None)
        if half_done:
            parts.append(f"{half_done} half-done")
        self.summary.setText(" · ".join(parts) or "Nothing to rotate")
        if not self.timer.isActive():
            self.timer.start()
        self._update_buttons()

    def clear(self) -> None:
        self.timer.stop()
        self._close_dialogs()
        self.model.clear()
        self.timeline.clear()
        self.summary.clear()
        self.message.clear()
        self.progress.hide()
        self.progress.reset()
        self._update_buttons()

    def _close_dialogs(self) -> None:
        """Close a pending question (on lock): a dialog that showed a name or guidance leaves
        the widget tree at once, and what was typed in it is dropped."""
        box, self.confirm_box = self.confirm_box, None
        if box is not None:
            box.reject()
        dialog, self.manual_dialog = self.manual_dialog, None
        if dialog is not None:
            dialog.reject()  # wipes what was typed; its finished handler forgets the answers

    # -- selection -----------------------------------------------------------------------------------

    def selected(self) -> ScheduleEntry | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.entry(self.proxy.mapToSource(rows[0]).row()) if rows else None

    def selected_info(self) -> RotationInfo | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.info(self.proxy.mapToSource(rows[0]).row()) if rows else None

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
        entry, info = self.selected(), self.selected_info()
        idle = self.rotating is None
        self.mark_button.setEnabled(entry is not None and idle)
        self.rotate_button.setEnabled(entry is not None and idle)
        half_done = info is not None and info.pending_since is not None
        self.rotate_button.setText("&Resume rotation…" if half_done else "&Rotate now…")
        if half_done:
            tip = "A rotation was left half-done: finish it (its new value is pending, the current one is in use)"
        elif info is not None and info.rotator == MANUAL:
            tip = ("Rotate by hand: make the new value at the issuer and enter it here; the current one stays "
                   "in use until you confirm the new one works")
        elif info is not None:
            tip = f"Rotate with {info.rotator}: create, set, test and finish a new value"
        else:
            tip = "Rotate the selected secret with its rotator"
        self.rotate_button.setToolTip(tip)

    # -- actions -------------------------------------------------------------------------------------

    def mark_rotated(self) -> None:
        entry, vault = self.selected(), self.controller.vault
        if entry is None or vault is None:
            return
        self._change(lambda: vault.mark_rotated(entry.name), f"Marked '{entry.name}' rotated.")

    def ask_rotate(self) -> None:
        """Rotate the selected secret with its rotator (or resume its half-done rotation): a
        manual one through the dialog, an automatic one after a confirmation, because whoever
        still holds the old value (a bot, a colleague) stops working once it changes."""
        entry, vault = self.selected(), self.controller.vault
        if entry is None or vault is None or self.rotating is not None:
            return
        try:
            secret = vault.peek(entry.name)
        except VaultError as error:
            self.message.setText(str(error))
            return
        rotator = secret.pending.rotator if secret.pending is not None else rotator_name(secret)
        self._close_dialogs()
        if rotator == MANUAL:
            self._ask_manual(secret)
        else:
            self._ask_automatic(secret.name, rotator, resume=secret.pending is not None)

    def _ask_manual(self, secret: Secret) -> None:
        name = secret.name
        dialog = ManualRotationDialog(name, guidance(secret), secret.pending.started if secret.pending else None, self)

        def finished(result: int) -> None:
            if self.manual_dialog is dialog:
                self.manual_dialog = None
            answers = dialog.take_answers()
            dialog.setParent(None)  # out of the widget tree at once (the lock test walks it)
            dialog.deleteLater()
            if self.controller.vault is None:
                return
            if result == DISCARDED:
                self.abandon(name)
            elif answers is not None:
                self.rotate(name, answers)

        dialog.finished.connect(finished)
        self.manual_dialog = dialog
        dialog.open()

    def _ask_automatic(self, name: str, rotator: str, resume: bool) -> None:
        question = (f"Resume the half-done {rotator} rotation of '{name}'?" if resume
                    else f"Rotate '{name}' now with {rotator}?")
        box = QMessageBox(QMessageBox.Icon.Warning, "Rotate now", question, parent=self)
        box.setAccessibleName("Confirm rotation")
        box.setInformativeText("The old value stays in history, but whatever still uses it stops working once "
                               "the new one is set: tell its owner and give them the new value.")
        confirm = box.addButton("Rotate", QMessageBox.ButtonRole.AcceptRole)
        confirm.setAccessibleName("Rotate")
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        cancel.setAccessibleName("Cancel")
        box.setDefaultButton(cancel)

        def finished() -> None:
            if self.confirm_box is box:
                self.confirm_box = None
            go = box.clickedButton() is confirm
            box.setParent(None)
            box.deleteLater()
            if go and self.controller.vault is not None:
                self.rotate(name)

        box.finished.connect(finished)
        self.confirm_box = box
        box.open()

    def rotate(self, name: str, interaction: Interaction | None = None) -> None:
        """Rotate now, without asking (``ask_rotate`` asks), on the runner."""
        vault = self.controller.vault
        if vault is None or self.rotating is not None:
            return
        self.rotating = name
        self.progress.reset()
        self.progress.setValue(0)
        self.progress.show()
        self.message.setText(f"Rotating '{name}'…")
        self._update_buttons()

        def work() -> Rotated:
            return engine.rotate(vault, name, interaction=interaction, observer=self.step_started.emit)

        self.controller.runner.submit(work, self._rotated,
                                      lambda error: self._rotation_failed(name, interaction, error))

    def abandon(self, name: str) -> None:
        """Drop a half-done rotation's pending value: the user gave up on it."""
        vault = self.controller.vault
        if vault is None:
            return
        self._change(lambda: engine.abandon(vault, name),
                     f"Dropped the pending value of '{name}'; the current value is unchanged.")

    # -- a rotation's progress and end, on the GUI thread ------------------------------------------

    def _step(self, name: str, step: str) -> None:
        if name != self.rotating or self.controller.vault is None:
            return
        self.progress.setValue(STEPS.index(step))
        self.progress.setFormat(f"{step} (%v/%m)")
        self.message.setText(f"Rotating '{name}': {step}…")

    def _idle(self) -> bool:
        """The rotation ended; True if the panel still shows a vault to report it in."""
        self.rotating = None
        self.progress.hide()
        self._update_buttons()
        return self.controller.vault is not None

    def _rotated(self, done: Rotated) -> None:
        if not self._idle():
            return
        self.controller.notify_changed()
        self.message.setText(f"Rotated '{done.name}' with {done.rotator}: version {done.version} is verified and "
                             f"in use{' (resumed)' if done.resumed else ''}; the old value is in history.")

    def _rotation_failed(self, name: str, interaction: Interaction | None, error: BaseException) -> None:
        if not self._idle():
            return
        self.controller.notify_changed()  # a failed step may have left a pending value
        unconfirmed = isinstance(interaction, PrefilledInteraction) and not interaction.confirmed
        if isinstance(error, RotationFailed) and error.step == "test" and error.pending and unconfirmed:
            self.message.setText(f"The new value of '{name}' is saved as pending and the current one stays in use: "
                                 "choose Resume rotation… once the new one is confirmed to work.")
        elif isinstance(error, VaultError):
            self.message.setText(str(error))
        else:
            log.error("rotation failed", exc_info=(type(error), error, error.__traceback__))
            self.message.setText(f"The rotation of '{name}' failed unexpectedly (see the log).")

    def _change(self, change: Callable[[], object], done: str) -> None:
        """Run one quick vault change; every panel (this one included) then re-reads, and this
        panel's model moves the row rather than rebuilding."""
        try:
            change()
        except VaultError as error:
            self.message.setText(str(error))
            return
        self.controller.notify_changed()
        self.message.setText(done)
