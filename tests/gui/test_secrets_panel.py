"""The Secrets panel, driven as a user drives it: clicks, keys, a dropped file."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtTest import QAbstractItemModelTester
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QWidget,
)

from its_desktop.core.secrets import Secret, SecretType
from its_desktop.factors.base import QuietPrompter
from its_desktop.ui.clipboard import DEFAULT_TIMEOUT_SECONDS, HINTS, KDE_HINT
from its_desktop.ui.dialogs.generator import generate
from its_desktop.ui.models.folder_model import PATH_ROLE
from its_desktop.ui.models.secrets_model import Column
from its_desktop.ui.panels.secrets import SecretsPanel
from tests.conftest import PASSWORD

CTRL = Qt.KeyboardModifier.ControlModifier
LEFT = Qt.MouseButton.LeftButton
SEED = {  # name: (value, tags, description)
    "brokers/ibkr/api_key": ("IBKR-value-7f3a9c", {"env": "prod"}, "Interactive Brokers live key"),
    "brokers/ibkr/flex_token": ("FLEX-value-55aa", {"env": "prod"}, "flex queries"),
    "exchanges/binance/api_secret": ("BNB-value-0001", {"desk": "crypto"}, "spot desk"),
    "databases/ticks/password": ("pg-value-Password!1", {}, "tick store on the colo box"),
}


@pytest.fixture
def panel(qtbot, unlocked_controller):
    vault = unlocked_controller.vault
    for name, (value, tags, description) in SEED.items():
        vault.set(name, value, type="api_key", tags=tags, description=description, fields={"account": "U123"})
    widget = SecretsPanel(unlocked_controller)
    # Qt's own model checker watches both models through every test (its complaints are warnings,
    # and a warning fails the test).
    widget.testers = [QAbstractItemModelTester(m, QAbstractItemModelTester.FailureReportingMode.Warning)
                      for m in (widget.model, widget.folder_model)]
    qtbot.addWidget(widget)
    widget.resize(1200, 700)
    widget.show()
    widget.activateWindow()
    qtbot.waitUntil(widget.isActiveWindow)  # shortcuts only reach an active window
    unlocked_controller.unlocked.emit()
    yield widget
    widget.clipboard.timeout_seconds = DEFAULT_TIMEOUT_SECONDS
    widget.clipboard.clear_now()


def shown_names(panel: SecretsPanel) -> list[str]:
    return [panel.model.name_at(row) for row in range(panel.model.rowCount())]


def click_row(qtbot, panel: SecretsPanel, name: str) -> None:
    row = panel.model.row_of(name)
    assert row >= 0, f"{name} is not in the list"
    rect = panel.table.visualRect(panel.model.index(row, Column.NAME))
    qtbot.mouseClick(panel.table.viewport(), LEFT, pos=rect.center())
    assert panel.editor.current == name


def refocus(qtbot, panel: SecretsPanel) -> None:
    """The offscreen platform does not hand the focus back after a dialog; a desktop does."""
    panel.activateWindow()
    qtbot.waitUntil(panel.isActiveWindow)


def ops_for(vault, name: str) -> list[str]:
    return [r.event.op for r in vault.audit_records() if r.event.name == name]


def test_models_pass_the_model_tester(qtbot, panel, qtmodeltester):
    qtmodeltester.check(panel.model)
    qtbot.keyClicks(panel.search, "ibkr")
    panel.table.sortByColumn(Column.UPDATED, Qt.SortOrder.DescendingOrder)
    panel.controller.vault.set("brokers/ibkr/zz_new", "v", description="ibkr extra")
    panel.controller.notify_changed()
    panel.controller.vault.delete("brokers/ibkr/flex_token")
    panel.controller.notify_changed()
    assert shown_names(panel) == ["brokers/ibkr/zz_new", "brokers/ibkr/api_key"]
    panel.search.clear()
    qtmodeltester.check(panel.folder_model)
    panel.controller.vault.set("new/folder/deep/secret", "v")
    panel.controller.vault.delete("databases/ticks/password")
    panel.controller.notify_changed()
    assert panel.folder_model.index_of("new/folder/deep").isValid()
    assert not panel.folder_model.index_of("databases").isValid()


def test_new_secret_with_ctrl_n_and_the_editor(qtbot, panel):
    panel.table.setFocus()
    qtbot.keyClick(panel.table, Qt.Key.Key_N, CTRL)
    editor = panel.editor
    assert editor.is_new and editor.name.hasFocus()
    qtbot.keyClicks(editor.name, "brokers/saxo/api_key")
    qtbot.keyClicks(editor.value.edit, "SAXO-secret-1")
    assert editor.value.edit.echoMode() == QLineEdit.EchoMode.Password
    editor.type.setCurrentIndex(editor.type.findText("api_key"))
    qtbot.keyClicks(editor.tags, "env=paper")
    qtbot.mouseClick(editor.save_button, LEFT)
    assert "brokers/saxo/api_key" in shown_names(panel)
    assert panel.selected_name() == "brokers/saxo/api_key"
    secret = panel.controller.vault.peek("brokers/saxo/api_key")
    assert (secret.value, secret.type.value, secret.tags) == ("SAXO-secret-1", "api_key", {"env": "paper"})
    assert editor.value.edit.text() == "", "after saving, the value is hidden again"


def test_search_as_you_type_over_names_tags_and_descriptions(qtbot, panel):
    panel.table.setFocus()
    qtbot.keyClick(panel.table, Qt.Key.Key_F, CTRL)
    assert panel.search.hasFocus()
    qtbot.keyClicks(panel.search, "IBKR")
    assert sorted(shown_names(panel)) == ["brokers/ibkr/api_key", "brokers/ibkr/flex_token"]
    qtbot.keyClicks(panel.search, " live")  # every word must match, in any field
    assert shown_names(panel) == ["brokers/ibkr/api_key"]
    qtbot.keyClick(panel.search, Qt.Key.Key_Return)  # on to the result
    assert panel.table.hasFocus() and panel.editor.current == "brokers/ibkr/api_key"
    panel.search.clear()
    qtbot.keyClicks(panel.search, "desk=crypto")  # a tag
    assert shown_names(panel) == ["exchanges/binance/api_secret"]
    panel.search.clear()
    qtbot.keyClicks(panel.search, "colo")  # a description
    assert shown_names(panel) == ["databases/ticks/password"]
    qtbot.keyClick(panel.search, Qt.Key.Key_Backspace)
    assert shown_names(panel) == ["databases/ticks/password"]
    panel.search.clear()
    assert len(shown_names(panel)) == len(SEED)
    assert panel.count.text() == f"{len(SEED)} secrets"


def test_sorting_by_a_header_click(qtbot, panel):
    vault = panel.controller.vault
    vault.set("brokers/ibkr/flex_token", "newer")  # the most recently updated
    panel.controller.notify_changed()
    header = panel.table.horizontalHeader()
    x = header.sectionViewportPosition(Column.UPDATED) + 5
    qtbot.mouseClick(header.viewport(), LEFT, pos=QPoint(x, header.height() // 2))
    last = panel.model.rowCount() - 1
    assert panel.model.name_at(last) == "brokers/ibkr/flex_token", "oldest first"
    qtbot.mouseClick(header.viewport(), LEFT, pos=QPoint(x, header.height() // 2))
    assert panel.model.name_at(0) == "brokers/ibkr/flex_token", "newest first"


def test_reveal_shows_the_value_only_after_reveal_and_audits_a_read(qtbot, panel):
    vault = panel.controller.vault
    name = "brokers/ibkr/api_key"
    value = SEED[name][0]
    click_row(qtbot, panel, name)
    line = panel.editor.value
    assert line.edit.text() == "" and line.edit.placeholderText().startswith("•")
    assert "read" not in ops_for(vault, name)
    qtbot.mouseClick(line.reveal_button, LEFT)
    assert line.edit.text() == value and line.edit.echoMode() == QLineEdit.EchoMode.Normal
    assert "read" in ops_for(vault, name)
    qtbot.mouseClick(line.reveal_button, LEFT)  # Hide: the value leaves the widget
    assert line.edit.text() == ""
    key_edit, field_line = next(iter(panel.editor.field_lines.values()))
    assert key_edit.text() == "account" and field_line.edit.text() == ""
    qtbot.mouseClick(field_line.reveal_button, LEFT)
    assert field_line.edit.text() == "U123"


def test_copy_audits_marks_and_clears_the_clipboard(qtbot, panel):
    vault = panel.controller.vault
    panel.clipboard.timeout_seconds = 0.3
    name, value = "exchanges/binance/api_secret", SEED["exchanges/binance/api_secret"][0]
    click_row(qtbot, panel, name)
    panel.table.setFocus()
    qtbot.keyClick(panel.table, Qt.Key.Key_C, CTRL)
    clipboard = QGuiApplication.clipboard()
    assert clipboard.text() == value
    mime = clipboard.mimeData()
    for kind, marker in HINTS.items():
        assert mime.hasFormat(kind) and bytes(mime.data(kind)) == marker
    assert bytes(mime.data(KDE_HINT)) == b"secret"
    assert "copy" in ops_for(vault, name)
    qtbot.waitUntil(lambda: clipboard.text() == "", timeout=3000)
    assert "cleared" in panel.status.text().lower()


def test_copy_leaves_what_the_user_copied_afterwards(qtbot, panel):
    panel.clipboard.timeout_seconds = 0.3
    click_row(qtbot, panel, "brokers/ibkr/api_key")
    qtbot.keyClick(panel.table, Qt.Key.Key_C, CTRL)
    assert QGuiApplication.clipboard().text() == SEED["brokers/ibkr/api_key"][0]
    QGuiApplication.clipboard().setText("the user's own text")
    qtbot.wait(700)
    assert QGuiApplication.clipboard().text() == "the user's own text"


def test_ctrl_c_in_the_search_field_copies_the_search_text(qtbot, panel):
    click_row(qtbot, panel, "brokers/ibkr/api_key")
    qtbot.keyClicks(panel.search, "ibkr")
    panel.search.selectAll()
    qtbot.keyClick(panel.search, Qt.Key.Key_C, CTRL)
    assert QGuiApplication.clipboard().text() == "ibkr"


def test_high_value_secret_asks_for_the_password_first(qtbot, panel):
    vault = panel.controller.vault
    name, value = "brokers/ibkr/flex_token", SEED["brokers/ibkr/flex_token"][0]
    vault.set(name, high_value=True)
    panel.controller.notify_changed()
    click_row(qtbot, panel, name)
    line = panel.editor.value
    qtbot.mouseClick(line.reveal_button, LEFT)
    dialog = panel.access.reauth
    assert dialog is not None and dialog.isVisible()
    assert line.edit.text() == "" and "read" not in ops_for(vault, name)
    qtbot.keyClicks(dialog.password, "not the password")
    qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "did not match" in dialog.status.text(), timeout=20_000)
    assert line.edit.text() == ""
    qtbot.keyClicks(dialog.password, PASSWORD)
    qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: line.edit.text() == value, timeout=20_000)
    assert not dialog.isVisible() and "read" in ops_for(vault, name)
    refocus(qtbot, panel)

    qtbot.keyClick(panel.table, Qt.Key.Key_C, CTRL)  # copying asks again
    assert panel.access.reauth.isVisible() and "copy" not in ops_for(vault, name)
    qtbot.keyClicks(panel.access.reauth.password, PASSWORD)
    qtbot.keyClick(panel.access.reauth.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: QGuiApplication.clipboard().text() == value, timeout=20_000)
    assert "copy" in ops_for(vault, name)


def test_edit_then_restore_from_history(qtbot, panel):
    vault = panel.controller.vault
    name, old = "databases/ticks/password", SEED["databases/ticks/password"][0]
    click_row(qtbot, panel, name)
    editor = panel.editor
    qtbot.keyClicks(editor.value.edit, "pg-value-NEW")
    editor.description.selectAll()
    qtbot.keyClicks(editor.description, "moved to the new box")
    editor.rotation.lineEdit().selectAll()
    qtbot.keyClicks(editor.rotation, "30")
    qtbot.mouseClick(editor.save_button, LEFT)
    secret = vault.peek(name)
    assert (secret.value, secret.version, secret.description) == ("pg-value-NEW", 2, "moved to the new box")
    assert secret.rotation.every_days == 30
    assert editor.history.count() == 2
    texts = [editor.history.item(i).text() for i in range(editor.history.count())]
    assert all(old not in t and "NEW" not in t for t in texts), "history shows times, never values"
    assert not editor.restore_button.isEnabled()
    rect = editor.history.visualItemRect(editor.history.item(1))  # v1, the older one
    qtbot.mouseClick(editor.history.viewport(), LEFT, pos=rect.center())
    assert editor.restore_button.isEnabled()
    qtbot.mouseClick(editor.restore_button, LEFT)
    secret = vault.peek(name)
    assert (secret.value, secret.version) == (old, 3)
    assert "restore" in ops_for(vault, name)


def test_delete_asks_first(qtbot, panel):
    name = "brokers/ibkr/flex_token"
    click_row(qtbot, panel, name)
    qtbot.mouseClick(panel.editor.delete_button, LEFT)
    box = panel.editor.confirm_box
    assert box.isVisible() and name in box.text()
    qtbot.mouseClick(box.button(box.StandardButton.Cancel), LEFT)
    assert name in panel.controller.vault.names()
    refocus(qtbot, panel)
    click_row(qtbot, panel, name)
    qtbot.keyClick(panel.table, Qt.Key.Key_Delete)  # the Delete key in the list asks too
    box = panel.editor.confirm_box
    assert box.isVisible()
    qtbot.mouseClick(box.button(box.StandardButton.Yes), LEFT)
    assert name not in panel.controller.vault.names()
    assert name not in shown_names(panel) and panel.editor.current != name
    assert "Deleted" in panel.status.text()


def drop_file(panel: SecretsPanel, path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    where = QPointF(panel.rect().center())
    enter = QDragEnterEvent(where.toPoint(), Qt.DropAction.CopyAction, mime, LEFT, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(panel, enter)
    assert enter.isAccepted()
    drop = QDropEvent(where, Qt.DropAction.CopyAction, mime, LEFT, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(panel, drop)


def test_env_file_drop_previews_names_and_imports_on_confirm(qtbot, panel, tmp_path):
    env = tmp_path / ".env"
    env.write_text("# alpha bot\nALPHA_API_KEY=alpha-key-value\nexport ALPHA_PASSWORD='pw value'\n")
    folder = panel.folder_model.index_of("brokers")
    qtbot.mouseClick(panel.folders.viewport(), LEFT, pos=panel.folders.visualRect(folder).center())
    drop_file(panel, env)
    dialog = panel.import_dialog
    assert dialog.isVisible()
    names = [dialog.names.item(i).text() for i in range(dialog.names.count())]
    assert names == ["brokers/ALPHA_API_KEY", "brokers/ALPHA_PASSWORD"]
    dialog.prefix.selectAll()
    qtbot.keyClicks(dialog.prefix, "bots/alpha")
    assert dialog.names.item(0).text() == "bots/alpha/ALPHA_API_KEY"
    preview = " ".join(dialog.names.item(i).text() for i in range(dialog.names.count()))
    assert "value" not in preview, "the preview shows names, never values"
    qtbot.mouseClick(dialog.import_button, LEFT)
    vault = panel.controller.vault
    assert vault.peek("bots/alpha/ALPHA_PASSWORD").value == "pw value"
    assert vault.peek("bots/alpha/ALPHA_API_KEY").type.value == "api_key"
    assert panel.folder_model.index_of("bots/alpha").isValid()
    assert "2 created" in panel.status.text()


def test_env_file_with_bad_lines_lists_them_and_imports_nothing(qtbot, panel, tmp_path):
    env = tmp_path / "bad.env"
    env.write_text("GOOD=1\nthis is not a line\nALSO_GOOD=2\nBROKEN='unterminated\n")
    drop_file(panel, env)
    dialog = panel.import_dialog
    lines = [dialog.names.item(i).text() for i in range(dialog.names.count())]
    assert lines[0].startswith("line 2:") and lines[1].startswith("line 4:")
    assert not dialog.import_button.isEnabled()
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Cancel), LEFT)
    assert "GOOD" not in panel.controller.vault.names()


def test_folder_tree_filters_the_list(qtbot, panel):
    panel.folders.expandAll()
    index = panel.folder_model.index_of("brokers/ibkr")
    qtbot.mouseClick(panel.folders.viewport(), LEFT, pos=panel.folders.visualRect(index).center())
    assert panel.folders.currentIndex().data(PATH_ROLE) == "brokers/ibkr"
    assert sorted(shown_names(panel)) == ["brokers/ibkr/api_key", "brokers/ibkr/flex_token"]
    qtbot.keyClicks(panel.search, "flex")
    assert shown_names(panel) == ["brokers/ibkr/flex_token"]
    panel.search.clear()
    root = panel.folder_model.index_of("")
    qtbot.mouseClick(panel.folders.viewport(), LEFT, pos=panel.folders.visualRect(root).center())
    assert len(shown_names(panel)) == len(SEED)


def test_follows_vault_changes_row_by_row(qtbot, panel):
    resets = []
    for signal in (panel.model.modelReset, panel.model.layoutChanged):
        signal.connect(lambda *args: resets.append(args))
    vault = panel.controller.vault
    with qtbot.waitSignal(panel.model.rowsInserted):
        vault.set("alerts/telegram", "tg-value", description="bot")
        panel.controller.notify_changed()
    with qtbot.waitSignal(panel.model.dataChanged):
        vault.set("alerts/telegram", tags={"env": "prod"})
        panel.controller.notify_changed()
    assert panel.model.get("alerts/telegram").tags == "env=prod"
    with qtbot.waitSignal(panel.model.rowsRemoved):
        vault.delete("alerts/telegram")
        panel.controller.notify_changed()
    assert resets == [], "a vault change never resets or re-lays out the list"
    assert shown_names(panel) == sorted(vault.names()) and panel.model.total == len(SEED)


@pytest.mark.parametrize("order", [Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder])
@pytest.mark.parametrize("query", ["", "prod"])
def test_list_matches_the_vault_after_changes_in_any_order(qtbot, panel, order, query):
    vault = panel.controller.vault
    panel.table.sortByColumn(Column.UPDATED, order)
    qtbot.keyClicks(panel.search, query)
    vault.set("brokers/ibkr/aaa", "v", tags={"env": "prod"})
    vault.set("brokers/ibkr/api_key", description="renamed desk")  # its updated time moves
    vault.delete("exchanges/binance/api_secret")
    panel.controller.notify_changed()
    vault.set("databases/ticks/password", tags={"env": "prod"})  # now matches "prod"
    panel.controller.notify_changed()
    expected = sorted((s for s in vault.secrets() if query in str(s.tags) + s.name + s.description),
                      key=lambda s: s.updated, reverse=order == Qt.SortOrder.DescendingOrder)
    assert shown_names(panel) == [s.name for s in expected]
    assert panel.model.total == len(vault.names())


def test_unsaved_edits_are_not_dropped_silently(qtbot, panel):
    click_row(qtbot, panel, "brokers/ibkr/api_key")
    qtbot.keyClicks(panel.editor.tags, ", desk=fx")
    rect = panel.table.visualRect(panel.model.index(panel.model.row_of("brokers/ibkr/flex_token"), 0))
    qtbot.mouseClick(panel.table.viewport(), LEFT, pos=rect.center())
    box = panel.discard_box
    assert box.isVisible() and panel.editor.current == "brokers/ibkr/api_key"
    qtbot.mouseClick(box.button(box.StandardButton.Cancel), LEFT)
    assert panel.selected_name() == "brokers/ibkr/api_key" and "desk=fx" in panel.editor.tags.text()
    assert panel.table.currentIndex().row() == panel.model.row_of("brokers/ibkr/api_key")


def test_generator_fills_the_value(qtbot, panel):
    panel.table.setFocus()
    qtbot.keyClick(panel.table, Qt.Key.Key_N, CTRL)
    qtbot.mouseClick(panel.editor.generate_button, LEFT)
    dialog = panel.editor.generator
    assert dialog.isVisible() and dialog.result.echoMode() == QLineEdit.EchoMode.Password
    dialog.preset.setCurrentText("API key (letters and digits)")
    dialog.length.lineEdit().selectAll()
    qtbot.keyClicks(dialog.length, "24")
    qtbot.mouseClick(dialog.use_button, LEFT)
    value = panel.editor.value.edit.text()
    assert len(value) == 24 and value.isalnum() and panel.editor.value.dirty
    assert dialog.result.text() == ""


def test_generate_keeps_every_chosen_class():
    for _ in range(50):
        value = generate(8, ("lower", "digits"))
        assert any(c.islower() for c in value) and any(c.isdigit() for c in value) and value.isalnum()
    assert len(generate(64, ())) == 64 and set(generate(64, ())) <= set("0123456789abcdef")


def widget_texts(widget: QWidget) -> list[str]:
    texts = [widget.toolTip(), widget.windowTitle(), widget.accessibleName(), widget.accessibleDescription()]
    if isinstance(widget, QLineEdit):
        texts += [widget.text(), widget.placeholderText()]
    elif isinstance(widget, (QLabel, QAbstractButton)):
        texts.append(widget.text())
    elif isinstance(widget, QPlainTextEdit):
        texts.append(widget.toPlainText())
    elif isinstance(widget, QComboBox):
        texts += [widget.itemText(i) for i in range(widget.count())]
    if isinstance(widget, QAbstractItemView) and widget.model() is not None:
        model = widget.model()
        texts += [str(model.index(r, 0).data()) for r in range(model.rowCount())]
    return texts


def test_lock_empties_every_model_and_widget(qtbot, panel):
    click_row(qtbot, panel, "brokers/ibkr/api_key")
    qtbot.mouseClick(panel.editor.value.reveal_button, LEFT)
    qtbot.keyClicks(panel.search, "ibkr")
    qtbot.keyClick(panel.table, Qt.Key.Key_C, CTRL)
    panel.table.setFocus()
    qtbot.mouseClick(panel.editor.generate_button, LEFT)
    assert panel.editor.value.edit.text() == SEED["brokers/ibkr/api_key"][0]

    panel.controller.lock()

    assert panel.model.rowCount() == 0 and panel.folder_model.rowCount() == 0
    assert panel.editor.history.count() == 0
    assert QGuiApplication.clipboard().text() == "", "our value leaves the clipboard at lock"
    secrets_shown = [value for value, _tags, _d in SEED.values()] + ["U123", "Interactive", "colo"]
    type_names = {kind.value for kind in SecretType}  # "api_key", "password": the type list's own words
    secrets_shown += [part for name in SEED for part in name.split("/") if part not in type_names]
    for widget in [panel, *panel.findChildren(QWidget)]:
        for text in widget_texts(widget):
            for secret in secrets_shown:
                assert secret not in text, f"{widget!r} still shows {secret!r}"
    visible = [w for w in QApplication.topLevelWidgets() if w.isVisible() and w is not panel]
    assert visible == [], "no dialog that could show vault data stays open"

    panel.controller.session.unlock(PASSWORD, QuietPrompter())  # and it all comes back
    panel.controller.unlocked.emit()
    assert sorted(shown_names(panel)) == sorted(SEED)


def test_every_interactive_widget_has_an_accessible_name(qtbot, panel):
    click_row(qtbot, panel, "brokers/ibkr/api_key")
    interactive = (QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox, QPlainTextEdit, QAbstractItemView)
    compound = (QLineEdit, QAbstractSpinBox, QComboBox, QAbstractItemView)

    def part_of_a_named_widget(widget: QWidget) -> bool:  # Qt's own parts: a table's corner button...
        parent = widget.parentWidget()
        while parent is not None and parent is not panel:
            if isinstance(parent, compound):
                return True
            parent = parent.parentWidget()
        return False

    checked = 0
    for widget in panel.findChildren(QWidget):
        if isinstance(widget, interactive) and widget.focusPolicy() != Qt.FocusPolicy.NoFocus \
                and not part_of_a_named_widget(widget):
            assert widget.accessibleName(), f"{type(widget).__name__} has no accessible name"
            checked += 1
    assert checked > 20


def test_expiry_shows_in_the_list(qtbot, panel):
    vault = panel.controller.vault
    vault.set("exchanges/binance/api_secret", expires_at=datetime(2031, 5, 17, tzinfo=timezone.utc))
    panel.controller.notify_changed()
    row = panel.model.row_of("exchanges/binance/api_secret")
    assert panel.model.index(row, Column.EXPIRY).data() == "2031-05-17"
    assert panel.model.index(row, Column.TAGS).data() == "desk=crypto"


def test_imported_secrets_are_tagged_with_their_file(tmp_path, panel):
    """Imported secrets are plain Secrets tagged with their source, as ``its-vault import-env`` makes them."""
    env = tmp_path / "prod.env"
    env.write_text("DB_PASSWORD=x\n")
    panel.import_env_file(env)
    secrets = panel.import_dialog.secrets("prod.env")
    assert [type(s) for s in secrets] == [Secret] and secrets[0].tags == {"source": "prod.env"}
    panel.import_dialog.reject()


def test_removing_a_tag_expiry_and_policy_in_the_editor_removes_them(qtbot, panel):
    from datetime import datetime, timezone

    from its_desktop.core.rotation import RotationPolicy

    vault = panel.controller.vault
    vault.set("brokers/ibkr/api_key", tags={"desk": "fx"}, rotation=RotationPolicy(30),
              expires_at=datetime(2030, 1, 1, tzinfo=timezone.utc))
    panel.controller.notify_changed()
    click_row(qtbot, panel, "brokers/ibkr/api_key")
    editor = panel.editor
    editor.tags.clear()
    editor.expires.setChecked(False)
    editor.rotation.setValue(0)
    qtbot.mouseClick(editor.save_button, LEFT)
    secret = vault.peek("brokers/ibkr/api_key")
    assert secret.tags == {} and secret.expires_at is None and secret.rotation is None
    assert editor.status.text() == "Saved."
