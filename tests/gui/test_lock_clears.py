"""Locking clears every model and widget that showed vault data, in every panel."""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, QAbstractListModel, QModelIndex, Qt
from PySide6.QtWidgets import QAbstractButton, QComboBox, QLabel, QLineEdit, QPlainTextEdit, QTextEdit

from its_desktop.core.rotation import RotationPolicy
from its_desktop.factors.base import QuietPrompter
from its_desktop.ui.window import MainWindow
from tests.conftest import PASSWORD

NAME = "brokers/canary/CANARYNAME7731"
VALUE = "CANARYVALUE9931"
CANARIES = ("CANARYNAME7731", VALUE, "canarytag5513")


def _model_texts(model: QAbstractItemModel, parent: QModelIndex = QModelIndex()) -> list[str]:
    texts = []
    # A list model's columnCount is private in PySide: it has one column.
    columns = 1 if isinstance(model, QAbstractListModel) else max(1, model.columnCount(parent))
    for row in range(model.rowCount(parent)):
        for column in range(columns):
            index = model.index(row, column, parent)
            for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.EditRole):
                value = model.data(index, role)
                if value is not None:
                    texts.append(str(value))
            if column == 0 and model.rowCount(index) > 0:
                texts += _model_texts(model, index)
    return texts


def _widget_texts(window: MainWindow) -> list[str]:
    texts = []
    for kind, read in ((QLineEdit, QLineEdit.text), (QLabel, QLabel.text), (QTextEdit, QTextEdit.toPlainText),
                       (QPlainTextEdit, QPlainTextEdit.toPlainText), (QAbstractButton, QAbstractButton.text)):
        texts += [read(w) for w in window.findChildren(kind)]
    for combo in window.findChildren(QComboBox):
        texts += [combo.itemText(i) for i in range(combo.count())]
    return texts


def test_nothing_secret_is_left_after_lock(qtbot, unlocked_controller):
    vault = unlocked_controller.vault
    vault.set(NAME, VALUE, type="password", tags={"desk": "canarytag5513"}, fields={"username": "CANARYNAME7731"},
              rotation=RotationPolicy(1), description="CANARYNAME7731 notes")
    window = MainWindow(unlocked_controller)
    qtbot.addWidget(window)
    window.show()
    unlocked_controller.unlocked.emit()
    for index in range(window.tabs.count()):  # every tab fills itself when shown
        window.tabs.setCurrentIndex(index)
    models = [m for m in window.findChildren(QAbstractItemModel)]
    shown = [t for m in models for t in _model_texts(m)] + _widget_texts(window)
    assert any("CANARYNAME7731" in t for t in shown), "the panels did show the vault's data"
    for panel in window.panels:
        assert not panel._stale, f"{panel.title} was never filled"
    unlocked_controller.lock()
    assert window.stack.currentWidget() is window.unlock_page
    left_models = [t for m in window.findChildren(QAbstractItemModel) for t in _model_texts(m)]
    left_widgets = _widget_texts(window)
    for canary in CANARIES:
        assert not [t for t in left_models if canary in t], f"a model still holds {canary}"
        assert not [t for t in left_widgets if canary in t], f"a widget still shows {canary}"


def test_quick_unlock_path_also_clears(qtbot, unlocked_controller):
    window = MainWindow(unlocked_controller)
    qtbot.addWidget(window)
    unlocked_controller.vault.set(NAME, VALUE)
    unlocked_controller.unlocked.emit()
    unlocked_controller.lock(quick=True)
    assert not [t for m in window.findChildren(QAbstractItemModel) for t in _model_texts(m) if "CANARY" in t]
    assert unlocked_controller.vault is None
    unlocked_controller.session.unlock(PASSWORD, QuietPrompter())
