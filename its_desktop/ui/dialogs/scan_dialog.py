"""Vault ▸ Scan folders for leaked secrets…: the leak scan (``its_desktop.scan``) in a dialog.

Pick folders, Scan (on the runner thread, with progress and Cancel), read the findings (file,
line, secret name or pattern kind: never a value or a line of text), select vault-value rows
and "Replace with its:// reference" (after one confirmation; pattern rows cannot be replaced).
The matcher (keyed fingerprints, no values) lives only as long as the dialog and is dropped
when the vault locks, which also closes the dialog. Scans and replacements are audited.
"""

from __future__ import annotations

import threading
from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import VaultError
from ...scan.fix import FixResult, fix_findings
from ...scan.matcher import Matcher, secret_sources
from ...scan.report import Finding, ScanReport
from ...scan.scanner import ScanOptions, scan
from ...scan.walker import WalkOptions

ACTION_TEXT = "Scan folders for leaked secrets…"
Index = QModelIndex | QPersistentModelIndex


class Column(IntEnum):
    FILE = 0
    LINE = 1
    FOUND = 2
    STATUS = 3


HEADERS = ("File", "Line", "Found", "Status")


class FindingsModel(QAbstractTableModel):
    """Findings as rows, appended and updated in place (never reset and rebuilt). Holds
    paths, lines and names only."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Finding] = []
        self._replaced: set[int] = set()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt override)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 (Qt override)
        return 0 if parent.isValid() else len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 (Qt override)
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        horizontal = orientation == Qt.Orientation.Horizontal
        if horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(HEADERS):
            return HEADERS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        finding = self._rows[index.row()]
        column = Column(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            if column == Column.FILE:
                return finding.path
            if column == Column.LINE:
                return finding.line
            if column == Column.FOUND:
                return f"secret {finding.label}" if finding.is_secret else f"{finding.label} (pattern)"
            if index.row() in self._replaced:
                return "replaced with its:// reference"
            return "vault value: can be replaced" if finding.is_secret else "rotate it by hand"
        if role == Qt.ItemDataRole.ToolTipRole and column == Column.FILE:
            return f"{finding.path}, line {finding.line}, column {finding.column}"
        return None

    def finding(self, row: int) -> Finding:
        return self._rows[row]

    def is_replaced(self, row: int) -> bool:
        return row in self._replaced

    def append(self, findings: list[Finding]) -> None:
        if not findings:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(findings) - 1)
        self._rows.extend(findings)
        self.endInsertRows()

    def mark_replaced(self, fixed: list[Finding]) -> None:
        done = {(f.path, f.offset, f.label) for f in fixed}
        for row, finding in enumerate(self._rows):
            if (finding.path, finding.offset, finding.label) in done and row not in self._replaced:
                self._replaced.add(row)
                cell = self.index(row, Column.STATUS)
                self.dataChanged.emit(cell, cell, [Qt.ItemDataRole.DisplayRole])

    def clear(self) -> None:
        if not self._rows:
            return
        self.beginRemoveRows(QModelIndex(), 0, len(self._rows) - 1)
        self._rows.clear()
        self._replaced.clear()
        self.endRemoveRows()


class ScanDialog(QDialog):
    progressed = Signal(int)  # files scanned so far (emitted from the runner thread)

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Scan folders for leaked secrets")
        self.setAccessibleName("Leak scan")
        self.resize(820, 520)
        self._matcher: Matcher | None = None
        self._cancel: threading.Event | None = None
        self.confirm_box: QMessageBox | None = None
        self.last_report: ScanReport | None = None
        self.last_fix: FixResult | None = None

        self.folders = QListWidget()
        self.folders.setAccessibleName("Folders to scan")
        self.add_button = QPushButton("Add folder…", clicked=self._pick_folder)
        self.remove_button = QPushButton("Remove", clicked=self._remove_folder)
        self.gitignore = QCheckBox("Skip what .gitignore files ignore")
        self.gitignore.setChecked(True)
        self.scan_button = QPushButton("Scan", clicked=self.start_scan)
        self.scan_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel", clicked=self.cancel_scan)
        self.cancel_button.setEnabled(False)
        self.status = QLabel("Add the folders to scan: files holding a vault value or a well-known credential "
                             "are listed here (never the value).")
        self.status.setAccessibleName("Scan status")
        self.status.setWordWrap(True)
        self.model = FindingsModel(self)
        self.table = QTableView()
        self.table.setAccessibleName("Findings")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(Column.FILE, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        self.replace_button = QPushButton("Replace with its:// reference", clicked=self.ask_replace)
        self.replace_button.setToolTip("Rewrite the selected vault values in their files as its://NAME references "
                                       "(KEY=its://NAME on .env lines)")
        self.replace_button.setEnabled(False)
        self.close_button = QPushButton("Close", clicked=self.reject)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())

        folder_buttons = QVBoxLayout()
        folder_buttons.addWidget(self.add_button)
        folder_buttons.addWidget(self.remove_button)
        folder_buttons.addStretch()
        top = QHBoxLayout()
        top.addWidget(self.folders, 1)
        top.addLayout(folder_buttons)
        run = QHBoxLayout()
        run.addWidget(self.gitignore)
        run.addStretch()
        run.addWidget(self.scan_button)
        run.addWidget(self.cancel_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.replace_button)
        bottom.addStretch()
        bottom.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(run)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        layout.addLayout(bottom)

        self.progressed.connect(lambda n: self.status.setText(f"Scanning… {n:,} files so far"))
        controller.locked.connect(self._locked)

    # -- folders ---------------------------------------------------------------------------------

    def add_folder(self, path: str) -> None:
        if path and not self.folders.findItems(path, Qt.MatchFlag.MatchExactly):
            self.folders.addItem(path)
        self._update_buttons()

    def paths(self) -> list[str]:
        return [self.folders.item(i).text() for i in range(self.folders.count())]

    def _pick_folder(self) -> None:
        self.add_folder(QFileDialog.getExistingDirectory(self, "Folder to scan"))

    def _remove_folder(self) -> None:
        for item in self.folders.selectedItems():
            self.folders.takeItem(self.folders.row(item))
        self._update_buttons()

    # -- scanning --------------------------------------------------------------------------------

    @property
    def scanning(self) -> bool:
        return self._cancel is not None

    def start_scan(self) -> None:
        vault = self.controller.vault
        paths = self.paths()
        if vault is None or not paths or self.scanning:
            return
        self.model.clear()
        self._matcher = None
        cancel = self._cancel = threading.Event()
        options = ScanOptions(WalkOptions(gitignore=self.gitignore.isChecked()))
        progress = self.progressed.emit

        def work() -> tuple[Matcher, ScanReport]:
            matcher = Matcher(secret_sources(vault.secrets()))
            report = scan(paths, matcher, options, progress=progress, cancel=cancel)
            vault.record("scan", outcome="cancelled" if report.cancelled else "ok", detail=report.audit_detail())
            return matcher, report

        self.status.setText("Scanning…")
        self._update_buttons()
        self.controller.runner.submit(work, lambda result: self._scanned(cancel, *result),
                                      lambda error: self._failed(cancel, error))

    def cancel_scan(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _scanned(self, cancel: threading.Event, matcher: Matcher, report: ScanReport) -> None:
        if cancel is not self._cancel:  # locked or restarted meanwhile
            return
        self._cancel = None
        self._matcher = matcher
        self.last_report = report
        self.model.append(report.findings)
        stats = report.stats
        values, patterns = len(report.secret_findings), len(report.pattern_findings)
        found = (f"{values} vault value{'s' if values != 1 else ''} and {patterns} well-known "
                 f"credential{'s' if patterns != 1 else ''} found" if report.findings else "Nothing found")
        self.status.setText(f"{'Cancelled. ' if report.cancelled else ''}{found}: {stats.files_scanned:,} files "
                            f"scanned in {stats.seconds:.1f} s ({stats.files_per_second:,.0f} per second), "
                            f"{stats.skipped:,} skipped."
                            + (" Rotate the secrets found: the files may have been copied." if report.findings else ""))
        self._update_buttons()

    def _failed(self, cancel: threading.Event, error: BaseException) -> None:
        if cancel is not self._cancel:
            return
        self._cancel = None
        self.status.setText(f"Scan failed: {_sentence(error)}")
        self._update_buttons()

    # -- replacing -------------------------------------------------------------------------------

    def replaceable_rows(self) -> list[int]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [r for r in rows if self.model.finding(r).is_secret and not self.model.is_replaced(r)]

    def ask_replace(self) -> None:
        rows = self.replaceable_rows()
        if not rows or self._matcher is None or self.confirm_box is not None:
            return
        files = len({self.model.finding(r).path for r in rows})
        box = QMessageBox(QMessageBox.Icon.Question, "Replace with its:// references",
                          f"Rewrite {len(rows)} vault value{'s' if len(rows) != 1 else ''} in {files} "
                          f"file{'s' if files != 1 else ''} as its:// references? Each file is replaced whole, "
                          "with the same permissions.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        findings = [self.model.finding(r) for r in rows]

        def finished(answer: int) -> None:
            self.confirm_box = None
            box.deleteLater()
            if answer == QMessageBox.StandardButton.Yes:
                self.replace(findings)

        box.finished.connect(finished)
        self.confirm_box = box
        box.open()

    def replace(self, findings: list[Finding]) -> None:
        """Without asking: rewrite on the runner thread, then mark the rows."""
        matcher, vault = self._matcher, self.controller.vault
        if matcher is None or vault is None:
            return

        def work() -> FixResult:
            result = fix_findings(findings, matcher)
            vault.record("scan-fix", detail=f"{result.replaced} values replaced in {result.files} files")
            return result

        def done(result: FixResult) -> None:
            self.last_fix = result
            self.model.mark_replaced(result.fixed)
            self.status.setText(result.describe()[0].upper() + result.describe()[1:] + ".")
            self._update_buttons()

        self.replace_button.setEnabled(False)
        self.controller.runner.submit(work, done, lambda error: self.status.setText(
            f"Replacing failed: {_sentence(error)}"))

    # -- state -----------------------------------------------------------------------------------

    def _update_buttons(self) -> None:
        idle = not self.scanning
        self.scan_button.setEnabled(idle and bool(self.paths()))
        self.cancel_button.setEnabled(not idle)
        self.add_button.setEnabled(idle)
        self.remove_button.setEnabled(idle)
        self.replace_button.setEnabled(idle and self._matcher is not None and bool(self.replaceable_rows()))

    def _locked(self) -> None:
        """Nothing of the vault stays: cancel, drop the fingerprints and the rows, close."""
        self.cancel_scan()
        self._cancel = None
        self._matcher = None
        self.model.clear()
        if self.confirm_box is not None:
            self.confirm_box.reject()
        self.reject()

    def done(self, result: int) -> None:  # noqa: D401 (Qt override)
        self.cancel_scan()
        self._matcher = None
        super().done(result)


def _sentence(error: BaseException) -> str:
    if isinstance(error, VaultError):
        return str(error)
    if isinstance(error, OSError):
        return f"{error.strerror or 'I/O error'}: {error.filename or ''}".rstrip(": ")
    return "unexpected error (see the log)"


def add_scan_action(window) -> QAction:
    """Add "Scan folders for leaked secrets…" to the window's Vault menu (enabled while
    unlocked); the dialog is ``window.scan_dialog`` while open. Once per window."""
    if getattr(window, "scan_action", None) is not None:
        return window.scan_action
    controller = window.controller
    action = QAction(ACTION_TEXT, window)
    action.setStatusTip("Find files that hold a vault value or a well-known credential, and replace the values "
                        "with its:// references")
    action.setEnabled(controller.vault is not None)
    controller.unlocked.connect(lambda: action.setEnabled(True))
    controller.locked.connect(lambda: action.setEnabled(False))
    window.scan_dialog = None

    def open_dialog() -> None:
        if controller.vault is None:
            return
        if window.scan_dialog is None:
            dialog = ScanDialog(controller, window)
            dialog.finished.connect(lambda _result: _forget(window, dialog))
            window.scan_dialog = dialog
        window.scan_dialog.show()
        window.scan_dialog.activateWindow()

    action.triggered.connect(open_dialog)
    menu = next((a.menu() for a in window.menuBar().actions() if a.menu() is not None), None)
    if menu is not None:
        separator = next((a for a in menu.actions() if a.isSeparator()), None)
        menu.insertAction(separator, action) if separator is not None else menu.addAction(action)
    window.scan_action = action
    return action


def _forget(window, dialog: ScanDialog) -> None:
    if window.scan_dialog is dialog:
        window.scan_dialog = None
    dialog.deleteLater()
