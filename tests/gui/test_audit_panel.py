"""The audit log panel, driven as a user would: it opens on the newest records, scrolling loads
older ones, filters narrow the table, the banner tells an intact chain from a tampered one, an
export writes the filtered records, new records appear on top, and locking empties it all."""

from __future__ import annotations

import json
import stat
from datetime import datetime

import pytest
from PySide6.QtCore import QDate, QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QFileDialog,
    QLineEdit,
    QWidget,
)

from its_desktop.core.audit import Actor, AuditEvent, AuditFiles, AuditFilter
from its_desktop.core.vault.storage import writer_lock
from its_desktop.ui.models.audit_model import PAGE, AuditModel, Column
from its_desktop.ui.panels.audit import ALARM, CALM, AuditPanel

BOT = Actor("cli", 4242, "/usr/bin/its-vault")


def _append(vault, events: list[AuditEvent]) -> None:
    """Many records in one append (as a busy bot would leave them), under the writer lock."""
    log = vault.audit_reader().log  # (this flushes the session's queued records, under the lock itself)
    with writer_lock(vault.path):
        log.append(events)


def _reads(count: int, start: int = 0) -> list[AuditEvent]:
    return [AuditEvent("read", "ok", BOT, f"bots/alpha/key{i % 5}", f"read {i}") for i in range(start, start + count)]


@pytest.fixture
def panel(qtbot, unlocked_controller):
    widget = AuditPanel(unlocked_controller)

    def settle(_widget) -> None:  # background work ends before the panel is deleted
        qtbot.waitUntil(lambda: unlocked_controller.runner.pending == 0, timeout=10_000)

    qtbot.addWidget(widget, before_close_func=settle)
    widget.resize(1100, 600)
    widget.show()
    return widget


def _cell(model: AuditModel, row: int, column: Column) -> str:
    return model.data(model.index(row, column))


def _column(model: AuditModel, column: Column) -> list[str]:
    return [_cell(model, row, column) for row in range(model.rowCount())]


def _settled(qtbot, panel: AuditPanel, flt: AuditFilter | None = None) -> None:
    """Wait for the filter (if given) to be applied and its scan to finish."""
    qtbot.waitUntil(lambda: (flt is None or panel.model.filter == flt) and not panel.model.is_searching, timeout=10_000)


def _populate(qtbot, panel: AuditPanel) -> None:
    panel.controller.unlocked.emit()
    qtbot.waitUntil(lambda: panel.banner.text().startswith(("verified", "tampered")), timeout=10_000)


def test_opens_on_the_newest_records_with_names_decrypted(qtbot, qtmodeltester, panel):
    vault = panel.controller.vault
    vault.set("brokers/ibkr/api_key", "VALUE")
    _append(vault, _reads(1000))
    panel.controller.unlocked.emit()
    model = panel.model
    assert model.rowCount() == PAGE, "the first page is there at once, and only it"
    assert _cell(model, 0, Column.DETAIL) == "read 999" and _cell(model, 1, Column.DETAIL) == "read 998"
    assert (_cell(model, 0, Column.OPERATION), _cell(model, 0, Column.OUTCOME)) == ("read", "ok")
    assert (_cell(model, 0, Column.SECRET), _cell(model, 0, Column.ACTOR)) == ("bots/alpha/key4", "cli:4242")
    assert _cell(model, 0, Column.PROGRAM) == "its-vault"
    assert model.data(model.index(0, Column.PROGRAM), Qt.ItemDataRole.ToolTipRole) == "/usr/bin/its-vault"
    datetime.strptime(_cell(model, 0, Column.TIME), "%Y-%m-%d %H:%M:%S")
    assert model.headerData(Column.SECRET, Qt.Orientation.Horizontal) == "Secret"
    assert "VALUE" not in "".join(_column(model, Column.DETAIL))
    qtmodeltester.check(model)


def test_scrolling_to_the_end_fetches_older_records(qtbot, panel):
    vault = panel.controller.vault
    _append(vault, _reads(1000))
    panel.controller.unlocked.emit()
    model = panel.model
    total = len(list(vault.audit_records()))
    panel.view.setFocus()
    for _ in range(10):
        if model.rowCount() == total:
            break
        before = model.rowCount()
        qtbot.keyClick(panel.view, Qt.Key.Key_End, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: model.rowCount() > before)
    assert model.rowCount() == total and model.complete
    assert _cell(model, total - 1, Column.OPERATION) == "init", "the oldest record comes last"


