"""The dashboard tab on the real main window: its tiles, tables and bar charts show the vault's
counts (worked out off the GUI thread), follow a save, and are emptied at lock, including a
result that arrives after the lock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from PySide6.QtCore import QPointF

from its_desktop.core.audit import Actor, AuditEvent
from its_desktop.core.errors import WrongCredentials
from its_desktop.core.rotation import RotationPolicy
from its_desktop.core.vault.api import Vault
from its_desktop.sync.remotes import BASES, REMOTES, Remote
from its_desktop.ui.panels.dashboard import DashboardPanel, add_dashboard_tab
from tests.conftest import FAST_KDF, PASSWORD

BOT = Actor("agent", 777, "/opt/bots/alpha")
NAMES = ("brokers/ibkr/api_key", "brokers/alpaca/api_key", "db/main/password", "exchanges/kraken/api_key")


@pytest.fixture
def dashboard(qtbot, window) -> DashboardPanel:
    """A vault with four secrets (one overdue, one expired), a remote synced an hour ago, four
    agent reads (one denied) and a failed unlock; the window unlocks it, the tab is shown."""
    path = window.controller.path
    now = datetime.now(timezone.utc)
    with Vault.create(path, PASSWORD, kdf=FAST_KDF) as vault:
        vault.set(NAMES[0], "v1", type="api_key")
        vault.set(NAMES[1], "v2", type="api_key", expires_at=now - timedelta(days=1))
        vault.clock = lambda: now - timedelta(days=40)
        vault.set(NAMES[2], "v3", type="password", rotation=RotationPolicy(30))
        vault.clock = lambda: now
        vault.set(NAMES[3], "v4", type="generic")
        remote = Remote("desk", "openbao", "brokers/", "its/", {"url": "https://bao:8200", "mount": "kv"},
                        "token", NAMES[3])
        synced = (now - timedelta(hours=1)).isoformat()

        def edit(settings: dict) -> None:
            settings[REMOTES] = {"desk": remote.to_json()}
            settings[BASES] = {"desk": {NAMES[0]: {"version": 1, "hash": "h", "synced_at": synced}}}

        vault.change_settings(edit)
        at = now - timedelta(seconds=1)
        vault.record_events([AuditEvent("read", outcome, BOT, NAMES[0], "socket, grant g1", at)
                             for outcome in ("ok", "ok", "ok", "denied")])
    with pytest.raises(WrongCredentials):
        Vault.open(path, "not the password")
    window.controller.unlock(PASSWORD)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.tabs, timeout=20_000)
    panel = add_dashboard_tab(window)
    assert add_dashboard_tab(window) is panel and window.panels.count(panel) == 1
    window.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: panel.stats is not None and not panel.busy, timeout=10_000)
    return panel


def texts(panel: DashboardPanel) -> dict[str, str]:
    return {key: tile.value.text() for key, tile in panel.tiles.items()}


def rows(model) -> list[tuple[str, ...]]:
    return [tuple(model.index(r, c).data() for c in range(model.columnCount())) for r in range(model.rowCount())]


def test_tiles_tables_and_bars_show_the_counts(qtbot, dashboard, qtmodeltester):
    assert texts(dashboard) == {"total": "4", "due_soon": "0", "overdue": "1", "expired": "1",
                                "rotate_requested": "0", "rotation_pending": "0",
                                "unlocks": "1 (1)", "agent_reads": "3 (1)"}
    assert rows(dashboard.types_model) == [("API key", "2"), ("Password", "1"), ("Generic", "1")]
    (remote,) = rows(dashboard.remotes_model)
    assert remote[0:2] == ("desk", "openbao") and remote[3] == "1" and remote[2] != "never"
    assert len(dashboard.unlock_bars.counts()) == 30
    assert dashboard.unlock_bars.counts()[-1] == (1, 1)
    assert dashboard.read_bars.counts()[-1] == (3, 1)
    qtmodeltester.check(dashboard.types_model)
    qtmodeltester.check(dashboard.remotes_model)
    today = dashboard.read_bars.bars()[-1]
    assert today.rect.height() > 0 and today.second.height() > 0
    assert dashboard.read_bars.tooltip_at(today.rect.center()).endswith("3 granted, 1 denied")
    assert dashboard.read_bars.tooltip_at(QPointF(-5, -5)) == ""
    assert not any(name in text for name in NAMES for text in [*texts(dashboard).values(),
                                                                *sum(rows(dashboard.types_model), ()),
                                                                *sum(rows(dashboard.remotes_model), ())])


def test_a_save_refreshes_without_rebuilding_the_tables(qtbot, window, dashboard):
    removed = []
    dashboard.types_model.rowsRemoved.connect(lambda *a: removed.append(a))
    window.controller.vault.set("notes/runbook", "text", type="note")
    window.controller.notify_changed()
    qtbot.waitUntil(lambda: texts(dashboard)["total"] == "5" and not dashboard.busy, timeout=10_000)
    assert rows(dashboard.types_model)[-2:] == [("Note", "1"), ("Generic", "1")]
    assert not removed, "a new type is inserted, the other rows stay"
    dashboard.days_choice.setCurrentIndex(0)  # 7 days
    qtbot.waitUntil(lambda: len(dashboard.unlock_bars.counts()) == 7 and not dashboard.busy, timeout=10_000)


def test_lock_clears_everything_and_drops_a_late_result(qtbot, window, dashboard):
    dashboard.populate()  # a refresh still running when the vault locks
    window.controller.lock(quick=False)
    qtbot.waitUntil(lambda: window.controller.runner.pending == 0, timeout=10_000)
    assert dashboard.stats is None and not dashboard.busy
    assert set(texts(dashboard).values()) == {""}
    assert dashboard.types_model.rowCount() == dashboard.remotes_model.rowCount() == 0
    assert dashboard.unlock_bars.counts() == dashboard.read_bars.counts() == []
    assert dashboard.status.text() == ""
