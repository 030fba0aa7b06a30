"""The audit log panel: who did what, when, newest first, however long the log.

The table reads the log lazily (see ``AuditModel``); the chain is verified off the GUI thread
and its verdict shown in a banner; filters narrow the table; an export writes the filtered
records, names decrypted, as JSON lines, and is itself audited.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, time
from pathlib import Path
from typing import Iterable

from PySide6.QtCore import QDate, QTimer
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QDateEdit,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ...core.audit import AuditFilter, AuditReader, AuditRecord
from ...core.errors import AuditTampered, InvalidInput, VaultError, VaultLocked
from ..controller import VaultController
from ..models.audit_model import AuditModel, Column
from .base import Panel

log = logging.getLogger(__name__)

OPERATIONS = ("init", "unlock", "read", "history", "create", "update", "delete", "rotate", "restore", "import",
              "export", "passwd", "reauth", "factor-add", "factor-rm", "factor-rearm", "save")
CALM = "QLabel { background: #e7f4ea; color: #1d4d2b; border: 1px solid #9fcfaa; padding: 6px; }"
ALARM = "QLabel { background: #b3261e; color: white; font-weight: bold; padding: 6px; }"
PENDING = "QLabel { color: palette(mid); padding: 6px; }"
COLUMN_WIDTHS = {Column.TIME: 150, Column.OPERATION: 90, Column.OUTCOME: 80, Column.SECRET: 220,
                 Column.ACTOR: 100, Column.PROGRAM: 110}


class AuditPanel(Panel):
    title = "Audit log"

    def __init__(self, controller: VaultController, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.model = AuditModel(controller.runner.submit, self)
        self._reader: AuditReader | None = None
        self._generation = 0  # bumped on lock: late verification or export results are dropped
        self._verifying = self._verify_again = False

        self.banner = _label("Audit chain status")
        self.status = _label("Audit log status")
        self.op_filter = QComboBox(editable=True)
        self.op_filter.addItems(["", *OPERATIONS])
        self.op_filter.lineEdit().setPlaceholderText("any operation")
        self.actor_filter = QLineEdit(placeholderText="actor: kind or kind:pid")
        self.secret_filter = QLineEdit(placeholderText="secret (exact name)")
        self._names = QStandardItemModel(self)  # the vault's secret names, for completion
        self.secret_filter.setCompleter(QCompleter(self._names, self))
        self.date_filter = QCheckBox("Between")
        today = QDate.currentDate()
        self.since_edit = QDateEdit(today.addDays(-7), calendarPopup=True, displayFormat="yyyy-MM-dd", enabled=False)
        self.until_edit = QDateEdit(today, calendarPopup=True, displayFormat="yyyy-MM-dd", enabled=False)
        self.export_button = QPushButton("Export…")
        self.view = QTableView()
        for widget, name in ((self.op_filter, "Filter by operation"), (self.actor_filter, "Filter by actor"),
                             (self.secret_filter, "Filter by secret"), (self.date_filter, "Filter by date range"),
                             (self.since_edit, "From date"), (self.until_edit, "To date"),
                             (self.export_button, "Export filtered records"), (self.view, "Audit records")):
            widget.setAccessibleName(name)

        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.view.setWordWrap(False)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)  # no per-row sizing
        self.view.horizontalHeader().setStretchLastSection(True)
        self.view.horizontalHeader().setAccessibleName("Audit record columns")
        for column, width in COLUMN_WIDTHS.items():
            self.view.setColumnWidth(column, width)

        filters = QHBoxLayout()
        for widget in (self.op_filter, self.actor_filter, self.secret_filter, self.date_filter,
                       self.since_edit, self.until_edit):
            filters.addWidget(widget)
        filters.addStretch()
        filters.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addLayout(filters)
        layout.addWidget(self.view)
        layout.addWidget(self.status)

        self._filter_timer = QTimer(self, singleShot=True, interval=250)  # typing pauses, then filter
        self._filter_timer.timeout.connect(self.apply_filter)
        for changed in (self.op_filter.currentTextChanged, self.actor_filter.textChanged,
                        self.secret_filter.textChanged, self.since_edit.dateChanged, self.until_edit.dateChanged):
            changed.connect(lambda *_: self._filter_timer.start())
        self.date_filter.toggled.connect(self._date_toggled)
        for edit in (self.actor_filter, self.secret_filter):
            edit.returnPressed.connect(self.apply_filter)
        self.export_button.clicked.connect(self.export)
        self.model.searching.connect(self._show_status)
        self.model.rowsInserted.connect(self._show_status)
        self.model.failed.connect(self.status.setText)

    # -- filling and emptying ---------------------------------------------------------------------

    def populate(self) -> None:
        """First call after unlock: show the newest page; later calls (the vault changed):
        put new records on top. Either way, verify the chain again in the background."""
        vault = self.controller.vault
        if vault is None:
            return
        try:
            if self._reader is None:
                self._reader = vault.audit_reader()
                self.apply_filter()
            else:
                self.model.refresh()
            self._set_names(vault.names())
        except VaultError as error:
            self.status.setText(str(error))
            return
        self._verify()

    def clear(self) -> None:
        self._generation += 1
        self._verifying = self._verify_again = False
        self._filter_timer.stop()
        self._reader = None
        self.model.clear()
        self.banner.clear()
        self.banner.setStyleSheet("")
        self.status.clear()
        self._set_names([])
        for widget in (self.op_filter, self.actor_filter, self.secret_filter, self.date_filter):
            widget.blockSignals(True)
        self.op_filter.setCurrentIndex(0)
        self.op_filter.setEditText("")
        self.actor_filter.clear()
        self.secret_filter.clear()
        self.date_filter.setChecked(False)
        for widget in (self.op_filter, self.actor_filter, self.secret_filter, self.date_filter):
            widget.blockSignals(False)
        self._date_toggled(False, apply=False)
        self.export_button.setEnabled(True)

    # -- filters --------------------------------------------------------------------------------

    def current_filter(self) -> AuditFilter:
        """The filter the widgets describe (InvalidInput for a malformed actor)."""
        since = until = None
        if self.date_filter.isChecked():
            since = _local_midnight(self.since_edit.date())
            until = _local_midnight(self.until_edit.date().addDays(1))
        return AuditFilter(op=self.op_filter.currentText().strip() or None,
                           actor=self.actor_filter.text().strip() or None,
                           name=self.secret_filter.text().strip() or None, since=since, until=until)

    def apply_filter(self) -> None:
        self._filter_timer.stop()
        if self._reader is None:
            return
        try:
            flt = self.current_filter()
        except InvalidInput as error:
            self.status.setText(str(error))
            return
        self.model.load(self._reader, flt)
        self._show_status()

    def _set_names(self, names: list[str]) -> None:
        self._names.clear()
        for name in names:
            self._names.appendRow(QStandardItem(name))

    def _date_toggled(self, on: bool, apply: bool = True) -> None:
        self.since_edit.setEnabled(on)
        self.until_edit.setEnabled(on)
        if apply:
            self._filter_timer.start()

    def _show_status(self) -> None:
        rows = self.model.rowCount()
        more = ", searching older records…" if self.model.is_searching else (
            "" if self.model.complete else ", scroll for older ones")
        self.status.setText(f"{rows:,} record{'' if rows == 1 else 's'} shown{more}")

    # -- verification ---------------------------------------------------------------------------

    def _verify(self) -> None:
        """Walk the whole chain off the GUI thread; one walk at a time, another after it if
        the log changed meanwhile."""
        vault = self.controller.vault
        if vault is None:
            return
        if self._verifying:
            self._verify_again = True
            return
        self._verifying = True
        if not self.banner.text():
            self._show_banner("checking the audit chain…", PENDING)
        generation = self._generation
        self.controller.runner.submit(vault.verify_audit, lambda count: self._verified(generation, count),
                                      lambda error: self._verified(generation, error))

    def _verified(self, generation: int, outcome: int | BaseException) -> None:
        if generation != self._generation:
            return  # locked meanwhile
        self._verifying = False
        if isinstance(outcome, int):
            self._show_banner(f"verified: {outcome:,} records, chain intact", CALM)
        elif isinstance(outcome, AuditTampered):
            self._show_banner(f"tampered at record {outcome.seq}: {outcome.reason}", ALARM)
        elif isinstance(outcome, VaultLocked):
            return
        elif isinstance(outcome, VaultError):
            self._show_banner(f"could not verify the audit chain: {outcome}", ALARM)
        else:
            log.error("audit verification failed: %s", type(outcome).__name__)
            self._show_banner("could not verify the audit chain (see the log)", ALARM)
        if self._verify_again:
            self._verify_again = False
            self._verify()

    def _show_banner(self, text: str, style: str) -> None:
        self.banner.setText(text)
        self.banner.setStyleSheet(style)

    # -- export ---------------------------------------------------------------------------------

    def export(self) -> None:
        """Ask where, then write the filtered records there."""
        if self._reader is None:
            return
        chosen, _ = QFileDialog.getSaveFileName(self, "Export audit records", str(Path.home() / "audit.jsonl"),
                                                "JSON lines (*.jsonl);;All files (*)")
        if chosen:
            self.export_to(Path(chosen))

    def export_to(self, path: Path) -> None:
        """Write the records the filter selects (all of them, not only those loaded), oldest
        first, names decrypted. Audited before the file is written, like every change."""
        vault, reader, flt = self.controller.vault, self._reader, self.model.filter
        if vault is None or reader is None:
            return
        end = reader.end()
        detail = f"audit log as JSON lines: {flt.describe()}"
        try:
            vault.record("export", flt.name, detail=detail)
        except VaultError as error:
            self.status.setText(str(error))
            return
        self.model.refresh()
        self.export_button.setEnabled(False)
        self.status.setText("exporting…")
        generation = self._generation

        def done(count: int) -> None:
            if generation == self._generation:
                self.export_button.setEnabled(True)
                self.status.setText(f"exported {count:,} records to {path}")

        def failed(error: BaseException) -> None:
            if generation != self._generation:
                return
            self.export_button.setEnabled(True)
            self.status.setText(f"export failed: {error}" if isinstance(error, (VaultError, OSError))
                                else "export failed (see the log)")
            current = self.controller.vault
            if current is not None:
                current.record("export", flt.name, outcome="failed", detail=detail)
                self.model.refresh()

        self.controller.runner.submit(lambda: write_json_lines(path, reader.matching(flt, end)), done, failed)


def write_json_lines(path: Path, records: Iterable[AuditRecord]) -> int:
    """Write ``records`` as JSON lines to ``path`` (mode 0600, complete or not at all)."""
    partial = path.with_name(path.name + ".part")
    count = 0
    try:
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
            for record in records:
                fh.write(json.dumps(record.to_json()).encode() + b"\n")
                count += 1
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count


def _label(accessible_name: str) -> QLabel:
    label = QLabel()
    label.setAccessibleName(accessible_name)
    label.setWordWrap(True)
    return label


def _local_midnight(day: QDate) -> datetime:
    return datetime.combine(day.toPython(), time()).astimezone()