def test_filters_by_operation_actor_secret_and_date(qtbot, qtmodeltester, panel):
    vault = panel.controller.vault
    for i in range(3):
        vault.set(f"db/main/pw{i}", "x")
    _append(vault, _reads(600))
    _populate(qtbot, panel)
    model = panel.model
    qtmodeltester.check(model)

    panel.op_filter.setCurrentText("create")
    _settled(qtbot, panel, AuditFilter(op="create"))
    assert _column(model, Column.SECRET) == ["db/main/pw2", "db/main/pw1", "db/main/pw0"]

    panel.op_filter.setCurrentText("")
    qtbot.keyClicks(panel.actor_filter, "cli:4242")
    qtbot.keyClick(panel.actor_filter, Qt.Key.Key_Return)
    _settled(qtbot, panel, AuditFilter(actor="cli:4242"))
    while model.canFetchMore(QModelIndex()):
        model.fetchMore(QModelIndex())
        _settled(qtbot, panel)
    assert model.rowCount() == 600 and set(_column(model, Column.ACTOR)) == {"cli:4242"}

    qtbot.keyClicks(panel.secret_filter, "bots/alpha/key3")
    _settled(qtbot, panel, AuditFilter(actor="cli:4242", name="bots/alpha/key3"))
    assert model.rowCount() == 120 and set(_column(model, Column.SECRET)) == {"bots/alpha/key3"}
    assert _cell(model, 0, Column.DETAIL) == "read 598"

    panel.actor_filter.clear()
    panel.secret_filter.clear()
    qtbot.keyClicks(panel.actor_filter, "cli:me")
    qtbot.keyClick(panel.actor_filter, Qt.Key.Key_Return)
    assert "kind:pid" in panel.status.text(), "a malformed actor is explained, not applied"


def test_filters_by_date_range(qtbot, panel):
    vault = panel.controller.vault
    days = [datetime(2026, 3, day, 12).astimezone() for day in (1, 2, 3, 4)]
    _append(vault, [AuditEvent("rotate", "ok", BOT, f"k/{d.day}", time=d) for d in days])
    _populate(qtbot, panel)
    qtbot.mouseClick(panel.date_filter, Qt.MouseButton.LeftButton)
    assert panel.since_edit.isEnabled()
    panel.since_edit.setDate(QDate(2026, 3, 2))
    panel.until_edit.setDate(QDate(2026, 3, 3))
    _settled(qtbot, panel, AuditFilter(since=days[1].replace(hour=0), until=days[3].replace(hour=0)))
    assert _column(panel.model, Column.SECRET) == ["k/3", "k/2"]
    assert panel.model.complete


def test_a_filter_change_drops_the_scan_in_flight(qtbot, qtmodeltester, unlocked_controller):
    vault = unlocked_controller.vault
    _append(vault, _reads(50))
    jobs = []
    model = AuditModel(lambda work, done, failed: jobs.append((work, done)))
    qtmodeltester.check(model)
    reader = vault.audit_reader()
    model.load(reader, AuditFilter(name="bots/alpha/key1"))
    assert model.is_searching and model.rowCount() == 0 and not model.canFetchMore(QModelIndex())
    model.load(reader, AuditFilter(name="bots/alpha/key2"))
    stale_work, stale_done = jobs[0]
    stale_done(stale_work())
    assert model.rowCount() == 0, "results for the old filter are dropped"
    work, done = jobs[1]
    done(work())
    assert model.rowCount() == 10 and set(_column(model, Column.SECRET)) == {"bots/alpha/key2"}
    assert model.complete


