"""The Sync panel against a real OpenBao dev server: remotes, a plan preview, a progress bar
with Cancel over 1,000 secrets, a conflict compared side by side and settled, and a lock that
leaves nothing on screen."""

from __future__ import annotations

import hvac
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from its_desktop.core.secrets import Secret
from its_desktop.sync.engine import Op
from its_desktop.sync.payload import FORMAT
from its_desktop.sync.remotes import add_remote, list_remotes, make_remote
from its_desktop.ui.panels.sync import Column, RemoteDialog, SyncPanel
from tests.integration.servers import ROOT_TOKEN, openbao  # noqa: F401 - a fixture


LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def panel(qtbot, unlocked_controller, openbao):
    vault = unlocked_controller.vault
    vault.set("creds/bao", ROOT_TOKEN)
    add_remote(vault, make_remote("bao", "openbao", "brokers/", "its/", {"url": openbao.url, "mount": "secret"},
                                  "token", "creds/bao"))
    panel = SyncPanel(unlocked_controller)
    qtbot.addWidget(panel)
    panel.show()
    unlocked_controller.unlocked.emit()
    return panel


@pytest.fixture
def kv(openbao):
    client = hvac.Client(url=openbao.url, token=ROOT_TOKEN)
    yield client.secrets.kv.v2
    client.adapter.close()


def wait_idle(qtbot, panel: SyncPanel) -> None:
    qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)


def test_1000_secrets_preview_then_sync_with_a_progress_bar(qtbot, panel, kv, qtmodeltester):
    vault = panel.controller.vault
    vault.import_secrets([Secret(name=f"brokers/b{i % 50}/acct{i:04d}", value=f"v{i}-uniq") for i in range(1000)], "t")
    assert [panel.remotes.item(i).text() for i in range(panel.remotes.count())] == ["bao  (openbao)"]
    assert panel.where.text().startswith("brokers/ <-> openbao http://127.0.0.1:")

    qtbot.mouseClick(panel.preview_button, LEFT)
    assert panel.busy and panel.cancel_button.isEnabled() and not panel.sync_button.isEnabled()
    wait_idle(qtbot, panel)
    assert panel.status.text() == "bao: 1000 to push, 0 to pull, 0 to delete on the remote, 0 to delete here, " \
                                  "0 conflicts, 0 unchanged"
    assert panel.model.rowCount() == 1000
    assert {panel.model.item(r).op for r in range(1000)} == {Op.PUSH}
    assert panel.model.index(0, Column.ACTION).data() == "Push"
    qtmodeltester.check(panel.model)
    with pytest.raises(hvac.exceptions.InvalidPath):  # a preview changes nothing: the store is still empty
        kv.list_secrets(path="", mount_point="secret")

    values: list[int] = []
    panel.progress.valueChanged.connect(values.append)
    qtbot.mouseClick(panel.sync_button, LEFT)
    wait_idle(qtbot, panel)
    assert panel.status.text() == "bao: 1000 pushed, 0 pulled, 0 deleted on the remote, 0 deleted here, 0 conflicts"
    assert panel.progress.value() == panel.progress.maximum() == 1000
    assert len([v for v in values if 0 < v < 1000]) >= 3  # it moved while the sync ran
    assert panel.model.rowCount() == 0
    assert len(vault.settings()["sync"]["bao"]) == 1000


