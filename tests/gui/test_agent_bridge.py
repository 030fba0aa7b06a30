"""The agent inside the app: a real bot process asks, the user answers in the dialog, and
locking the app revokes what was given for the session."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from its_desktop.agent.grants import load_grants
from its_desktop.factors.base import QuietPrompter
from its_desktop.ui.agent_bridge import AgentBridge
from tests.conftest import ITS_VAULT, PASSWORD
from tests.integration.test_agent import BOT

API_KEY = "AKIA-gui-agent-uniq-4b7d"

# The offscreen test platform cannot raise a window; the dialog raises itself on a real desktop.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support raise")


class Bot:
    """A bot process reading one secret per line of its stdin over one connection; answers
    are collected by a thread so the test keeps Qt's event loop turning while it waits."""

    def __init__(self, folder: Path, agent_dir: Path) -> None:
        folder.mkdir(exist_ok=True)
        (folder / "bot.py").write_text(BOT)
        env = {"PATH": "/usr/bin:/bin", "ITS_AGENT_DIR": str(agent_dir), "PYTHONDONTWRITEBYTECODE": "1"}
        self.proc = subprocess.Popen([sys.executable, "bot.py", "--serve"], cwd=folder, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.lines.put(line.strip())

    def ask(self, name: str) -> None:
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()

    def answer(self, qtbot) -> str:
        qtbot.waitUntil(lambda: not self.lines.empty(), timeout=20_000)
        return self.lines.get()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.wait(10)


@pytest.fixture
def setup(qtbot, unlocked_controller, tmp_path):
    controller = unlocked_controller
    controller.vault.set("brokers/ibkr/api_key", API_KEY, fields={"account": "U1"})
    parent = QWidget()
    qtbot.addWidget(parent)
    bridge = AgentBridge(controller, parent, folder=str(tmp_path / "agent"))
    bots: list[Bot] = []

    def bot() -> Bot:
        bots.append(Bot(tmp_path / "bots", tmp_path / "agent"))
        return bots[-1]

    yield controller, bridge, bot
    for each in bots:
        each.close()
    bridge.shutdown()


def dialog_for(qtbot, bridge: AgentBridge):
    qtbot.waitUntil(lambda: bridge.dialog is not None and bridge.dialog.isVisible(), timeout=20_000)
    return bridge.dialog


def test_once_is_for_the_session_and_locking_revokes_it(qtbot, setup):
    controller, bridge, make_bot = setup
    assert bridge.server is not None and bridge.server.running
    bot = make_bot()
    bot.ask("brokers/ibkr/api_key")
    dialog = dialog_for(qtbot, bridge)
    texts = " ".join(label.text() for label in dialog.findChildren(QLabel))
    assert "python bot.py" in texts and "brokers/ibkr/*" in texts and f"pid {bot.proc.pid}" in texts
    assert API_KEY not in texts
    qtbot.mouseClick(dialog.buttons["once"], Qt.MouseButton.LeftButton)
    assert bot.answer(qtbot) == f"OK {API_KEY}"
    bot.ask("brokers/ibkr/api_key#account")
    assert bot.answer(qtbot) == "OK U1"  # no second question
    assert bridge.dialog is None
    assert load_grants(controller.vault.settings()) == []  # "once" is never saved

    controller.lock()
    assert bridge.server is None
    bot.ask("brokers/ibkr/api_key")
    assert bot.answer(qtbot).startswith("ERR AgentUnavailable: no agent is running")

    controller.session.unlock(PASSWORD, QuietPrompter())
    controller.unlocked.emit()
    bot.ask("brokers/ibkr/api_key")  # a new session asks again
    qtbot.mouseClick(dialog_for(qtbot, bridge).buttons["deny"], Qt.MouseButton.LeftButton)
    assert bot.answer(qtbot) == "ERR AccessDenied: access denied by the user"
    assert bridge.server.flush_audit()
    reads = [(r.event.op, r.event.outcome, r.event.actor.pid) for r in controller.vault.audit_records()
             if r.event.actor.kind == "agent"]
    assert reads == [("read", "ok", bot.proc.pid)] * 2 + [("read", "denied", bot.proc.pid)]


def test_always_is_saved_for_the_scope_chosen_and_its_vault_lock_locks_the_app(qtbot, setup, tmp_path):
    controller, bridge, make_bot = setup
    first = make_bot()
    first.ask("brokers/ibkr/api_key")
    dialog = dialog_for(qtbot, bridge)
    assert [dialog.scope.itemData(i) for i in range(dialog.scope.count())] == ["brokers/ibkr/*", "brokers/ibkr/api_key"]
    dialog.scope.setCurrentIndex(1)
    qtbot.mouseClick(dialog.buttons["always"], Qt.MouseButton.LeftButton)
    assert first.answer(qtbot) == f"OK {API_KEY}"
    qtbot.waitUntil(lambda: len(load_grants(controller.vault.settings())) == 1, timeout=10_000)
    (grant,) = load_grants(controller.vault.settings())
    assert grant.pattern == "brokers/ibkr/api_key" and grant.ttl == "always"
    assert grant.script == str(tmp_path / "bots" / "bot.py") and grant.cwd == str(tmp_path / "bots")
    second = make_bot()  # another process of the same program: no question
    second.ask("brokers/ibkr/api_key")
    assert second.answer(qtbot) == f"OK {API_KEY}"

    env = {"PATH": "/usr/bin:/bin", "ITS_AGENT_DIR": str(tmp_path / "agent"), "XDG_STATE_HOME": str(tmp_path / "s")}
    locker = subprocess.Popen([*ITS_VAULT, "lock"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    qtbot.waitUntil(lambda: locker.poll() is not None, timeout=30_000)
    out, err = locker.communicate()
    assert locker.returncode == 0 and err.startswith("locked: the app (pid "), err
    qtbot.waitUntil(lambda: controller.vault is None, timeout=10_000)
    assert bridge.server is None


def test_a_question_is_withdrawn_when_the_program_goes_away(qtbot, setup):
    controller, bridge, make_bot = setup
    bot = make_bot()
    bot.ask("brokers/ibkr/api_key")
    dialog_for(qtbot, bridge)
    bot.proc.kill()
    bot.proc.wait(10)
    qtbot.waitUntil(lambda: bridge.dialog is None, timeout=10_000)
    assert controller.vault is not None and bridge.server.running