def test_banner_says_intact_then_tampered_after_an_edit(qtbot, panel):
    vault = panel.controller.vault
    vault.set("a", "1")
    vault.set("b", "2")
    _populate(qtbot, panel)
    count = len(list(vault.audit_records()))
    assert panel.banner.text() == f"verified: {count} records, chain intact"
    assert panel.banner.styleSheet() == CALM

    log = AuditFiles.beside(vault.path).log
    lines = log.read_bytes().splitlines(keepends=True)
    doc = json.loads(lines[1])
    doc["op"] = "delete"
    lines[1] = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    log.write_bytes(b"".join(lines))
    panel.populate()
    qtbot.waitUntil(lambda: panel.banner.text().startswith("tampered"), timeout=10_000)
    assert panel.banner.text().startswith("tampered at record 2: ")
    assert panel.banner.styleSheet() == ALARM


def test_export_writes_the_filtered_records_with_names(qtbot, panel, tmp_path, monkeypatch):
    vault = panel.controller.vault
    vault.set("db/main/password", "SECRET-VALUE")
    _append(vault, _reads(600))
    _populate(qtbot, panel)
    panel.op_filter.setCurrentText("read")
    _settled(qtbot, panel, AuditFilter(op="read"))
    assert panel.model.rowCount() < 600, "only a page is loaded; the export still has them all"
    target = tmp_path / "out" / "audit.jsonl"
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), ""))
    qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.export_button.isEnabled() and target.exists(), timeout=10_000)

    exported = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(exported) == 600 and {r["op"] for r in exported} == {"read"}
    assert [r["detail"] for r in exported[:2]] == ["read 0", "read 1"], "oldest first, like the log"
    assert exported[0]["name"] == "bots/alpha/key0" and "mac" not in exported[0]
    assert "SECRET-VALUE" not in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "exported 600 records" in panel.status.text()
    last = list(vault.audit_records())[-1].event
    assert (last.op, last.outcome) == ("export", "ok") and "op=read" in last.detail
    assert list(tmp_path.joinpath("out").iterdir()) == [target], "no partial file left behind"


def test_new_records_appear_on_top_incrementally(qtbot, panel):
    vault = panel.controller.vault
    _append(vault, _reads(10))
    _populate(qtbot, panel)
    model = panel.model
    before = model.rowCount()
    removed = []
    model.rowsRemoved.connect(lambda *args: removed.append(args))
    model.modelReset.connect(lambda: removed.append("reset"))
    vault.set("fresh/secret", "x")
    with qtbot.waitSignal(model.rowsInserted) as inserted:
        panel.controller.notify_changed()
    assert inserted.args[1:] == [0, 0]
    assert model.rowCount() == before + 1 and _cell(model, 0, Column.SECRET) == "fresh/secret"
    assert _cell(model, 1, Column.DETAIL) == "read 9"
    assert removed == [], "nothing is rebuilt"
    qtbot.waitUntil(lambda: panel.banner.text() == f"verified: {before + 1} records, chain intact", timeout=10_000)


def test_lock_empties_the_model_banner_and_filters(qtbot, panel):
    vault = panel.controller.vault
    vault.set("gone", "1")
    vault.delete("gone")  # who touched the secret deleted last week?
    _populate(qtbot, panel)
    qtbot.keyClicks(panel.secret_filter, "gone")
    _settled(qtbot, panel, AuditFilter(name="gone"))
    assert _column(panel.model, Column.OPERATION) == ["delete", "create"]
    panel.controller.lock()
    assert panel.model.rowCount() == 0 and panel.banner.text() == "" and panel.status.text() == ""
    assert panel.secret_filter.text() == ""
    assert not panel.model.canFetchMore(QModelIndex())


def test_every_interactive_widget_has_an_accessible_name(panel):
    def ours(widget: QWidget) -> bool:
        """Interactive, and not a part Qt builds inside a composite widget we named."""
        if widget.window() is not panel.window() or not widget.isVisibleTo(panel):
            return False  # the pop-up lists of the combo box and the completer; hidden parts
        if isinstance(widget, QLineEdit):
            return not isinstance(widget.parent(), (QComboBox, QAbstractSpinBox))
        if isinstance(widget, QAbstractButton):
            return not isinstance(widget.parent(), QAbstractItemView)  # the table's corner button
        return isinstance(widget, (QComboBox, QAbstractSpinBox, QAbstractItemView))

    interactive = [w for w in panel.findChildren(QWidget) if ours(w)]
    assert len(interactive) >= 8
    assert [w for w in interactive if not w.accessibleName()] == []
