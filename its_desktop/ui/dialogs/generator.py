"""A password and API-key generator: length and character classes, from the OS's CSPRNG.

``core.passwords.generate_password`` only toggles symbols; traders also need keys of letters
and digits only (many exchanges reject symbols) or hex tokens, so the character classes are
chosen here, with the same guarantee: at least one character of every chosen class.
"""

from __future__ import annotations

import secrets
import string

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...core.passwords import DEFAULT_LENGTH, MIN_LENGTH, SYMBOLS, generate_password

MAX_DIALOG_LENGTH = 256
CLASSES = {"lower": string.ascii_lowercase, "upper": string.ascii_uppercase, "digits": string.digits,
           "symbols": SYMBOLS}
PRESETS = {  # label: (length, classes)
    "Password": (DEFAULT_LENGTH, ("lower", "upper", "digits", "symbols")),
    "API key (letters and digits)": (40, ("lower", "upper", "digits")),
    "Hex token": (64, ()),
}
HEX = "0123456789abcdef"


def generate(length: int, classes: tuple[str, ...]) -> str:
    """A random string of ``length`` from the chosen classes, one of each at least; no class
    chosen means a hex token."""
    if not classes:
        return "".join(secrets.choice(HEX) for _ in range(length))
    if set(classes) == set(CLASSES):
        return generate_password(length, symbols=True)  # the core's recipe for the default case
    if length < len(classes):
        raise ValueError("too short for the chosen character classes")
    alphabet = "".join(CLASSES[c] for c in classes)
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(ch in CLASSES[c] for ch in candidate) for c in classes):
            return candidate


class GeneratorDialog(QDialog):
    """Pick a length and classes, see the result (masked unless "Show" is ticked), press Use.
    ``value()`` is the generated string after ``accepted``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Generate a secret")
        self.setAccessibleName("Generator")
        self.preset = QComboBox()
        self.preset.setAccessibleName("Generator preset")
        self.preset.addItems(list(PRESETS))
        self.length = QSpinBox(minimum=MIN_LENGTH, maximum=MAX_DIALOG_LENGTH, value=DEFAULT_LENGTH)
        self.length.setAccessibleName("Length")
        self.boxes = {name: QCheckBox(label) for name, label in
                      (("lower", "a-z"), ("upper", "A-Z"), ("digits", "0-9"), ("symbols", SYMBOLS))}
        for name, box in self.boxes.items():
            box.setAccessibleName(f"Use {name}")
            box.setChecked(True)
        self.result = QLineEdit(readOnly=True, echoMode=QLineEdit.EchoMode.Password)
        self.result.setAccessibleName("Generated value")
        self.result.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.show_box = QCheckBox("Show")
        self.show_box.setAccessibleName("Show generated value")
        self.again = QPushButton("Generate again")
        self.again.setAccessibleName("Generate again")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.use_button = self.buttons.addButton("Use", QDialogButtonBox.ButtonRole.AcceptRole)
        self.use_button.setAccessibleName("Use generated value")
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setAccessibleName("Cancel")

        classes = QHBoxLayout()
        for box in self.boxes.values():
            classes.addWidget(box)
        shown = QHBoxLayout()
        shown.addWidget(self.result, 1)
        shown.addWidget(self.show_box)
        shown.addWidget(self.again)
        form = QFormLayout()
        form.addRow("Kind", self.preset)
        form.addRow("Length", self.length)
        form.addRow("Characters", classes)
        form.addRow("Result", shown)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.buttons)

        self.preset.currentTextChanged.connect(self._apply_preset)
        self.length.valueChanged.connect(self.regenerate)
        for box in self.boxes.values():
            box.toggled.connect(self.regenerate)
        self.again.clicked.connect(self.regenerate)
        self.show_box.toggled.connect(lambda on: self.result.setEchoMode(
            QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.finished.connect(lambda _code: self.result.clear())  # the value leaves with value()
        self._value = ""
        self.regenerate()

    def _apply_preset(self, label: str) -> None:
        length, classes = PRESETS[label]
        for box in (self.length, *self.boxes.values()):
            box.blockSignals(True)
        self.length.setValue(length)
        for name, box in self.boxes.items():
            box.setChecked(name in classes)
        for box in (self.length, *self.boxes.values()):
            box.blockSignals(False)
        self.regenerate()

    def chosen_classes(self) -> tuple[str, ...]:
        return tuple(name for name, box in self.boxes.items() if box.isChecked())

    def regenerate(self) -> None:
        self._value = generate(self.length.value(), self.chosen_classes())
        self.result.setText(self._value)

    def accept(self) -> None:
        self._value = self.result.text()
        super().accept()

    def reject(self) -> None:
        self._value = ""
        super().reject()

    def value(self) -> str:
        """The accepted value, handed over once (the dialog forgets it)."""
        value, self._value = self._value, ""
        return value
