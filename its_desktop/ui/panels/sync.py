"""The Sync panel: the remotes, a preview of the plan, a progress bar with Cancel, and each
conflict side by side (here / on the remote) with the three ways to settle it.

Planning and applying run off the GUI thread (the controller's runner); progress comes back
as a queued signal. The panel shows names, actions and times, never a value: a conflict is
settled on what the user knows (which side changed when, type, field names), and the values
stay one reveal away in the Secrets panel.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import InvalidInput, VaultError
from ...sync import engine
from ...sync.engine import Choice, Item, Op, Plan
from ...sync.remotes import Remote, add_remote, list_remotes, make_remote, remove_remote
from ...sync.syncer import Progress, SyncResult, Syncer
from ..controller import VaultController
from ..widgets.tables import row_table
from .base import Panel

log = logging.getLogger(__name__)
AnyIndex = QModelIndex | QPersistentModelIndex
PHASES = {"listing": "Listing the remote", "reading": "Reading what changed there", "applying": "Syncing"}
ACTION_LABELS = {
    Op.PUSH: "Push", Op.PULL: "Pull", Op.DELETE_REMOTE: "Delete on the remote", Op.DELETE_LOCAL: "Delete here",
    Op.KEEP_BOTH: "Keep both", Op.CONFLICT: "Conflict", Op.ADOPT: "Record", Op.FORGET: "Forget", Op.NOOP: "Nothing",
}
CHOICE_LABELS = {Choice.LOCAL: "keep local", Choice.REMOTE: "take remote", Choice.BOTH: "keep both"}


class Column(IntEnum):
    ACTION = 0
    NAME = 1
    HERE = 2
    REMOTE = 3
    WHY = 4


HEADERS = {Column.ACTION: "Action", Column.NAME: "Secret", Column.HERE: "Changed here",
           Column.REMOTE: "Changed on the remote", Column.WHY: "Why"}


def _when(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


class PlanModel(QAbstractTableModel):
    """The plan's changes and conflicts (what would happen to which name, and when each side
    changed). Rows are ``engine.Item``s: names, hashes and times, never a value."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: list[Item] = []

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._items)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(Column):
            return HEADERS[Column(section)]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        column = Column(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            if column is Column.ACTION:
                label = ACTION_LABELS[item.op]
                return f"{label} ({CHOICE_LABELS[item.resolved]})" if item.resolved else label
            if column is Column.NAME:
                return item.name
            if column is Column.HERE:
                return _when(item.local.time)
            if column is Column.REMOTE:
                return _when(item.remote.time)
            return item.reason
        if role == Qt.ItemDataRole.ToolTipRole and item.op is Op.CONFLICT:
            return "Select it to compare both sides and pick one"
        return None

    def item(self, row: int) -> Item | None:
        return self._items[row] if 0 <= row < len(self._items) else None

    def row_of(self, name: str) -> int:
        return next((i for i, item in enumerate(self._items) if item.name == name), -1)

    def set_items(self, items: list[Item]) -> None:
        """Rows removed and inserted as such (views keep their state; no model reset)."""
        if self._items:
            self.beginRemoveRows(QModelIndex(), 0, len(self._items) - 1)
            self._items = []
            self.endRemoveRows()
        if items:
            self.beginInsertRows(QModelIndex(), 0, len(items) - 1)
            self._items = list(items)
            self.endInsertRows()

    def replace_item(self, row: int, item: Item) -> None:
        self._items[row] = item
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(Column) - 1))

    def clear(self) -> None:
        self.set_items([])


class _Bridge(QObject):
    """Carries progress from the worker thread to the GUI thread (a queued connection)."""

    progressed = Signal(object)


