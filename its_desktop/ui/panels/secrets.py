"""The Secrets panel: folder tree, an as-you-type searchable list, the detail editor.

Keyboard first, as in KeePassXC: Ctrl+F search, Ctrl+N new secret, Ctrl+C copy the selected
secret's value (cleared from the clipboard after a while), arrows move through the list. Drop a
``.env`` file on the panel to import it after a preview of the names. The panel keeps metadata
only; values come from the vault when the user reveals or copies them (``SecretAccess``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from ...core.dotenv import DotenvError, EnvEntry, guess_type, parse_dotenv
from ...core.errors import InvalidInput, VaultError
from ...core.secrets import Secret, SecretType, validate_name
from ..clipboard import SecretClipboard, shared_clipboard
from ..controller import VaultController
from ..dialogs.secret_editor import SecretAccess, SecretEditor
from ..models.folder_model import PATH_ROLE, FolderModel, folders_of
from ..models.secrets_model import Column, SecretsModel, row_for
from ..runtime import gc_paused
from .base import Panel


class EnvImportDialog(QDialog):
    """The names a ``.env`` file would become (never the values), or its bad lines; Import
    is offered only for a file that parsed cleanly."""

    def __init__(self, source: str, entries: list[EnvEntry], problems: list[tuple[int, str]], prefix: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Import {source}")
        self.setAccessibleName("Import preview")
        self._entries = entries
        self.prefix = QLineEdit(prefix, placeholderText="folder for the imported names (optional)")
        self.prefix.setAccessibleName("Import folder")
        self.names = QListWidget()
        self.names.setAccessibleName("Names to import")
        self.message = QLabel()
        self.message.setAccessibleName("Import summary")
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.import_button = self.buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.import_button.setAccessibleName("Import")
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setAccessibleName("Cancel")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Import into folder"))
        layout.addWidget(self.prefix)
        layout.addWidget(self.names)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        if problems:
            self.prefix.setEnabled(False)
            self.names.addItems([f"line {line}: {reason}" for line, reason in problems])
            self.message.setText(f"{source} has {len(problems)} bad line(s); nothing will be imported. "
                                 "Fix the file and drop it again.")
            self.import_button.setEnabled(False)
        else:
            self.prefix.textChanged.connect(self._preview)
            self._preview()

    def _preview(self) -> None:
        self.names.clear()
        try:
            names = self.target_names()
        except InvalidInput as error:
            self.message.setText(str(error))
            self.import_button.setEnabled(False)
            return
        self.names.addItems(names)
        self.message.setText(f"{len(names)} secret(s); an existing name gets a new version (the old value is "
                             "kept in its history).")
        self.import_button.setEnabled(bool(names))

    def target_names(self) -> list[str]:
        prefix = self.prefix.text().strip().strip("/")
        return [validate_name(f"{prefix}/{e.key}" if prefix else e.key) for e in self._entries]

    def secrets(self, source: str) -> list[Secret]:
        """What to import, tagged with the file it came from (as ``its-vault import-env`` does)."""
        return [Secret(name=name, value=entry.value, type=SecretType(guess_type(entry.key)), tags={"source": source})
                for name, entry in zip(self.target_names(), self._entries)]


class SecretsPanel(Panel):
    """The vault's contents as a trader works with them. What the rest of the app may use:
    ``clipboard`` (the shared ``SecretClipboard``), ``focus_search()``, ``new_secret()``,
    ``copy_selected()``, ``import_env_file(path)``; ``clear()`` runs on lock."""

    title = "Secrets"

    def __init__(self, controller: VaultController, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.clipboard: SecretClipboard = shared_clipboard()
        self.access = SecretAccess(controller, self.clipboard, self)
        self.folder = ""  # the folder the list is narrowed to; "" for all
        self.import_dialog: EnvImportDialog | None = None
        self.discard_box: QMessageBox | None = None
        self.setAcceptDrops(True)

        self.search = QLineEdit(clearButtonEnabled=True)
        self.search.setAccessibleName("Search secrets")
        self.search.setPlaceholderText("Search names, tags and descriptions (Ctrl+F)")
        self.new_button = QPushButton("New")
        self.new_button.setAccessibleName("New secret")
        self.new_button.setToolTip("New secret (Ctrl+N)")
        self.import_button = QPushButton("Import .env…")
        self.import_button.setAccessibleName("Import a .env file")
        self.import_button.setToolTip("Or drop a .env file on this panel")
        self.count = QLabel()
        self.count.setAccessibleName("Secret count")

        self.folder_model = FolderModel(self)
        self.folders = QTreeView()
        self.folders.setAccessibleName("Folders")
        self.folders.setModel(self.folder_model)
        self.folders.setHeaderHidden(True)
        self.folders.setUniformRowHeights(True)

        self.model = SecretsModel(self)
        self.table = QTableView()
        self.table.setAccessibleName("Secrets list")
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(Column.NAME, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().resizeSection(Column.NAME, 260)
        self.table.horizontalHeader().resizeSection(Column.TYPE, 80)

        self.editor = SecretEditor(controller, self.access)
        editor_area = QScrollArea()
        editor_area.setWidgetResizable(True)
        editor_area.setWidget(self.editor)
        self.status = QLabel()
        self.status.setAccessibleName("Secrets status")

        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.new_button)
        top.addWidget(self.import_button)
        top.addWidget(self.count)
        splitter = QSplitter()
        splitter.addWidget(self.folders)
        splitter.addWidget(self.table)
        splitter.addWidget(editor_area)
        splitter.setStretchFactor(1, 3)
        splitter.setStretchFactor(2, 2)
        splitter.setSizes([160, 440, 560])  # the folders narrow: the list and the editor matter
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)

        self.find_action = self._shortcut("Search", QKeySequence.StandardKey.Find, self.focus_search)
        self.copy_action = self._shortcut("Copy value", QKeySequence.StandardKey.Copy, self.copy_selected)
        self.new_action = self._shortcut("New secret", QKeySequence.StandardKey.New, self.new_secret)
        self.delete_action = QAction("Delete secret", self.table, triggered=self.editor.ask_delete,
                                     shortcut=QKeySequence(QKeySequence.StandardKey.Delete))
        self.delete_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)  # the list's Delete key only
        self.table.addAction(self.delete_action)

        self.search.textChanged.connect(self._refilter)
        self.search.returnPressed.connect(self._to_list)
        self.new_button.clicked.connect(self.new_secret)
        self.import_button.clicked.connect(self._choose_env_file)
        self.folders.selectionModel().currentChanged.connect(self._folder_chosen)
        self.table.selectionModel().currentRowChanged.connect(self._row_chosen)
        self.editor.saved.connect(self._after_write)
        self.editor.deleted.connect(self._after_delete)
        self.access.failed.connect(self.status.setText)
        self.access.copied.connect(self._copied)
        self.clipboard.cleared.connect(self._clipboard_cleared)  # a method: disconnected when we go

    def _shortcut(self, text: str, keys: QKeySequence.StandardKey, slot: Callable[[], None]) -> QAction:
        """A shortcut for the whole window while this tab shows (a hidden tab's actions are
        inactive, so other panels may use the same keys); a text field with the focus keeps
        its own Ctrl+C (it claims it first)."""
        action = QAction(text, self, shortcut=QKeySequence(keys), triggered=slot)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.addAction(action)
        return action

    # -- following the vault ------------------------------------------------------------------

    def populate(self) -> None:
        """Read the metadata of every secret and apply the difference to the list and tree."""
        vault = self.controller.vault
        if vault is None:
            return
        known = self.model.get
        try:
            # The listing summaries decode no record; a row whose summary is unchanged is reused
            # as is, so a change elsewhere costs a walk over the names, not 10,000 new rows.
            with gc_paused():
                rows = [row if (row := known(summary.name)) is not None and row.source == summary
                        else row_for(summary) for summary in vault.summaries()]
        except VaultError as error:
            self.status.setText(str(error))
            return
        self.model.apply(rows)
        self.folder_model.set_folders(folders_of(self.model.names()))
        if not self.folders.currentIndex().isValid():
            root = self.folder_model.index_of("")
            self.folders.setCurrentIndex(root)
            self.folders.expand(root)
        self.editor.refresh()
        self._show_count()

    def clear(self) -> None:
        """On lock: close what could show a secret, take our value off the clipboard, and
        empty every model and widget that showed vault data, names included."""
        self.access.cancel()
        self._close(self.import_dialog)
        self._close(self.discard_box)
        self.import_dialog = self.discard_box = None
        self.clipboard.clear_now()
        self.search.blockSignals(True)
        self.search.clear()
        self.search.blockSignals(False)
        self.folder = ""
        self.model.clear()
        self.folder_model.clear()
        self.editor.clear()
        self.status.clear()
        self.count.clear()

    @staticmethod
    def _close(dialog: QDialog | None) -> None:
        if dialog is not None:
            if dialog.isVisible():
                dialog.reject()
            dialog.setParent(None)
            dialog.deleteLater()

    def _announce_change(self) -> None:
        """Our own write: every panel (this one included) re-reads and applies the difference."""
        self.controller.notify_changed()

    def _after_write(self, name: str) -> None:
        self._announce_change()
        self.select(name)

    def _after_delete(self, name: str) -> None:
        self._announce_change()  # the selection moves on to the next secret, as in KeePassXC
        self.status.setText(f"Deleted '{name}'.")

    def _show_count(self) -> None:
        shown, total = self.model.rowCount(), self.model.total
        self.count.setText(f"{total} secrets" if shown == total else f"{shown} of {total}")

    # -- finding ------------------------------------------------------------------------------

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def _to_list(self) -> None:
        """Return in the search field: on to the results, the first one selected."""
        if self.model.rowCount():
            self.table.setFocus(Qt.FocusReason.ShortcutFocusReason)
            if not self.table.currentIndex().isValid():
                self.select(self.model.name_at(0))

    def _refilter(self) -> None:
        self.model.set_filter(self.search.text(), self.folder)
        self._show_count()

    def _folder_chosen(self, index: QModelIndex) -> None:
        self.folder = (index.data(PATH_ROLE) or "") if index.isValid() else ""
        self._refilter()

    def select(self, name: str) -> None:
        """Make ``name`` the current row (if the filter shows it)."""
        row = self.model.row_of(name)
        if row >= 0:
            index = self.model.index(row, Column.NAME)
            self.table.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
            self.table.scrollTo(index)

    def selected_name(self) -> str | None:
        """The secret the user is looking at: the editor's, else the list's current row."""
        if self.editor.current:
            return self.editor.current
        index = self.table.currentIndex()
        return self.model.name_at(index.row()) if index.isValid() else None

    def _row_chosen(self, current: QModelIndex, previous: QModelIndex) -> None:
        if not current.isValid():
            return
        name = self.model.name_at(current.row())
        if name != self.editor.current:
            self._leave_editor(lambda: self.editor.load(name), back_to=self.editor.current)

    def _leave_editor(self, then: Callable[[], None], back_to: str | None = None) -> None:
        """Run ``then`` (which replaces the editor's content), asking first if it has unsaved
        edits; keeping them puts the selection back on ``back_to``."""
        if not self.editor.dirty:
            then()
            return
        self._close(self.discard_box)
        box = QMessageBox(QMessageBox.Icon.Question, "Unsaved changes", "Discard your unsaved changes?",
                          QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel, self)
        box.setAccessibleName("Confirm discard")
        box.button(QMessageBox.StandardButton.Discard).setAccessibleName("Discard changes")
        box.button(QMessageBox.StandardButton.Cancel).setAccessibleName("Keep editing")

        def answered(button) -> None:
            if box.standardButton(button) == QMessageBox.StandardButton.Discard:
                then()
            elif back_to:
                self.select(back_to)
            else:
                self._unselect()

        box.buttonClicked.connect(answered)
        self.discard_box = box
        box.open()

    # -- acting -------------------------------------------------------------------------------

    def new_secret(self) -> None:
        if self.controller.vault is not None:
            self._leave_editor(lambda: (self._unselect(), self.editor.new_secret(self.folder)))

    def _unselect(self) -> None:
        self.table.selectionModel().clearCurrentIndex()
        self.table.clearSelection()

    def copy_selected(self) -> None:
        name = self.selected_name()
        if name:
            self.access.copy(name)

    def _clipboard_cleared(self) -> None:
        self.status.setText("Clipboard cleared.")

    def _copied(self, name: str) -> None:
        seconds = self.clipboard.timeout_seconds
        self.status.setText(f"Copied; the clipboard clears in {seconds:g} s." if seconds else "Copied.")

    # -- importing a .env file ----------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if self.controller.vault is not None and _local_files(event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        files = _local_files(event.mimeData().urls())
        if self.controller.vault is not None and files:
            event.acceptProposedAction()
            self.import_env_file(files[0])

    def _choose_env_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a .env file", "",
                                              "Environment files (*.env .env*);;All files (*)")
        if path:
            self.import_env_file(Path(path))

    def import_env_file(self, path: Path) -> None:
        """Parse ``path`` and show the preview; the import happens when the user confirms."""
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            self.status.setText(f"{path.name}: cannot read it as a UTF-8 text file.")
            return
        try:
            entries, problems = parse_dotenv(text, path.name), []
        except DotenvError as error:
            entries, problems = [], error.problems
        self._close(self.import_dialog)
        dialog = EnvImportDialog(path.name, entries, problems, self.folder, self)
        dialog.finished.connect(lambda result: self._import_finished(dialog, path.name, result))
        self.import_dialog = dialog
        dialog.open()

    def _import_finished(self, dialog: EnvImportDialog, source: str, result: int) -> None:
        """Import on confirm; either way the dialog (and the values it parsed) goes."""
        accepted = result == QDialog.DialogCode.Accepted
        secrets = dialog.secrets(source) if accepted else []
        if self.import_dialog is dialog:
            self.import_dialog = None
        self._close(dialog)
        vault = self.controller.vault
        if not accepted or vault is None:
            return
        try:
            created, updated, unchanged = vault.import_secrets(secrets, f"env:{source}")
        except VaultError as error:
            self.status.setText(str(error))
            return
        self.status.setText(f"Imported {source}: {created} created, {updated} updated, {unchanged} unchanged.")
        self._announce_change()


def _local_files(urls) -> list[Path]:
    return [Path(url.toLocalFile()) for url in urls if url.isLocalFile()]
