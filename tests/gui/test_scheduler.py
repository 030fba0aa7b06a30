"""The app's rotation scheduler: due automatic rotations run on the runner after an unlock,
manual ones are notified once, the setting turns it off, and a lock stops it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from PySide6.QtCore import QPoint, Qt

from its_desktop.core.rotation import RotationPolicy
from its_desktop.factors.base import QuietPrompter
from its_desktop.rotators.generated import GeneratedRotator
from its_desktop.ui.panels.settings import SettingsPanel
from its_desktop.ui.scheduler import INTERVAL_MS, RotationScheduler
from its_desktop.ui.settings import AppSettings
from tests.conftest import PASSWORD

TOKEN = "bots/alpha/token"  # generated, overdue
BROKER = "brokers/ibkr/api_key"  # by hand, overdue
FRESH = "bots/beta/token"  # generated, not due


@pytest.fixture
def setup(unlocked_controller):
    controller = unlocked_controller
    vault = controller.vault
    vault.set(TOKEN, "old token value 1", rotator="generated", rotation=RotationPolicy(1))
    vault.set(BROKER, "old broker value 2", rotation=RotationPolicy(1))
    vault.set(FRESH, "old token value 3", rotator="generated", rotation=RotationPolicy(365))
    later = vault.peek(TOKEN).value_updated + timedelta(days=2)
    controller.clock = lambda: later  # the vault's clock follows the controller's
    notes: list[tuple[str, bool]] = []
    scheduler = RotationScheduler(controller, lambda message, warning: notes.append((message, warning)))
    return controller, scheduler, notes


def run_once(qtbot, controller, scheduler) -> None:
    with qtbot.waitSignal(scheduler.ran, timeout=10_000):
        controller.unlocked.emit()


def test_a_due_automatic_secret_is_rotated_after_unlock_and_the_manual_one_notified(qtbot, setup):
    controller, scheduler, notes = setup
    vault = controller.vault
    with qtbot.waitSignal(controller.changed, timeout=10_000):  # the panels re-read
        run_once(qtbot, controller, scheduler)
    token = vault.peek(TOKEN)
    assert token.version == 2 and token.rotation_count == 1 and token.pending is None
    assert token.value != "old token value 1" and vault.peek(FRESH).version == 1
    assert vault.peek(BROKER).version == 1, "a manual rotation is never run unattended"
    assert notes == [(f"Rotated 1 secret: {TOKEN}.", False), (f"1 secret needs a manual rotation: {BROKER}.", False)]
    assert not any(v in m for m, _ in notes for v in (token.value, "old broker value 2"))
    assert scheduler.timer.isActive() and scheduler.timer.interval() == INTERVAL_MS == 15 * 60 * 1000
    assert not scheduler.running


def test_the_same_manual_list_is_notified_once(qtbot, setup):
    controller, scheduler, notes = setup
    run_once(qtbot, controller, scheduler)
    notes.clear()
    with qtbot.waitSignal(scheduler.ran, timeout=10_000):
        assert scheduler.run()
    assert scheduler.last_report.manual == [BROKER] and notes == [], "nothing new: nothing said"
    expired = controller.clock() - timedelta(hours=1)
    controller.vault.set("brokers/kraken/api_key", "old kraken value", expires_at=expired)
    with qtbot.waitSignal(scheduler.ran, timeout=10_000):
        scheduler.timer.setInterval(1)  # the 15-minute tick, now
    scheduler.timer.setInterval(INTERVAL_MS)
    assert notes == [(f"2 secrets need a manual rotation: {BROKER}, brokers/kraken/api_key.", False)]


def test_a_failure_is_a_warning_naming_the_step(qtbot, setup, monkeypatch):
    from its_desktop.rotators.base import StepFailed

    def refuse(self, ctx, new):
        raise StepFailed("the value store said no")

    monkeypatch.setattr(GeneratedRotator, "test", refuse)
    controller, scheduler, notes = setup
    run_once(qtbot, controller, scheduler)
    (message, warning), _manual = notes
    assert warning and message.startswith("1 automatic rotation failed: rotation of 'bots/alpha/token' failed at "
                                          "step 'test': the value store said no")
    assert controller.vault.peek(TOKEN).pending is not None, "kept as pending: the next run resumes it"


def test_the_setting_turns_it_off(qtbot, setup, tmp_path):
    controller, scheduler, notes = setup
    panel = SettingsPanel(controller)
    qtbot.addWidget(panel)
    panel.show()
    assert panel.rotate_due.isChecked() and panel.rotate_due.accessibleName() == "Rotate due secrets automatically"
    qtbot.mouseClick(panel.rotate_due, Qt.MouseButton.LeftButton, pos=QPoint(4, panel.rotate_due.height() // 2))
    assert controller.settings.rotate_due_automatically is False
    assert AppSettings.load().rotate_due_automatically is False, "saved with the other settings"
    controller.unlocked.emit()
    assert not scheduler.running and not scheduler.run() and controller.runner.pending == 0
    assert controller.vault.peek(TOKEN).version == 1 and notes == []
    with qtbot.waitSignal(scheduler.ran, timeout=10_000):  # turned on again while unlocked: it runs
        qtbot.mouseClick(panel.rotate_due, Qt.MouseButton.LeftButton, pos=QPoint(4, panel.rotate_due.height() // 2))
    assert controller.vault.peek(TOKEN).version == 2


def test_nothing_runs_after_lock_and_a_run_under_way_stops(qtbot, setup, monkeypatch):
    controller, scheduler, notes = setup
    entered, release = threading.Event(), threading.Event()
    create = GeneratedRotator.create

    def slow_create(self, ctx):
        entered.set()
        release.wait(10)
        return create(self, ctx)

    monkeypatch.setattr(GeneratedRotator, "create", slow_create)
    controller.unlocked.emit()
    qtbot.waitUntil(entered.is_set, timeout=10_000)
    controller.lock()
    assert not scheduler.timer.isActive()
    release.set()
    qtbot.waitUntil(lambda: not scheduler.running, timeout=10_000)
    assert notes == [] and scheduler.last_report is None, "a stopped run reports nothing"
    assert not scheduler.run() and controller.runner.pending == 0
    controller.session.unlock(PASSWORD, QuietPrompter())
    token = controller.vault.peek(TOKEN)
    assert token.version == 1 and token.pending is None, "stopped before anything was saved"