class RemoteDialog(QDialog):
    """A new remote: where it is, which folder, and which vault secret holds its credentials."""

    def __init__(self, secret_names: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a remote")
        self.setAccessibleName("Add a remote")
        self.remote: Remote | None = None
        self.name = QLineEdit(placeholderText="e.g. prod-bao")
        self.kind = QComboBox()
        self.kind.addItem("OpenBao / HashiCorp Vault (KV v2)", "openbao")
        self.kind.addItem("AWS Secrets Manager", "aws")
        self.folder = QLineEdit(placeholderText="vault folder, e.g. brokers/")
        self.prefix = QLineEdit(placeholderText="path or name prefix on the remote, e.g. its/brokers/")
        self.url = QLineEdit(placeholderText="https://bao.example:8200")
        self.mount = QLineEdit("secret")
        self.auth = QComboBox()
        self.region = QLineEdit(placeholderText="us-east-1")
        self.endpoint = QLineEdit(placeholderText="optional: another endpoint")
        self.credentials = QComboBox(editable=True)
        self.credentials.addItems([""] + secret_names)
        self.message = QLabel(wordWrap=True)
        self.message.setAccessibleName("Remote problem")
        for widget, label in ((self.name, "Remote name"), (self.kind, "Remote type"), (self.folder, "Vault folder"),
                              (self.prefix, "Remote prefix"), (self.url, "Server URL"), (self.mount, "KV mount"),
                              (self.auth, "Authentication"), (self.region, "AWS region"),
                              (self.endpoint, "Endpoint URL"), (self.credentials, "Credentials secret")):
            widget.setAccessibleName(label)
        self.form = QFormLayout()
        for label, widget in (("&Name", self.name), ("&Type", self.kind), ("Vault &folder", self.folder),
                              ("Remote &prefix", self.prefix), ("Server &URL", self.url), ("KV &mount", self.mount),
                              ("&Region", self.region), ("&Endpoint", self.endpoint),
                              ("&Authentication", self.auth), ("&Credentials secret", self.credentials)):
            self.form.addRow(label, widget)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.add_button = self.buttons.addButton("Add", QDialogButtonBox.ButtonRole.AcceptRole)
        self.add_button.setAccessibleName("Add")
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.auth.currentIndexChanged.connect(self._auth_changed)
        self._kind_changed()

    def _kind_changed(self) -> None:
        openbao = self.kind.currentData() == "openbao"
        for widget in (self.url, self.mount):
            self.form.setRowVisible(widget, openbao)
        for widget in (self.region, self.endpoint):
            self.form.setRowVisible(widget, not openbao)
        self.auth.clear()
        if openbao:
            self.auth.addItem("Token (field 'token' or the value)", "token")
            self.auth.addItem("AppRole (fields 'role_id' and 'secret_id')", "approle")
        else:
            self.auth.addItem("Keys in a vault secret (access_key_id, secret_access_key)", "aws-keys")
            self.auth.addItem("The standard AWS chain (environment, ~/.aws, role)", "aws-chain")

    def _auth_changed(self) -> None:
        self.form.setRowVisible(self.credentials, self.auth.currentData() != "aws-chain")

    def _accept(self) -> None:
        kind, auth = self.kind.currentData(), self.auth.currentData()
        options = ({"url": self.url.text().strip(), "mount": self.mount.text().strip()} if kind == "openbao"
                   else {"region": self.region.text().strip(), "endpoint_url": self.endpoint.text().strip()})
        credentials = self.credentials.currentText().strip() or None
        try:
            self.remote = make_remote(self.name.text().strip(), kind, self.folder.text(), self.prefix.text(), options,
                                      auth, None if auth == "aws-chain" else credentials)
        except InvalidInput as error:
            self.message.setText(str(error))
            return
        self.accept()


class SyncPanel(Panel):
    """Remotes on the left; the plan, its progress and the conflict under the cursor on the
    right. ``preview()``, ``sync_now()``, ``cancel()`` and ``settle(choice)`` are what the
    buttons do."""

    title = "Sync"

    def __init__(self, controller: VaultController, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.bridge = _Bridge(self)
        self.bridge.progressed.connect(self._progressed)
        self.model = PlanModel(self)
        self.syncer: Syncer | None = None
        self.plan: Plan | None = None
        self.resolutions: dict[str, Choice] = {}
        self._conflicts: dict[str, Item] = {}  # as planned, before the user settled them
        self.busy = False
        self._cancel: threading.Event | None = None
        self._confirm: QMessageBox | None = None
        self._dialog: RemoteDialog | None = None

        self.remotes = QListWidget()
        self.remotes.setAccessibleName("Remotes")
        self.remotes.currentItemChanged.connect(self._remote_changed)
        self.add_button = QPushButton("&Add remote…")
        self.add_button.setAccessibleName("Add remote")
        self.add_button.clicked.connect(self.add_remote)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setAccessibleName("Remove remote")
        self.remove_button.setToolTip("Forget this remote (nothing is deleted on either side)")
        self.remove_button.clicked.connect(self.ask_remove)
        self.where = QLabel(wordWrap=True)
        self.where.setAccessibleName("Remote details")

        self.preview_button = QPushButton("&Preview")
        self.preview_button.setAccessibleName("Preview the plan")
        self.preview_button.clicked.connect(self.preview)
        self.sync_button = QPushButton("&Sync now")
        self.sync_button.setAccessibleName("Sync now")
        self.sync_button.clicked.connect(self.sync_now)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel sync")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Sync progress")
        self.progress.setFormat("%v / %m")
        self.status = QLabel(wordWrap=True)
        self.status.setAccessibleName("Sync status")

        self.table = row_table(self.model, "Sync plan", Column.NAME)
        self.table.selectionModel().selectionChanged.connect(self._show_conflict)

        self.here = self._side_box("Here")
        self.there = self._side_box("On the remote")
        self.keep_local = QPushButton("Keep &local")
        self.take_remote = QPushButton("Take &remote")
        self.keep_both = QPushButton("Keep &both")
        for button, choice, tip in (
                (self.keep_local, Choice.LOCAL, "Push this side over the remote one"),
                (self.take_remote, Choice.REMOTE, "Pull the remote side over this one (this one stays in history)"),
                (self.keep_both, Choice.BOTH, "Keep this one and pull the remote one beside it, as NAME.remote-TIME")):
            button.setAccessibleName(button.text().replace("&", ""))
            button.setToolTip(tip)
            button.clicked.connect(lambda _checked=False, c=choice: self.settle(c))
        self.conflict = QGroupBox("Conflict")
        self.conflict.setAccessibleName("Conflict")
        sides = QHBoxLayout()
        sides.addWidget(self.here[0])
        sides.addWidget(self.there[0])
        choices = QHBoxLayout()
        choices.addStretch()
        for button in (self.keep_local, self.take_remote, self.keep_both):
            choices.addWidget(button)
        conflict_layout = QVBoxLayout(self.conflict)
        conflict_layout.addLayout(sides)
        conflict_layout.addLayout(choices)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(QLabel("&Remotes", buddy=self.remotes))
        left_layout.addWidget(self.remotes, 1)
        left_layout.addWidget(self.where)
        remote_buttons = QHBoxLayout()
        remote_buttons.addWidget(self.add_button)
        remote_buttons.addWidget(self.remove_button)
        left_layout.addLayout(remote_buttons)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        actions = QHBoxLayout()
        actions.addWidget(self.preview_button)
        actions.addWidget(self.sync_button)
        actions.addWidget(self.progress, 1)
        actions.addWidget(self.cancel_button)
        right_layout.addLayout(actions)
        right_layout.addWidget(self.status)
        right_layout.addWidget(self.table, 1)
        right_layout.addWidget(self.conflict)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self._show_conflict()
        self._update_buttons()

    def _side_box(self, title: str) -> tuple[QGroupBox, dict[str, QLabel]]:
        box = QGroupBox(title)
        box.setAccessibleName(f"{title} side")
        form = QFormLayout(box)
        labels = {}
        for key, label in (("changed", "Changed"), ("state", "State"), ("type", "Type"), ("fields", "Fields"),
                           ("description", "Description")):
            labels[key] = QLabel()
            labels[key].setAccessibleName(f"{title}: {label}")
            labels[key].setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(label, labels[key])
        return box, labels

    # -- Panel ---------------------------------------------------------------------------------

    def populate(self) -> None:
        vault = self.controller.vault
        if vault is None:
            self.clear()
            return
        try:
            remotes = list_remotes(vault)
        except VaultError as error:
            self.status.setText(str(error))
            return
        selected = self.selected_remote()
        names = [r.name for r in remotes]
        current = [self.remotes.item(i).data(Qt.ItemDataRole.UserRole).name for i in range(self.remotes.count())]
        if names != current:
            self.remotes.clear()
            for remote in remotes:
                item = QListWidgetItem(f"{remote.name}  ({remote.type})")
                item.setData(Qt.ItemDataRole.UserRole, remote)
                self.remotes.addItem(item)
            keep = names.index(selected.name) if selected and selected.name in names else 0
            if remotes:
                self.remotes.setCurrentRow(keep)
        self._update_buttons()

    def clear(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
        if self._confirm is not None:
            self._confirm.reject()
        if self._dialog is not None:  # it lists the vault's secret names
            self._dialog.reject()
        self._drop_syncer()
        self.remotes.clear()
        self._show_items([])
        self.resolutions.clear()
        self.where.clear()
        self.status.clear()
        self.progress.reset()
        self._show_conflict()
        self._update_buttons()

    # -- remotes -------------------------------------------------------------------------------

    def selected_remote(self) -> Remote | None:
        item = self.remotes.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _remote_changed(self) -> None:
        remote = self.selected_remote()
        self.where.setText(remote.describe() if remote else "")
        if not self.busy:
            self._drop_syncer()
            self._show_items([])
            self.resolutions.clear()
            self.status.clear()
        self._update_buttons()

    def add_remote(self) -> None:
        vault = self.controller.vault
        if vault is None:
            return
        dialog = self._dialog = RemoteDialog(vault.names(), self)
        try:
            if not dialog.exec() or dialog.remote is None or self.controller.vault is None:
                return
        finally:
            self._dialog = None
        try:
            add_remote(vault, dialog.remote)
        except VaultError as error:
            self.status.setText(str(error))
            return
        self.populate()
        self.remotes.setCurrentRow(next(i for i in range(self.remotes.count())
                                        if self.remotes.item(i).data(Qt.ItemDataRole.UserRole).name == dialog.remote.name))
        self.status.setText(f"Added {dialog.remote.name}. Preview to see what a sync would do.")

    def ask_remove(self) -> None:
        remote = self.selected_remote()
        if remote is None:
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Remove remote",
                          f"Forget the remote '{remote.name}'? Nothing is deleted here or there; a later sync "
                          "with it starts over by comparing both sides.", parent=self)
        box.setAccessibleName("Confirm remove remote")
        remove = box.addButton("Remove", QMessageBox.ButtonRole.AcceptRole)
        remove.setAccessibleName("Remove")
        box.addButton(QMessageBox.StandardButton.Cancel)
        self._confirm = box
        box.finished.connect(lambda _result: self._removed(remote, box.clickedButton() is remove))
        box.open()

    def _removed(self, remote: Remote, confirmed: bool) -> None:
        self._confirm = None
        vault = self.controller.vault
        if not confirmed or vault is None:
            return
        try:
            remove_remote(vault, remote.name)
        except VaultError as error:
            self.status.setText(str(error))
            return
        self.populate()
        self.status.setText(f"Removed {remote.name}.")

    # -- plan and sync -------------------------------------------------------------------------

    def preview(self) -> None:
        """List the remote and show what a sync would do (changes nothing)."""
        vault, remote = self.controller.vault, self.selected_remote()
        if vault is None or remote is None or self.busy:
            return
        self._drop_syncer()
        syncer = Syncer(vault, remote)
        cancel = self._start(f"Looking at {remote.name}…")
        resolutions = dict(self.resolutions)

        def work() -> Plan:
            return syncer.plan(resolutions, self.bridge.progressed.emit, cancel)

        def done(plan: Plan) -> None:
            self._finish()
            if self.controller.vault is None:
                syncer.close()
                return
            self.syncer, self.plan = syncer, plan
            self._show_items([i for i in plan.items if i.op in (*engine.CHANGES, Op.CONFLICT)])
            self.status.setText(f"{remote.name}: {plan.summary()}")
            self._update_buttons()

        self.controller.runner.submit(work, done, lambda error: self._failed(error, syncer))

    def sync_now(self) -> None:
        """Carry out the previewed plan (or a fresh one) with the conflicts settled so far."""
        vault, remote = self.controller.vault, self.selected_remote()
        if vault is None or remote is None or self.busy:
            return
        syncer, plan = self.syncer, self.plan
        if syncer is None or syncer.remote.name != remote.name:
            self._drop_syncer()
            syncer, plan = Syncer(vault, remote), None
        self.syncer = self.plan = None
        cancel = self._start(f"Syncing with {remote.name}…")
        resolutions = dict(self.resolutions)

        def work() -> SyncResult:
            return syncer.apply(plan, resolutions, self.bridge.progressed.emit, cancel)

        def done(result: SyncResult) -> None:
            self._finish()
            if self.controller.vault is None:
                syncer.close()
                return
            self.syncer = syncer  # kept: the remaining conflicts are shown side by side from it
            self.plan = Plan(tuple(result.conflicts))
            for name in result.resolved:
                self.resolutions.pop(name, None)
            self._show_items(list(result.conflicts))
            text = f"{result.remote}: {result.summary()}"
            if result.cancelled:
                text += ". Cancelled: what was done is saved; sync again to finish."
            elif result.conflicts:
                text += ". Select a conflict to compare both sides and pick one."
            self.status.setText(text)
            self.controller.notify_changed()
            self._update_buttons()

        self.controller.runner.submit(work, done, lambda error: self._failed(error, syncer))

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self.status.setText("Cancelling: what is under way finishes and is saved…")

    def _start(self, message: str) -> threading.Event:
        self.busy = True
        self._cancel = threading.Event()
        self.progress.setRange(0, 0)  # busy until the first count arrives
        self.status.setText(message)
        self._update_buttons()
        return self._cancel

    def _finish(self) -> None:
        self.busy = False
        self._cancel = None
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
        self._update_buttons()

    def _failed(self, error: BaseException, syncer: Syncer) -> None:
        self._finish()
        syncer.close()
        if self.controller.vault is None:  # locked meanwhile: the panel shows nothing
            return
        if not isinstance(error, VaultError):
            log.error("sync failed", exc_info=(type(error), error, error.__traceback__))
        self.status.setText(str(error) if isinstance(error, VaultError) else "The sync failed unexpectedly (see the log).")
        self.controller.notify_changed()  # batches saved before the failure are in the vault

    def _progressed(self, progress: Progress) -> None:
        if not self.busy or self.controller.vault is None:
            return
        self.progress.setRange(0, max(progress.total, 1))
        self.progress.setValue(progress.done)
        self.status.setText(f"{PHASES.get(progress.phase, progress.phase)}: {progress.done} of {progress.total}")

    def _drop_syncer(self) -> None:
        if self.syncer is not None and not self.busy:
            self.syncer.close()
        self.syncer = self.plan = None

    # -- conflicts -----------------------------------------------------------------------------

    def selected_item(self) -> Item | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.item(rows[0].row()) if rows else None

    def select(self, name: str) -> None:
        row = self.model.row_of(name)
        if row >= 0:
            self.table.selectRow(row)

    def _show_conflict(self) -> None:
        item = self.selected_item()
        conflict = item is not None and item.name in self._conflicts
        self.conflict.setVisible(conflict)
        for _box, labels in (self.here, self.there):
            for label in labels.values():
                label.clear()
        if not conflict or item is None:
            self.conflict.setTitle("Conflict")
            self._update_buttons()
            return
        self.conflict.setTitle(f"Conflict: {item.name} ({item.reason})")
        vault = self.controller.vault
        local = next((s for s in vault.summaries() if s.name == item.name), None) if vault else None
        here = self.here[1]
        here["changed"].setText(_when(item.local.time))
        here["state"].setText("present" if local else "deleted here")
        if local:
            here["type"].setText(local.type)
            here["fields"].setText(", ".join(local.fields) or "none")
            here["description"].setText(local.description or "—")
        there = self.there[1]
        there["changed"].setText(_when(item.remote.time))
        content = self.syncer.remote_content(item.name) if self.syncer else None
        there["state"].setText("present" if item.remote.here else "deleted on the remote")
        if content is not None:
            there["type"].setText(content.type)
            there["fields"].setText(", ".join(sorted(content.fields)) or "none")
            there["description"].setText(content.description or "—")
        self._update_buttons()

    def settle(self, choice: Choice) -> None:
        """Pick a side for the selected conflict; the next Sync now carries it out."""
        rows = self.table.selectionModel().selectedRows()
        item = self.selected_item()
        if not rows or item is None or item.name not in self._conflicts:
            return
        settled = engine.resolve(self._conflicts[item.name], choice)
        self.resolutions[item.name] = choice
        self.model.replace_item(rows[0].row(), settled)
        if self.plan is not None:
            self.plan = Plan(tuple(settled if i.name == item.name else i for i in self.plan.items), self.plan.skipped)
        left = sum(1 for row in range(self.model.rowCount()) if self.model.item(row).op is Op.CONFLICT)
        self.status.setText(f"{item.name}: {CHOICE_LABELS[choice]}. {left} conflict(s) left; Sync now carries it out.")
        self._show_conflict()

    def _show_items(self, items: list[Item]) -> None:
        self._conflicts = {i.name: i for i in items if i.op is Op.CONFLICT}
        self.model.set_items(items)

    def _update_buttons(self) -> None:
        unlocked = self.controller.vault is not None
        has_remote = self.selected_remote() is not None
        self.add_button.setEnabled(unlocked and not self.busy)
        self.remove_button.setEnabled(unlocked and has_remote and not self.busy)
        self.preview_button.setEnabled(unlocked and has_remote and not self.busy)
        self.sync_button.setEnabled(unlocked and has_remote and not self.busy)
        self.cancel_button.setEnabled(self.busy)
        self.remotes.setEnabled(not self.busy)
        item = self.selected_item()
        can_settle = not self.busy and item is not None and item.name in self._conflicts
        for button in (self.keep_local, self.take_remote, self.keep_both):
            button.setEnabled(can_settle)
