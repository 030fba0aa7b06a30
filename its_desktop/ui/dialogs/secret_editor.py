"""The detail editor beside the secrets list, and the one road by which a value reaches the screen
or the clipboard.

The editor loads metadata only (``vault.peek``: names of fields, tags, dates, history times).
A value or a field's value appears after the user asks for it, through ``SecretAccess``: a
step-up (``ReauthDialog``) first when the secret is high-value, then an audited vault call
(``get`` for a reveal, ``record("copy")`` for a copy). Hiding it again drops it from the widget.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, NamedTuple

from PySide6.QtCore import QDate, QObject, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import VaultError
from ...core.passwords import ALPHABETS, DEFAULT_LENGTH, MAX_LENGTH, MIN_LENGTH, ValuePolicy
from ...core.rotation import RotationPolicy
from ...core.secrets import SecretType
from ...core.vault.api import Vault
from ...rotators import registry
from ..clipboard import SecretClipboard
from ..controller import VaultController
from ..models.secrets_model import tags_text
from .generator import GeneratorDialog
from .reauth import ReauthDialog

HIDDEN = "••••••••"
VERSION_ROLE = Qt.ItemDataRole.UserRole + 1
BY_HAND = "none (by hand)"  # no rotator named: rotated by a person, as the manual rotator does
DEFAULT_ALPHABET = "rotator's default"  # no value policy: each rotator's own (postgresql: alnum)


class SecretAccess(QObject):
    """Reveal and copy, for the editor and the panel's Ctrl+C alike."""

    failed = Signal(str)
    copied = Signal(str)  # the secret's name

    def __init__(self, controller: VaultController, clipboard: SecretClipboard, window: QWidget) -> None:
        super().__init__(window)
        self.controller = controller
        self.clipboard = clipboard
        self.dialog_parent = window  # the step-up dialog opens over it
        self.reauth: ReauthDialog | None = None

    def reveal(self, name: str, field: str | None, show: Callable[[str], None]) -> None:
        self._stepped_up(name, "reveal", lambda vault: show(vault.value(name, field)))

    def copy(self, name: str, field: str | None = None) -> None:
        def run(vault: Vault) -> None:
            secret = vault.peek(name)
            text = secret.value if field is None else secret.field(field)
            vault.record("copy", name, detail=f"field {field}" if field else None)  # audited before it leaves
            self.clipboard.copy(text)
            self.copied.emit(name)

        self._stepped_up(name, "copy", run)

    def _stepped_up(self, name: str, verb: str, action: Callable[[Vault], None]) -> None:
        """Run ``action`` now, or after the user proves it is them again for a high-value
        secret; vault errors become one line on ``failed``."""

        def run() -> None:
            vault = self.controller.vault
            if vault is None:
                return  # locked while the dialog was up
            try:
                action(vault)
            except VaultError as error:
                self.failed.emit(str(error))

        vault = self.controller.vault
        if vault is None:
            return
        try:
            high_value = vault.peek(name).high_value
        except VaultError as error:
            self.failed.emit(str(error))
            return
        if not high_value:
            run()
            return
        self.cancel()
        self.reauth = ReauthDialog(self.controller, f"'{name}' is high-value: confirm it is you to {verb} it.",
                                   self.dialog_parent)
        self.reauth.confirm(run)

    def cancel(self) -> None:
        """Close a pending step-up (on lock): nothing it guarded will run."""
        if self.reauth is not None:
            dialog, self.reauth = self.reauth, None
            if dialog.isVisible():
                dialog.reject()
            dialog.setParent(None)
            dialog.deleteLater()


