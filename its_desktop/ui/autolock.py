"""Lock when the user walks away: after N idle minutes (the *system's* idle time where the
desktop reports it over D-Bus, else input to our own windows), when the screen locks, and
before the machine sleeps (freedesktop/GNOME ScreenSaver ActiveChanged, login1 PrepareForSleep
and session Lock), as KeePassXC does and on Wayland too."""

from __future__ import annotations

import time
from typing import Callable

from PySide6.QtCore import QEvent, QObject, QTimer, Slot, SLOT
from PySide6.QtDBus import QDBusConnection, QDBusInterface, QDBusMessage

from .controller import VaultController
from .settings import AppSettings

INPUT_EVENTS = {QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.Wheel,
                QEvent.Type.TouchBegin}
SCREENSAVERS = (("org.freedesktop.ScreenSaver", "/org/freedesktop/ScreenSaver", "org.freedesktop.ScreenSaver"),
                ("org.freedesktop.ScreenSaver", "/ScreenSaver", "org.freedesktop.ScreenSaver"),
                ("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver", "org.gnome.ScreenSaver"))
LOGIN1 = ("org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.login1.Manager")
CHECK_INTERVAL_MS = 15_000


def system_idle_seconds(bus: QDBusConnection) -> float | None:
    """The desktop's idle time, if it tells (KDE and others: ScreenSaver.GetSessionIdleTime in
    seconds; GNOME: Mutter IdleMonitor.GetIdletime in ms); None if nobody answers."""
    screensaver = QDBusInterface("org.freedesktop.ScreenSaver", "/org/freedesktop/ScreenSaver",
                                 "org.freedesktop.ScreenSaver", bus)
    if screensaver.isValid():
        reply = screensaver.call("GetSessionIdleTime")
        if reply.type() == QDBusMessage.MessageType.ReplyMessage and reply.arguments():
            return float(reply.arguments()[0])
    mutter = QDBusInterface("org.gnome.Mutter.IdleMonitor", "/org/gnome/Mutter/IdleMonitor/Core",
                            "org.gnome.Mutter.IdleMonitor", bus)
    if mutter.isValid():
        reply = mutter.call("GetIdletime")
        if reply.type() == QDBusMessage.MessageType.ReplyMessage and reply.arguments():
            return float(reply.arguments()[0]) / 1000.0
    return None


class AutoLock(QObject):
    """Watches idleness and the session's lock/sleep signals; locks the controller."""

    def __init__(self, controller: VaultController, settings: AppSettings,
                 session_bus: QDBusConnection | None = None, system_bus: QDBusConnection | None = None,
                 clock: Callable[[], float] = time.monotonic, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.settings = settings
        self.clock = clock
        self.session_bus = session_bus if session_bus is not None else QDBusConnection.sessionBus()
        self.system_bus = system_bus if system_bus is not None else QDBusConnection.systemBus()
        self.last_input = clock()
        self.timer = QTimer(self, interval=CHECK_INTERVAL_MS, timeout=self.check)
        self.timer.start()
        self.listening = self._listen()

    def _listen(self) -> list[str]:
        """Subscribe to every lock/sleep signal this desktop may send; returns the names."""
        heard = []
        if self.session_bus.isConnected():
            for service, path, interface in SCREENSAVERS:
                if self.session_bus.connect(service, path, interface, "ActiveChanged", self, SLOT("on_screensaver(bool)")):
                    heard.append(f"{interface} ActiveChanged")
        if self.system_bus.isConnected():
            service, path, interface = LOGIN1
            if self.system_bus.connect(service, path, interface, "PrepareForSleep", self, SLOT("on_sleep(bool)")):
                heard.append("login1 PrepareForSleep")
            if self.system_bus.connect(service, "", "org.freedesktop.login1.Session", "Lock", self, SLOT("on_session_lock()")):
                heard.append("login1 Session.Lock")
        return heard

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() in INPUT_EVENTS:
            self.last_input = self.clock()
        return False

    def idle_seconds(self) -> float:
        own = self.clock() - self.last_input
        system = system_idle_seconds(self.session_bus) if self.session_bus.isConnected() else None
        return own if system is None else min(own, system)

    @Slot()
    def check(self) -> None:
        minutes = self.settings.auto_lock_minutes
        if minutes > 0 and self.controller.vault is not None and self.idle_seconds() >= minutes * 60:
            self.controller.lock()

    @Slot(bool)
    def on_screensaver(self, active: bool) -> None:
        if active and self.settings.lock_on_screen_lock:
            self.controller.lock()

    @Slot(bool)
    def on_sleep(self, going_to_sleep: bool) -> None:
        if going_to_sleep and self.settings.lock_on_sleep:
            self.controller.lock()

    @Slot()
    def on_session_lock(self) -> None:
        if self.settings.lock_on_screen_lock:
            self.controller.lock()
