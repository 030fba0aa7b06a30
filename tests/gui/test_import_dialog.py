"""File → Import… driven as a user would: Ctrl+I, a KDBX made with pykeepass, Preview, Import;
the preview shows names and never values; a file with problems imports nothing until "Import
the valid part" is ticked; locking forgets everything the dialog read."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QListWidget, QTableWidget

from its_desktop.core.vault.api import Vault
from its_desktop.factors.base import QuietPrompter
from its_desktop.ui.dialogs.import_dialog import IMPORT_SHORTCUT, ImportDialog, add_import_action
from tests.conftest import FAST_KDF, PASSWORD
from tests.unit.test_importers import KDBX_PASSWORD, SECRETS, bitwarden_export, make_kdbx, write

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def action(qtbot, window):
    """The window with Import… added, its vault created and unlocked."""
    added = add_import_action(window)
    assert not added.isEnabled(), "nothing to import into while locked"
    Vault.create(window.controller.path, PASSWORD, kdf=FAST_KDF).lock()
    window.controller.session.unlock(PASSWORD, QuietPrompter())
    window.controller.unlocked.emit()
    assert added.isEnabled()
    yield added
    qtbot.waitUntil(lambda: window.controller.runner.pending == 0, timeout=30_000)


def open_dialog(qtbot, window) -> ImportDialog:
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    dialog = window.findChild(ImportDialog)
    assert dialog is not None and dialog.isVisible()
    return dialog


def choose(dialog: ImportDialog, kind: str, path) -> None:
    dialog.kind.setCurrentIndex(dialog.kind.findData(kind))
    dialog.path.setText(str(path))


def preview(qtbot, dialog: ImportDialog) -> None:
    qtbot.mouseClick(dialog.preview_button, LEFT)
    qtbot.waitUntil(lambda: dialog.table.rowCount() > 0 or "error" in dialog.status.text().lower(), timeout=20_000)


def shown_text(dialog: ImportDialog) -> str:
    """Every text the dialog shows: table cells, list rows, labels and fields."""
    texts = [w.text() for w in dialog.findChildren(QLabel) + dialog.findChildren(QLineEdit)]
    for table in dialog.findChildren(QTableWidget):
        texts += [table.item(r, c).text() for r in range(table.rowCount()) for c in range(table.columnCount())]
    for items in dialog.findChildren(QListWidget):
        texts += [items.item(r).text() for r in range(items.count())]
    return "\n".join(texts)


def table(dialog: ImportDialog) -> list[tuple[str, str, str]]:
    return [tuple(dialog.table.item(r, c).text() for c in range(3)) for r in range(dialog.table.rowCount())]


def test_the_action_sits_in_the_vault_menu_with_its_shortcut(action, window):
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Vault")
    assert menu.actions()[0] is action and action.shortcut().toString() == IMPORT_SHORTCUT
    window.controller.lock(quick=False)
    assert not action.isEnabled()


def test_a_kdbx_previewed_by_name_then_imported(qtbot, action, window, tmp_path):
    dialog = open_dialog(qtbot, window)
    assert not dialog.password.isVisible() and not dialog.mapping.isVisible()
    choose(dialog, "kdbx", make_kdbx(tmp_path / "desk.kdbx"))
    assert dialog.password.isVisible()
    qtbot.keyClicks(dialog.password, KDBX_PASSWORD)
    qtbot.keyClicks(dialog.prefix, "keepass")
    preview(qtbot, dialog)
    assert dialog.password.text() == "", "the database password is not kept in the widget"
    assert table(dialog) == [("keepass/Brokers/IBKR/API", "password", "create"),
                             ("keepass/Brokers/IBKR/API/totp", "totp", "create"),
                             ("keepass/Exchanges/Binance", "password", "create"),
                             ("keepass/Exchanges/Binance/totp", "totp", "create"),
                             ("keepass/Top level", "note", "create")]
    assert "Left out: entry 4 'Old broker': in the recycle bin, left out" in shown_text(dialog)
    assert not dialog.accept_partial.isVisible() and dialog.import_button.isEnabled()
    assert all(value not in shown_text(dialog) for value in SECRETS)

    dialog.prefix.clear()  # the prefix re-applies without reading the file again
    assert table(dialog)[0][0] == "Brokers/IBKR/API"
    qtbot.mouseClick(dialog.import_button, LEFT)
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Imported"), timeout=20_000)
    vault = window.controller.vault
    assert vault.value("Brokers/IBKR/API", "username") == "alice"
    assert dialog.table.rowCount() == 0 and not dialog.import_button.isEnabled(), "the values are forgotten"

    qtbot.mouseClick(dialog.preview_button, LEFT)  # the password was not kept: asked again
    qtbot.waitUntil(lambda: "wrong password" in dialog.status.text(), timeout=20_000)


def test_problems_block_the_import_until_the_valid_part_is_accepted(qtbot, action, window, tmp_path):
    document = bitwarden_export()
    document["items"][1]["login"] = "broken"
    dialog = open_dialog(qtbot, window)
    choose(dialog, "bitwarden", write(tmp_path / "bitwarden.json", json.dumps(document)))
    preview(qtbot, dialog)
    assert "Problem: item 2 'Binance': its 'login' part is missing or malformed" in shown_text(dialog)
    assert dialog.accept_partial.isVisible() and not dialog.accept_partial.isChecked()
    assert not dialog.import_button.isEnabled()
    dialog.start_import()  # even called directly, nothing happens
    assert window.controller.vault.names() == []

    qtbot.mouseClick(dialog.accept_partial, LEFT)
    assert dialog.import_button.isEnabled()
    qtbot.mouseClick(dialog.import_button, LEFT)
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Imported"), timeout=20_000)
    assert len(window.controller.vault.names()) == 6
    assert "1 problem left out" in dialog.status.text()


def test_duplicates_and_locking(qtbot, action, window, tmp_path):
    window.controller.vault.set("bots/API_KEY", "old")
    dialog = open_dialog(qtbot, window)
    choose(dialog, "env", write(tmp_path / "bot.env", "API_KEY=new\n"))
    qtbot.keyClicks(dialog.prefix, "bots")
    preview(qtbot, dialog)
    assert table(dialog) == [("bots/API_KEY", "generic", "skip (already in the vault)")]
    dialog.duplicates.setCurrentIndex(dialog.duplicates.findData("merge"))
    assert table(dialog) == [("bots/API_KEY", "generic", "merge (already in the vault)")]

    window.controller.lock(quick=False)
    assert not dialog.isVisible() and dialog.table.rowCount() == 0 and dialog._preview is None
