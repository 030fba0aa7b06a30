"""Auto-lock: on idle time, on the desktop's screen-lock signal and before sleep, over a real
(private) D-Bus daemon."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from PySide6.QtDBus import QDBusConnection, QDBusMessage

from its_desktop.ui.autolock import AutoLock
from its_desktop.ui.settings import AppSettings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def private_bus(tmp_path):
    """A dbus-daemon of our own, so the test never touches the user's session bus."""
    daemon = shutil.which("dbus-daemon")
    assert daemon, "dbus-daemon is installed by the Makefile"
    config = tmp_path / "bus.conf"
    config.write_text(f"""<busconfig><type>session</type><listen>unix:dir={tmp_path}</listen>
<auth>EXTERNAL</auth><policy context="default"><allow send_destination="*" eavesdrop="true"/>
<allow eavesdrop="true"/><allow own="*"/></policy></busconfig>""")
    proc = subprocess.Popen([daemon, "--config-file", str(config), "--print-address", "--nofork"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    address = proc.stdout.readline().strip()
    yield address
    proc.terminate()
    proc.wait(timeout=10)
    proc.stdout.close()


def _connect(address: str, name: str) -> QDBusConnection:
    bus = QDBusConnection.connectToBus(address, name)
    assert bus.isConnected(), bus.lastError().message()
    return bus


def test_locks_after_the_idle_minutes(unlocked_controller):
    clock = Clock()
    settings = AppSettings(auto_lock_minutes=5)
    nobus = QDBusConnection("not-connected")
    autolock = AutoLock(unlocked_controller, settings, nobus, nobus, clock=clock)
    clock.now += 4 * 60
    autolock.check()
    assert unlocked_controller.vault is not None
    clock.now += 61
    autolock.check()
    assert unlocked_controller.vault is None


def test_input_resets_idle_and_zero_means_never(unlocked_controller, qtbot):
    from PySide6.QtCore import QEvent, QObject

    clock = Clock()
    nobus = QDBusConnection("not-connected")
    autolock = AutoLock(unlocked_controller, AppSettings(auto_lock_minutes=1), nobus, nobus, clock=clock)
    clock.now += 59
    autolock.eventFilter(QObject(), QEvent(QEvent.Type.KeyPress))
    clock.now += 30
    autolock.check()
    assert unlocked_controller.vault is not None
    autolock.settings.auto_lock_minutes = 0
    clock.now += 10_000
    autolock.check()
    assert unlocked_controller.vault is not None


def test_screen_lock_signal_locks(unlocked_controller, private_bus, qtbot):
    app_bus = _connect(private_bus, "app")
    desktop = _connect(private_bus, "desktop")
    assert desktop.registerService("org.freedesktop.ScreenSaver")
    autolock = AutoLock(unlocked_controller, AppSettings(), app_bus, QDBusConnection("no-system-bus"))
    assert "org.freedesktop.ScreenSaver ActiveChanged" in autolock.listening
    signal = QDBusMessage.createSignal("/org/freedesktop/ScreenSaver", "org.freedesktop.ScreenSaver", "ActiveChanged")
    signal.setArguments([True])
    assert desktop.send(signal)
    qtbot.waitUntil(lambda: unlocked_controller.vault is None, timeout=5_000)
    QDBusConnection.disconnectFromBus("app")
    QDBusConnection.disconnectFromBus("desktop")


def test_screen_lock_setting_off_keeps_it_open(unlocked_controller, private_bus, qtbot):
    app_bus = _connect(private_bus, "app2")
    autolock = AutoLock(unlocked_controller, AppSettings(lock_on_screen_lock=False), app_bus,
                        QDBusConnection("no-system-bus"))
    autolock.on_screensaver(True)
    assert unlocked_controller.vault is not None
    autolock.on_sleep(True)
    assert unlocked_controller.vault is None
    QDBusConnection.disconnectFromBus("app2")
