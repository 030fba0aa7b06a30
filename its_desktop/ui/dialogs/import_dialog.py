"""File → Import…: secrets from a .env file, KeePassXC, Bitwarden, 1Password or a CSV file,
with a preview before anything is saved (importers/, docs/import.md).

The preview lists names, types and what will happen to each (create, merge, skip), and the
problems line by line; never a value. A file with problems imports nothing unless "Import
the valid part" is ticked. Parsing (a KDBX key derivation) and the import run on the
controller's runner, off the GUI thread. The parsed values live only in this dialog, which
forgets them once imported, when it closes, and when the vault locks.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TypeVar

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import InvalidInput, VaultError
from ...importers import SOURCES, read_source, source
from ...importers.apply import Duplicates, ImportPlan, apply_import, preview_plan
from ...importers.base import Preview, with_prefix
from ...importers.csvmap import ColumnMap, parse_mapping
from ..controller import VaultController
from .menus import file_menu

log = logging.getLogger(__name__)
W = TypeVar("W", bound=QWidget)
IMPORT_SHORTCUT = "Ctrl+I"
DUPLICATE_CHOICES = (
    (Duplicates.SKIP, "Skip names already in the vault"),
    (Duplicates.MERGE, "Merge: the imported value becomes a new version (old one kept in history)"),
)


def _named(widget: W, name: str) -> W:
    widget.setAccessibleName(name)
    return widget


class ImportDialog(QDialog):
    """Choose a file and how to read it, preview, import. ``preview()`` and ``start_import()``
    are what the buttons do."""

    def __init__(self, controller: VaultController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._parsed: Preview | None = None  # as read, without the prefix
        self._preview: Preview | None = None  # with the prefix: what Import would save
        self._busy = False
        self._open = True  # False once closed: a late result from the runner is then dropped
        self.setWindowTitle("Import secrets")
        self.setAccessibleName("Import secrets")
        self.resize(760, 560)

        self.kind = _named(QComboBox(), "Import from")
        for item in SOURCES:
            self.kind.addItem(item.label, item.kind)
        self.path = _named(QLineEdit(), "File to import")
        self.browse_button = _named(QPushButton("Choose…"), "Choose the file")
        self.prefix = _named(QLineEdit(), "Folder to import into")
        self.prefix.setPlaceholderText("optional, e.g. imported/keepass")
        self.password = _named(QLineEdit(echoMode=QLineEdit.EchoMode.Password), "Database password")
        self.mapping = _named(QLineEdit(), "Column mapping")
        self.mapping.setPlaceholderText("name=Title,value=Password,folder=Group,field:account=Acct (empty: guess)")
        self.duplicates = _named(QComboBox(), "Duplicates")
        for choice, text in DUPLICATE_CHOICES:
            self.duplicates.addItem(text, choice.value)
        self.preview_button = _named(QPushButton("Preview"), "Preview")
        self.table = _named(QTableWidget(0, 3), "Secrets to import")
        self.table.setHorizontalHeaderLabels(["Name", "Type", "Action"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.issues = _named(QListWidget(), "Problems and notes")
        self.accept_partial = _named(QCheckBox("Import the valid part and leave the problems out"),
                                     "Import the valid part")
        self.import_button = _named(QPushButton("Import"), "Import")
        self.close_button = _named(QPushButton("Close"), "Close")
        self.status = _named(QLabel(), "Import status")
        self.status.setWordWrap(True)

        file_row = QHBoxLayout()
        file_row.addWidget(self.path, 1)
        file_row.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Import from", self.kind)
        form.addRow("File", file_row)
        form.addRow("Into folder", self.prefix)
        form.addRow("Password", self.password)
        form.addRow("Columns", self.mapping)
        form.addRow("Duplicates", self.duplicates)
        self._form = form
        buttons = QHBoxLayout()
        buttons.addWidget(self.accept_partial)
        buttons.addStretch(1)
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.preview_button)
        layout.addWidget(self.table, 3)
        layout.addWidget(self.issues, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

        self.kind.currentIndexChanged.connect(self._source_changed)
        self.path.textChanged.connect(self._forget)
        self.mapping.textChanged.connect(self._forget)
        self.prefix.textChanged.connect(self._show)
        self.duplicates.currentIndexChanged.connect(self._show)
        self.accept_partial.toggled.connect(self._update_buttons)
        self.browse_button.clicked.connect(self._choose_file)
        self.preview_button.clicked.connect(self.preview)
        self.import_button.clicked.connect(self.start_import)
        self.close_button.clicked.connect(self.reject)
        controller.locked.connect(self._locked)
        self.finished.connect(self._closed)
        self._source_changed()

    # -- choosing ---------------------------------------------------------------------------

    def _source_changed(self) -> None:
        chosen = source(self.kind.currentData())
        self._form.setRowVisible(self.password, chosen.needs_password)
        self._form.setRowVisible(self.mapping, chosen.takes_mapping)
        self._forget()

    def _choose_file(self) -> None:
        chosen = source(self.kind.currentData())
        path, _ = QFileDialog.getOpenFileName(self, f"Import: {chosen.label}", "", chosen.file_filter)
        if path:
            self.path.setText(path)

    # -- previewing -------------------------------------------------------------------------

    def preview(self) -> None:
        """Read the file off the GUI thread (the password field is emptied as it is taken)."""
        if self._busy:
            return
        text = self.path.text().strip()
        if not text:
            self.status.setText("Choose a file to import.")
            return
        kind = self.kind.currentData()
        password = self.password.text()
        self.password.clear()
        try:
            mapping = self._mapping() if source(kind).takes_mapping else None
        except InvalidInput as error:
            self.status.setText(str(error))
            return
        self._forget()
        self._set_busy(True, "Reading the file…")
        self.controller.runner.submit(lambda: read_source(kind, Path(text), password=lambda: password, mapping=mapping),
                                      self._parsed_done, self._failed)

    def _mapping(self) -> ColumnMap | None:
        text = self.mapping.text().strip()
        return parse_mapping(text) if text else None

    def _parsed_done(self, preview: Preview) -> None:
        if not self._open:
            return
        self._set_busy(False, "")
        self._parsed = preview
        self._show()

    def _show(self) -> None:
        """The table and the problems for the current prefix and duplicates choice."""
        self.table.setRowCount(0)
        self.issues.clear()
        self._preview = None
        vault = self.controller.vault
        if self._parsed is None or vault is None:
            self._update_buttons()
            return
        try:
            preview = with_prefix(self._parsed, self.prefix.text())
            plan = preview_plan(vault, preview, Duplicates(self.duplicates.currentData()))
        except VaultError as error:
            self.status.setText(str(error))
            self._update_buttons()
            return
        self._preview = preview
        self._fill(preview, plan)
        self._update_buttons()

    def _fill(self, preview: Preview, plan: ImportPlan) -> None:
        self.table.setRowCount(len(plan.items))
        for row, item in enumerate(plan.items):
            action = item.action.value + (f" ({item.why})" if item.why else "")
            for column, text in enumerate((item.name, item.type.value, action)):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.issues.addItems([f"Problem: {issue}" for issue in preview.issues])
        self.issues.addItems([f"Left out: {note}" for note in preview.notes])
        problems = len(preview.issues)
        self.accept_partial.setVisible(bool(problems))
        self.accept_partial.setChecked(False)
        verdict = plan.summary(done=False)
        if problems:
            verdict += (f". {problems} problem{'s' if problems != 1 else ''}: nothing is imported unless you tick "
                        "“Import the valid part”.")
        self.status.setText(f"{preview.source}: {verdict}")

    # -- importing --------------------------------------------------------------------------

    def can_import(self) -> bool:
        preview = self._preview
        return (preview is not None and not self._busy and self.controller.vault is not None
                and bool(preview.secrets) and (not preview.issues or self.accept_partial.isChecked()))

    def start_import(self) -> None:
        if not self.can_import():
            return
        vault, preview = self.controller.vault, self._preview
        assert vault is not None and preview is not None
        duplicates = Duplicates(self.duplicates.currentData())
        partial = self.accept_partial.isChecked()
        self._set_busy(True, "Importing…")
        self.controller.runner.submit(lambda: apply_import(vault, preview, duplicates, accept_partial=partial),
                                      lambda plan: self._imported(preview, plan), self._failed)

    def _imported(self, preview: Preview, plan: ImportPlan) -> None:
        self.controller.notify_changed()
        if not self._open:
            return
        self._forget()
        self._set_busy(False, f"Imported {preview.source}: {plan.summary()}.")

    def _failed(self, error: BaseException) -> None:
        if isinstance(error, VaultError):
            message = str(error)
        else:
            log.error("import failed", exc_info=(type(error), error, error.__traceback__))
            message = "unexpected error (see the log)"
        if self._open:
            self._set_busy(False, message)

    # -- state ------------------------------------------------------------------------------

    def _set_busy(self, busy: bool, message: str) -> None:
        self._busy = busy
        self.status.setText(message)
        # Nothing that re-plans against the vault may change while a worker reads or writes it.
        for widget in (self.preview_button, self.kind, self.path, self.browse_button, self.prefix, self.password,
                       self.mapping, self.duplicates, self.accept_partial):
            widget.setEnabled(not busy)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.import_button.setEnabled(self.can_import())

    def _forget(self) -> None:
        """Drop every parsed value and what showed it."""
        self._parsed = self._preview = None
        self.table.setRowCount(0)
        self.issues.clear()
        self.accept_partial.setChecked(False)
        self.accept_partial.setVisible(False)
        self._update_buttons()

    def _closed(self) -> None:
        self._open = False
        self.password.clear()
        self._forget()

    def _locked(self) -> None:
        self.reject()


class ImportAction(QAction):
    """Import… (Ctrl+I): enabled while the vault is unlocked, opens one ``ImportDialog``."""

    def __init__(self, window: QMainWindow, controller: VaultController) -> None:
        super().__init__("&Import…", window)
        self.setShortcut(QKeySequence(IMPORT_SHORTCUT))
        self.setStatusTip("Import secrets from a .env file, KeePassXC, Bitwarden, 1Password or a CSV file")
        self._window, self.controller = window, controller
        self.dialog: ImportDialog | None = None
        self.setEnabled(controller.vault is not None)
        controller.unlocked.connect(self._unlocked)
        controller.locked.connect(self._locked)
        self.triggered.connect(self.open_dialog)

    def _unlocked(self) -> None:
        self.setEnabled(True)

    def _locked(self) -> None:
        self.setEnabled(False)

    def open_dialog(self) -> ImportDialog | None:
        if self.controller.vault is None:
            return None
        if self.dialog is not None:  # one at a time: Ctrl+I again brings it to the front
            self.dialog.raise_()
            self.dialog.activateWindow()
            return self.dialog
        self.dialog = ImportDialog(self.controller, self._window)
        self.dialog.finished.connect(self._closed)
        self.dialog.open()
        return self.dialog

    def _closed(self) -> None:
        dialog, self.dialog = self.dialog, None
        if dialog is not None:
            dialog.deleteLater()


def add_import_action(window: QMainWindow) -> ImportAction:
    """Put Import… (Ctrl+I) at the top of the window's File menu (its Vault menu if it has no
    File menu). ``window`` has a ``controller``. Once per window: a second Ctrl+I would make
    the shortcut ambiguous, so the one already there is returned."""
    existing = window.findChild(ImportAction)
    if existing is not None:
        return existing
    action = ImportAction(window, window.controller)
    menu = file_menu(window)
    first = menu.actions()[0] if menu.actions() else None
    menu.insertAction(first, action)
    if first is not None:
        menu.insertSeparator(first)
    window.addAction(action)  # the shortcut works whichever widget has the focus
    return action