def test_a_conflict_is_compared_side_by_side_and_settled_as_picked(qtbot, panel, kv):
    vault = panel.controller.vault
    vault.set("brokers/k", "base-uniq", fields={"account": "U1"})
    panel.sync_now()
    wait_idle(qtbot, panel)
    vault.set("brokers/k", "mine-uniq-7e2c")
    kv.create_or_update_secret(path="its/k", mount_point="secret", cas=1, secret={
        "its": FORMAT, "value": "theirs-uniq-51d0", "fields": {"account": "U1", "desk": "NY"}, "type": "api_key",
        "tags": {}, "description": "their edit", "updated": None})

    panel.preview()
    wait_idle(qtbot, panel)
    assert panel.model.rowCount() == 1 and panel.model.item(0).op is Op.CONFLICT
    assert not panel.conflict.isVisibleTo(panel)
    panel.select("brokers/k")
    assert panel.conflict.isVisibleTo(panel)
    here, there = panel.here[1], panel.there[1]
    assert (here["type"].text(), here["fields"].text(), here["state"].text()) == ("generic", "account", "present")
    assert (there["type"].text(), there["fields"].text(), there["description"].text()) == ("api_key", "account, desk",
                                                                                             "their edit")
    assert here["changed"].text().endswith(" UTC") and there["changed"].text().endswith(" UTC")
    shown = " ".join(label.text() for label in panel.findChildren(QLabel))
    assert "mine-uniq" not in shown and "theirs-uniq" not in shown  # compared on facts, never values
    assert all(b.isEnabled() for b in (panel.keep_local, panel.take_remote, panel.keep_both))

    qtbot.mouseClick(panel.keep_both, LEFT)
    assert panel.model.index(0, Column.ACTION).data() == "Keep both (keep both)"
    qtbot.mouseClick(panel.take_remote, LEFT)  # a change of mind before syncing
    assert panel.model.index(0, Column.ACTION).data() == "Pull (take remote)"
    qtbot.mouseClick(panel.keep_both, LEFT)
    qtbot.mouseClick(panel.sync_button, LEFT)
    wait_idle(qtbot, panel)
    assert "1 kept both, 0 conflicts" in panel.status.text()
    [copy] = [n for n in vault.names() if n.startswith("brokers/k.remote-")]
    assert vault.peek(copy).value == "theirs-uniq-51d0" and vault.peek("brokers/k").value == "mine-uniq-7e2c"
    assert kv.read_secret_version(path="its/k", mount_point="secret",
                                  raise_on_deleted_version=True)["data"]["data"]["value"] == "mine-uniq-7e2c"
    assert panel.resolutions == {}


def test_cancel_keeps_what_is_done_and_locking_clears_the_panel(qtbot, panel):
    vault = panel.controller.vault
    vault.import_secrets([Secret(name=f"brokers/c{i:04d}", value=f"c{i}-uniq") for i in range(600)], "t")
    qtbot.mouseClick(panel.sync_button, LEFT)
    qtbot.mouseClick(panel.cancel_button, LEFT)
    wait_idle(qtbot, panel)
    assert "ancel" in panel.status.text()
    done = len(vault.settings().get("sync", {}).get("bao", {}))
    assert done < 600 and len([n for n in vault.names() if n.startswith("brokers/")]) == 600

    panel.sync_now()
    wait_idle(qtbot, panel)
    assert panel.status.text().startswith(f"bao: {600 - done} pushed, 0 pulled")

    panel.controller.lock(quick=False)
    assert panel.remotes.count() == 0 and panel.model.rowCount() == 0
    assert not panel.status.text() and not panel.where.text() and panel.syncer is None
    assert not any(b.isEnabled() for b in (panel.preview_button, panel.sync_button, panel.add_button))


def test_remotes_are_added_and_removed_from_the_panel(qtbot, panel, monkeypatch):
    def fill(dialog: RemoteDialog) -> int:
        dialog.name.setText("aws-prod")
        dialog.kind.setCurrentIndex(dialog.kind.findData("aws"))
        assert not dialog.form.isRowVisible(dialog.url) and dialog.form.isRowVisible(dialog.region)
        dialog.folder.setText("bots")
        dialog.prefix.setText("its/bots/")
        dialog.region.setText("nowhere")
        dialog._accept()
        assert dialog.message.text().startswith("--region must be an AWS region")
        dialog.region.setText("eu-west-1")
        dialog.auth.setCurrentIndex(dialog.auth.findData("aws-chain"))
        assert not dialog.form.isRowVisible(dialog.credentials)
        dialog._accept()
        return dialog.result()

    monkeypatch.setattr(RemoteDialog, "exec", fill)
    qtbot.mouseClick(panel.add_button, LEFT)
    vault = panel.controller.vault
    assert [r.name for r in list_remotes(vault)] == ["aws-prod", "bao"]
    assert panel.selected_remote().name == "aws-prod" and "aws eu-west-1" in panel.where.text()

    qtbot.mouseClick(panel.remove_button, LEFT)
    box = panel._confirm
    assert box is not None
    next(b for b in box.buttons() if b.text() == "Remove").click()
    qtbot.waitUntil(lambda: panel._confirm is None)
    assert [r.name for r in list_remotes(vault)] == ["bao"]
    assert panel.remotes.count() == 1