class SecretLine(QWidget):
    """A value shown as dots, with Reveal/Hide and Copy. A stored value is fetched only when
    revealed; hiding drops it again unless the user edited it."""

    reveal_wanted = Signal()
    copy_wanted = Signal()
    edited = Signal()

    def __init__(self, label: str, stored: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stored = stored  # the vault holds a value we have not necessarily loaded
        self.loaded = False
        self.dirty = False
        self.edit = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.edit.setAccessibleName(label)
        self.edit.setPlaceholderText(HIDDEN if stored else "value")
        self.reveal_button = QPushButton("Reveal")
        self.reveal_button.setAccessibleName(f"Reveal {label.lower()}")
        self.copy_button = QPushButton("Copy")
        self.copy_button.setAccessibleName(f"Copy {label.lower()}")
        self.copy_button.setVisible(stored)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.reveal_button)
        layout.addWidget(self.copy_button)
        self.edit.textEdited.connect(self._edited)
        self.reveal_button.clicked.connect(self._toggle)
        self.copy_button.clicked.connect(self.copy_wanted)

    @property
    def shown(self) -> bool:
        return self.edit.echoMode() == QLineEdit.EchoMode.Normal

    def _edited(self) -> None:
        self.dirty = True
        self.edited.emit()

    def _toggle(self) -> None:
        if self.shown:
            self.conceal()
        elif self.stored and not self.loaded and not self.dirty:
            self.reveal_wanted.emit()
        else:
            self._show(True)

    def show_value(self, text: str) -> None:
        """The value the vault returned for a reveal."""
        self.edit.setText(text)
        self.loaded = True
        self._show(True)

    def set_new_value(self, text: str) -> None:
        """A value typed or generated here (saved with the secret)."""
        self.edit.setText(text)
        self._edited()

    def conceal(self) -> None:
        if self.loaded and not self.dirty:
            self.edit.clear()
            self.loaded = False
        self._show(False)

    def _show(self, on: bool) -> None:
        self.edit.setEchoMode(QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password)
        self.reveal_button.setText("Hide" if on else "Reveal")


class Loaded(NamedTuple):
    """What the editor remembers of a loaded secret to explain a save: never a value."""

    tags: frozenset[str]
    expires: bool
    rotation: RotationPolicy | None


def parse_tags(text: str) -> dict[str, str]:
    """``env=prod, desk=crypto`` (the list's form) back to a dict; a bare word is a key."""
    tags = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key.strip():
            tags[key.strip()] = value.strip()
    return tags


class SecretEditor(QWidget):
    """Shows and edits one secret (``load``) or a new one (``new_secret``); writes go to the
    vault at once and ``saved``/``deleted`` tell the panel to announce the change."""

    saved = Signal(str)
    deleted = Signal(str)

    def __init__(self, controller: VaultController, access: SecretAccess, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.access = access
        self.setAccessibleName("Secret editor")
        self.current: str | None = None  # the stored secret shown; None when empty or new
        self.is_new = False
        self._loaded_updated: datetime | None = None
        self._loaded: Loaded | None = None  # what the shown secret had when loaded (no value)
        self._dirty = False
        self._loading = False
        self.generator: GeneratorDialog | None = None
        self.confirm_box: QMessageBox | None = None

        self.name = QLineEdit()
        self.name.setAccessibleName("Secret name")
        self.name.setPlaceholderText("folder/sub/name")
        self.type = QComboBox()
        self.type.setAccessibleName("Secret type")
        for kind in SecretType:
            self.type.addItem(kind.value, kind)
        self.value = SecretLine("Value", stored=False)
        self.generate_button = QPushButton("Generate…")
        self.generate_button.setAccessibleName("Generate a value")
        self.fields_box = QVBoxLayout()
        self.field_lines: dict[str, tuple[QLineEdit, SecretLine]] = {}
        self.add_field_button = QPushButton("Add field")
        self.add_field_button.setAccessibleName("Add field")
        self.tags = QLineEdit()
        self.tags.setAccessibleName("Tags")
        self.tags.setPlaceholderText("env=prod, desk=crypto")
        self.description = QPlainTextEdit()
        self.description.setAccessibleName("Description")
        self.description.setFixedHeight(60)
        self.expires = QCheckBox("Expires on")
        self.expires.setAccessibleName("Has an expiry date")
        self.expiry = QDateEdit(calendarPopup=True, displayFormat="yyyy-MM-dd")
        self.expiry.setAccessibleName("Expiry date")
        self.rotation = QSpinBox(minimum=0, maximum=3650, suffix=" days", specialValueText="never")
        self.rotation.setAccessibleName("Rotate every")
        self.rotator = QComboBox()
        self.rotator.setAccessibleName("Rotator")
        self.rotator.setToolTip("How 'Rotate now' and the scheduler make and install the next value")
        self.rotator.addItem(BY_HAND, None)
        for name in registry.names():
            self.rotator.addItem(name, name)
        self.policy_length = QSpinBox(minimum=MIN_LENGTH, maximum=MAX_LENGTH, value=DEFAULT_LENGTH, suffix=" chars")
        self.policy_length.setAccessibleName("New value length")
        self.policy_alphabet = QComboBox()
        self.policy_alphabet.setAccessibleName("New value alphabet")
        self.policy_alphabet.setToolTip("The characters a rotated value is made of (some APIs reject symbols)")
        self.policy_alphabet.addItem(DEFAULT_ALPHABET, None)
        for alphabet in ALPHABETS:
            self.policy_alphabet.addItem(alphabet, alphabet)
        self.high_value = QCheckBox("High-value: ask for the password again before reveal or copy")
        self.high_value.setAccessibleName("High-value")
        self.history = QListWidget()
        self.history.setAccessibleName("History")
        self.history.setFixedHeight(90)
        self.restore_button = QPushButton("Restore version")
        self.restore_button.setAccessibleName("Restore version")
        self.save_button = QPushButton("Save")
        self.save_button.setAccessibleName("Save secret")
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setAccessibleName("Delete secret")
        self.status = QLabel()
        self.status.setAccessibleName("Editor status")
        self.status.setWordWrap(True)

        value_row = QHBoxLayout()
        value_row.addWidget(self.value, 1)
        value_row.addWidget(self.generate_button)
        fields = QVBoxLayout()
        fields.addLayout(self.fields_box)
        fields.addWidget(self.add_field_button, 0, Qt.AlignmentFlag.AlignLeft)
        expiry_row = QHBoxLayout()
        expiry_row.addWidget(self.expires)
        expiry_row.addWidget(self.expiry, 1)
        rotation_row = QHBoxLayout()
        rotation_row.addWidget(self.rotation, 1)
        rotation_row.addWidget(QLabel("with"))
        rotation_row.addWidget(self.rotator, 1)
        policy_row = QHBoxLayout()
        policy_row.addWidget(self.policy_alphabet, 1)
        policy_row.addWidget(self.policy_length)
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Type", self.type)
        form.addRow("Value", value_row)
        form.addRow("Fields", fields)
        form.addRow("Tags", self.tags)
        form.addRow("Description", self.description)
        form.addRow("Expiry", expiry_row)
        form.addRow("Rotation", rotation_row)
        form.addRow("New values", policy_row)
        form.addRow("", self.high_value)
        form.addRow("History", self.history)
        form.addRow("", self.restore_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addStretch(1)
        buttons.addWidget(self.delete_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addStretch(1)

        save = QAction("Save", self, shortcut=QKeySequence.StandardKey.Save, triggered=self.save)
        save.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.addAction(save)
        self._connect_line(self.value, None)
        self.generate_button.clicked.connect(self.open_generator)
        self.add_field_button.clicked.connect(lambda: self._add_field("", stored=False).setFocus())
        for signal in (self.name.textEdited, self.type.currentIndexChanged, self.tags.textEdited,
                       self.description.textChanged, self.expires.toggled, self.expiry.dateChanged,
                       self.rotation.valueChanged, self.high_value.toggled, self.rotator.currentIndexChanged,
                       self.policy_alphabet.currentIndexChanged, self.policy_length.valueChanged):
            signal.connect(self._touched)
        self.expires.toggled.connect(self.expiry.setEnabled)
        self.rotator.currentIndexChanged.connect(self._enable_policy)
        self.policy_alphabet.currentIndexChanged.connect(self._enable_policy)
        self.history.currentItemChanged.connect(self._history_selected)
        self.restore_button.clicked.connect(self.restore_selected)
        self.save_button.clicked.connect(self.save)
        self.delete_button.clicked.connect(self.ask_delete)
        self.clear()

    # -- showing ----------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        return self._dirty or self.value.dirty or any(line.dirty for _k, line in self.field_lines.values())

    def _touched(self) -> None:
        if not self._loading:
            self._dirty = True

    def clear(self) -> None:
        """Empty every widget (on lock, or when nothing is selected)."""
        self._loading = True
        self.current, self.is_new, self._loaded_updated, self._loaded = None, False, None, None
        self.name.clear()
        self.type.setCurrentIndex(self.type.findData(SecretType.GENERIC))
        self._reset_value(stored=False)
        self._clear_fields()
        self.tags.clear()
        self.description.clear()
        self.expires.setChecked(False)
        self.expiry.setEnabled(False)
        self.expiry.setDate(QDate.currentDate())
        self.rotation.setValue(0)
        self.rotator.setCurrentIndex(0)
        self.policy_alphabet.setCurrentIndex(0)
        self.policy_length.setValue(DEFAULT_LENGTH)
        self.high_value.setChecked(False)
        self.history.clear()
        self.restore_button.setEnabled(False)
        self.status.clear()
        self._close_dialogs()
        self._dirty = False
        self._loading = False
        self._enable(False)

    def load(self, name: str) -> None:
        """Show a stored secret's metadata; its value and fields stay hidden."""
        vault = self.controller.vault
        if vault is None:
            return
        try:
            secret = vault.peek(name)
        except VaultError as error:
            self.status.setText(str(error))
            return
        self.clear()
        self._loading = True
        self.current, self._loaded_updated = name, secret.updated
        self._loaded = Loaded(frozenset(secret.tags), secret.expires_at is not None, secret.rotation)
        self.name.setText(name)
        self.name.setReadOnly(True)
        self.type.setCurrentIndex(self.type.findData(secret.type))
        self._reset_value(stored=True)
        for key in sorted(secret.fields):
            self._add_field(key, stored=True)
        self.tags.setText(tags_text(secret.tags))
        self.description.setPlainText(secret.description)
        if secret.expires_at is not None:
            self.expires.setChecked(True)
            moment = secret.expires_at.astimezone(timezone.utc)
            self.expiry.setDate(QDate(moment.year, moment.month, moment.day))
        self.rotation.setValue(secret.rotation.every_days if secret.rotation else 0)
        self.rotator.setCurrentIndex(max(0, self.rotator.findData(secret.rotator)) if secret.rotator else 0)
        policy = secret.value_policy
        self.policy_alphabet.setCurrentIndex(max(0, self.policy_alphabet.findData(policy.alphabet)) if policy else 0)
        self.policy_length.setValue(policy.length if policy else DEFAULT_LENGTH)
        self.high_value.setChecked(secret.high_value)
        for version in reversed(secret.versions()):  # newest first; times only, never values
            when = version.created.astimezone().strftime("%Y-%m-%d %H:%M")
            current = version.version == secret.version
            item = QListWidgetItem(f"v{version.version}  {when}{'  (current)' if current else ''}")
            item.setData(VERSION_ROLE, None if current else version.version)
            self.history.addItem(item)
        self._loading = False
        self._dirty = False
        self._enable(True)

    def new_secret(self, folder: str = "") -> None:
        """An empty form for a new secret, its name started in ``folder``."""
        self.clear()
        self.is_new = True
        self.name.setReadOnly(False)
        self.name.setText(f"{folder}/" if folder else "")
        self._enable(True)
        self.delete_button.setEnabled(False)
        self.name.setFocus()

    def refresh(self) -> None:
        """The vault changed: reload the shown secret unless the user is editing it."""
        vault = self.controller.vault
        if self.current is None or vault is None:
            return
        try:
            secret = vault.peek(self.current)
        except VaultError:
            name = self.current
            self.clear()
            self.status.setText(f"'{name}' was deleted.")
            return
        if secret.updated != self._loaded_updated:
            if self.dirty:
                self.status.setText("This secret changed elsewhere; saving keeps your edits.")
            else:
                self.load(self.current)

    def _enable(self, on: bool) -> None:
        for widget in (self.name, self.type, self.value, self.generate_button, self.add_field_button, self.tags,
                       self.description, self.expires, self.rotation, self.rotator, self.high_value, self.history,
                       self.save_button, self.delete_button):
            widget.setEnabled(on)
        self.expiry.setEnabled(on and self.expires.isChecked())
        self._enable_policy()

    def _enable_policy(self) -> None:
        """A value policy shapes only values a rotator makes itself: none for a person's."""
        makes_values = self.rotator.isEnabled() and registry.is_automatic(self.rotator.currentData())
        self.policy_alphabet.setEnabled(makes_values)
        self.policy_length.setEnabled(makes_values and self.policy_alphabet.currentData() is not None)

    def value_policy(self) -> ValuePolicy | None:
        alphabet = self.policy_alphabet.currentData()
        return ValuePolicy(self.policy_length.value(), alphabet) if alphabet else None

    def _reset_value(self, stored: bool) -> None:
        line = self.value
        line.stored, line.loaded, line.dirty = stored, False, False
        line.edit.clear()
        line.edit.setPlaceholderText(HIDDEN if stored else "value")
        line.copy_button.setVisible(stored)
        line.conceal()

    def _add_field(self, key: str, stored: bool) -> QLineEdit:
        key_edit = QLineEdit(key, readOnly=stored, placeholderText="field name")
        key_edit.setAccessibleName("Field name")
        line = SecretLine("Field value", stored=stored)
        row = QHBoxLayout()
        row.addWidget(key_edit)
        row.addWidget(line, 2)
        self.fields_box.addLayout(row)
        self.field_lines[key or f"\0new{len(self.field_lines)}"] = (key_edit, line)
        self._connect_line(line, key_edit)
        return key_edit

    def _clear_fields(self) -> None:
        while (row := self.fields_box.takeAt(0)) is not None:
            layout = row.layout()
            while layout is not None and (item := layout.takeAt(0)) is not None:
                widget = item.widget()
                widget.setParent(None)  # out of the panel's widget tree at once
                widget.deleteLater()
        self.field_lines = {}

    def _connect_line(self, line: SecretLine, key_edit: QLineEdit | None) -> None:
        def field() -> str | None:
            return None if key_edit is None else key_edit.text()

        line.reveal_wanted.connect(lambda: self.current and self.access.reveal(self.current, field(), line.show_value))
        line.copy_wanted.connect(lambda: self.current and self.access.copy(self.current, field()))

    def _history_selected(self, item: QListWidgetItem | None) -> None:
        self.restore_button.setEnabled(item is not None and item.data(VERSION_ROLE) is not None)

    def _close_dialogs(self) -> None:
        for dialog in (self.generator, self.confirm_box):
            if dialog is not None:
                if dialog.isVisible():
                    dialog.reject()
                dialog.setParent(None)
                dialog.deleteLater()
        self.generator = self.confirm_box = None

    # -- acting -----------------------------------------------------------------------------

    def open_generator(self) -> None:
        self._close_dialogs()
        self.generator = GeneratorDialog(self)
        self.generator.accepted.connect(lambda: self.generator and self.value.set_new_value(self.generator.value()))
        self.generator.open()

    def save(self) -> None:
        vault = self.controller.vault
        if vault is None or not (self.is_new or self.current):
            return
        name = self.name.text().strip()
        value = self.value.edit.text() if (self.is_new or self.value.dirty) else None
        if self.is_new and not value:
            self.status.setText("A new secret needs a value.")
            return
        old = self._loaded
        tags = parse_tags(self.tags.text())
        fields = {key_edit.text().strip(): line.edit.text() for key_edit, line in self.field_lines.values()
                  if key_edit.text().strip() and (line.dirty or not line.stored)}
        every = self.rotation.value()
        notify = old.rotation.notify_days if old and old.rotation else 7
        expiry = self.expiry.date()
        try:
            vault.set(name, value, type=self.type.currentData(), fields=fields, tags=tags,
                      description=self.description.toPlainText(),
                      expires_at=datetime(expiry.year(), expiry.month(), expiry.day(), tzinfo=timezone.utc)
                      if self.expires.isChecked() else None,
                      rotation=RotationPolicy(every, notify) if every else None,
                      high_value=self.high_value.isChecked(), rotator=self.rotator.currentData(),
                      value_policy=self.value_policy(), replace_metadata=True)
        except VaultError as error:
            self.status.setText(str(error))
            return
        self.load(name)
        self.status.setText("Saved.")
        self.saved.emit(name)

    def restore_selected(self) -> None:
        item = self.history.currentItem()
        vault = self.controller.vault
        if item is None or item.data(VERSION_ROLE) is None or vault is None or self.current is None:
            return
        name, version = self.current, int(item.data(VERSION_ROLE))
        try:
            secret = vault.restore(name, version)
        except VaultError as error:
            self.status.setText(str(error))
            return
        self.load(name)
        self.status.setText(f"Version {version} restored as version {secret.version}.")
        self.saved.emit(name)

    def ask_delete(self) -> None:
        if self.current is None:
            return
        self._close_dialogs()
        box = QMessageBox(QMessageBox.Icon.Warning, "Delete secret",
                          f"Delete '{self.current}'? Its history goes with it.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setAccessibleName("Confirm delete")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        yes = QMessageBox.StandardButton.Yes
        box.button(yes).setText("Delete")
        box.button(yes).setAccessibleName("Delete")
        box.button(QMessageBox.StandardButton.Cancel).setAccessibleName("Cancel")
        name = self.current
        box.buttonClicked.connect(lambda button: box.standardButton(button) == yes and self._delete(name))
        self.confirm_box = box
        box.open()

    def _delete(self, name: str) -> None:
        vault = self.controller.vault
        if vault is None:
            return
        try:
            vault.delete(name)
        except VaultError as error:
            self.status.setText(str(error))
            return
        self.clear()
        self.deleted.emit(name)
