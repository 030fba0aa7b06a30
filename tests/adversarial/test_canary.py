"""The secret-hygiene canary: a unique value, stored as a secret's value and as a field, is driven
through the command line, a headless agent with a bot, and the desktop app, then searched for
everywhere it must not be.

Where it may legitimately appear, and only there: the stdout of ``get`` and of the granted bot
(they print it on purpose), the environment of the program ``its-vault run`` starts, and the
clipboard while the copy is fresh. Everywhere else is searched: every child's stderr and other
stdouts (``run``'s masked output included), the argv of every process started under this test
(sampled from ``/proc`` all along, grandchildren included), the vault file itself (encrypted),
the audit files, the agent's output, the traceback log folder, every file under the test's
folders and every file that appeared under the temporary folder during the test, the reprs of
the objects that hold the value, the text of every exception a failing operation raised or
showed, the window's widgets after lock, the clipboard after its timeout, and core files.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QClipboard, QGuiApplication
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QLineEdit, QPlainTextEdit, QTextEdit

from its_desktop.agent.server import AgentServer
from its_desktop.core.errors import VaultError
from its_desktop.core.vault.api import Vault
from tests.conftest import ITS_VAULT, PASSWORD
from tests.integration.cli_runner import CliRunner, Result
from tests.integration.test_agent import BOT, Agent

from . import figures

CANARY = "canary-" + uuid.uuid4().hex  # the secret's value
FIELD_CANARY = "canary-field-" + uuid.uuid4().hex  # a field of the same secret
NAME = "brokers/canary/api_key"
FAST_INIT = ("init", "--kdf-memory", "8", "--kdf-time", "1")
WRONG_PASSWORD = "not the master password " + uuid.uuid4().hex[:8]
LEGIT = object()  # a stream that prints the value on purpose


def needles() -> dict[str, bytes]:
    """Every form of the two canaries worth looking for: as is, the unique part alone (a
    transformed prefix), JSON-escaped, and the stable part of the base64 form."""
    found: dict[str, bytes] = {}
    for label, canary in (("value", CANARY), ("field", FIELD_CANARY)):
        raw = canary.encode()
        found[label] = raw
        found[f"{label} token"] = canary.rsplit("-", 1)[1].encode()
        found[f"{label} as JSON"] = json.dumps(canary)[1:-1].encode()
        found[f"{label} in base64"] = base64.b64encode(raw)[: len(raw) // 3 * 4]
        found[f"{label} in UTF-16"] = canary.encode("utf-16-le")
    return found


@dataclass
class Search:
    """Places searched and the canaries found in them."""

    places: int = 0
    hits: list[str] = field(default_factory=list)
    forms: dict[str, bytes] = field(default_factory=needles)

    def text(self, place: str, text: str | bytes | None) -> None:
        self.places += 1
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else (text or b"")
        for label, needle in self.forms.items():
            if needle in data:
                self.hits.append(f"{place}: the {label}")

    def file(self, path: Path) -> None:
        try:
            if not path.is_file() or path.is_symlink():
                return
            with open(path, "rb") as fh:
                data = fh.read(64 << 20)
        except OSError:  # gone meanwhile, or not ours to read
            return
        self.text(f"file {path}", data)


class ArgvSampler:
    """The command line of every process below this one, read from /proc every few ms, so that
    children of children (the program `run` starts, the agent's own children) are seen too."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, bytes]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ArgvSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.sample()

    def _loop(self) -> None:
        while not self._stop.wait(0.01):
            self.sample()

    def sample(self) -> None:
        me = os.getpid()
        parents: dict[int, int] = {}
        lines: dict[int, bytes] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                with open(f"/proc/{pid}/stat", "rb") as fh:
                    stat = fh.read()
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    lines[pid] = fh.read()
            except OSError:
                continue
            parents[pid] = int(stat[stat.rindex(b")") + 2:].split()[1])
        for pid, line in lines.items():
            ancestor, hops = parents.get(pid), 0
            while ancestor and ancestor != me and hops < 64:
                ancestor, hops = parents.get(ancestor), hops + 1
            if ancestor == me and line:
                self.seen.add((pid, line))


def _tmp_files() -> set[Path]:
    root = Path(tempfile.gettempdir())
    found = set()
    for folder, _, files in os.walk(root, onerror=lambda _: None):
        found.update(Path(folder) / name for name in files)
    return found


def _is_core(path: Path) -> bool:
    """An ELF core file (e_type ET_CORE), whatever its name."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(18)
    except OSError:
        return False
    return head[:4] == b"\x7fELF" and int.from_bytes(head[16:18], sys.byteorder) == 4


def _cores_where_the_kernel_puts_them() -> set[Path]:
    """Files in the folder of an absolute core_pattern (a relative one is the crashing process's
    working folder: the test's folders, searched anyway)."""
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if not pattern.startswith("/"):
        return set()
    folder = Path(pattern).parent
    return {p for p in folder.iterdir() if p.is_file()} if folder.is_dir() else set()


class Cli(CliRunner):
    """`its-vault` runs, remembered with what their stdout may hold."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        super().__init__(env, tmp_path)
        self.legit: set[int] = set()  # indexes into results whose stdout prints the value on purpose

    def ok_legit(self, *args: str, **options) -> Result:
        result = self.ok(*args, **options)
        self.legit.add(len(self.results) - 1)
        return result

    def failing(self, *args: str, **options) -> Result:
        result = self.run(*args, **options)
        assert result.code != 0, f"its-vault {' '.join(args)} was expected to fail"
        assert "Traceback" not in result.stderr
        return result


@pytest.fixture
def gui_env(tmp_path, monkeypatch):
    """The app's settings: a 1 s clipboard timeout, no automatic rotation while we look."""
    from its_desktop.ui.settings import AppSettings

    settings = tmp_path / "gui" / "settings.json"
    AppSettings(clipboard_seconds=1, rotate_due_automatically=False).save(settings)
    monkeypatch.setenv("ITS_SETTINGS_PATH", str(settings))
    monkeypatch.setenv("ITS_AGENT_DIR", str(tmp_path / "gui" / "agent"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return settings


@pytest.mark.timeout(240)
def test_the_canary_is_nowhere_it_must_not_be(tmp_path, cli_env, gui_env, qtbot, capsys):
    probe = Search()
    for planted in (f"x{CANARY}x", base64.b64encode(f"ab{FIELD_CANARY}".encode()).decode()[4:],
                    json.dumps({"v": CANARY}), CANARY.encode("utf-16-le")):
        probe.text("a planted leak", planted)
    assert probe.places == 4 and len({h for h in probe.hits}) >= 1 and len(probe.hits) >= 4, probe.hits
    search = Search()
    before = _tmp_files()
    cli = Cli(cli_env, tmp_path)
    exceptions: list[BaseException] = []
    with ArgvSampler() as argv:
        _drive_the_cli(cli)
        _drive_moving_in_and_out(cli, tmp_path)
        bot_outputs = _drive_the_agent(cli, tmp_path, search)
        gui_texts = _drive_the_gui(qtbot, cli.vault, search, exceptions)
        cli.ok("lockdown")
        assert "chain intact" in cli.ok("audit", "verify").stdout
        reprs = _reprs_and_exceptions(cli.vault, exceptions)
    after = _tmp_files()

    # -- the search ------------------------------------------------------------------------
    for index, result in enumerate(cli.results):
        command = " ".join(result.args)
        search.text(f"stderr of its-vault {command}", result.stderr)
        if index not in cli.legit:
            search.text(f"stdout of its-vault {command}", result.stdout)
        search.text(f"argv of its-vault {command}", "\0".join([*ITS_VAULT, *result.args]))
    for place, text in bot_outputs:
        search.text(place, text)
    for pid, line in argv.seen:
        search.text(f"argv of process {pid}: {line[:80]!r}", line)
    assert len(argv.seen) > len(cli.results), "the argv sampler missed the children"
    assert any(b"os.environ['KEY']" in line for _, line in argv.seen), "the sampler missed the child of `run`"
    for place, text in gui_texts + reprs:
        search.text(place, text)
    for error in exceptions:
        search.text(f"str() of {type(error).__name__}", str(error))
        search.text(f"repr() of {type(error).__name__}", repr(error))
        search.text(f"args of {type(error).__name__}", repr(error.args))
    state = tmp_path / "state"
    logs = list(state.rglob("*")) if state.exists() else []
    search.text("the traceback log folder", "\n".join(str(p) for p in logs))
    assert not [p for p in logs if p.is_file()], f"an internal error was logged: {logs}"
    audit_files = sorted(cli.vault.parent.glob(cli.vault.name + ".*"))
    assert any(p.name.endswith(".audit") for p in audit_files), audit_files
    own = {p for p in tmp_path.rglob("*") if p.is_file()}
    for path in sorted(own | (after - before)):
        search.file(path)
    cores = [p for p in own | (after - before) | _cores_where_the_kernel_puts_them() if _is_core(p)]
    search.text("core files", "\n".join(map(str, cores)))
    assert not cores, f"core files were written: {cores}"

    line = (f"canary hits: {len(search.hits)} (searched {search.places} places: {len(cli.results)} CLI runs, "
            f"{len(argv.seen)} process command lines, {len(own | (after - before))} files, "
            f"{len(exceptions)} exceptions)")
    figures.say("canary", line)  # in the run's summary too
    with capsys.disabled():
        print("\n" + line)
    assert not search.hits, "the canary leaked:\n" + "\n".join(search.hits)


# -- the command line -------------------------------------------------------------------------


def _drive_the_cli(cli: Cli) -> None:
    cli.ok(*FAST_INIT)
    cli.ok("set", NAME, "--value-stdin", "--type", "api_key", "--rotator", "generated", "--tag", "env=canary",
           "--description", "the hygiene canary", "--rotate-every", "30", input=CANARY)
    # A field's value on the command line would be in argv (the CLI says so): set it as a script
    # using the Python API would.
    with Vault.open(cli.vault, PASSWORD) as vault:
        vault.set(NAME, fields={"account": FIELD_CANARY})
    assert cli.ok_legit("get", NAME).stdout == CANARY + "\n"
    assert cli.ok_legit("get", NAME, "--field", "account").stdout == FIELD_CANARY + "\n"
    for args in (("list",), ("list", "--json"), ("history", NAME), ("history", NAME, "--json"), ("schedule",),
                 ("schedule", "--json")):
        cli.ok(*args)
    canary_version = json.loads(cli.ok("history", NAME, "--json").stdout)[-1]["version"]
    cli.ok("rotate", NAME)  # the canary goes to history
    assert cli.ok_legit("get", NAME).stdout != CANARY + "\n"
    cli.ok("history", NAME)
    cli.ok("restore", NAME, "--version", str(canary_version))
    assert cli.ok_legit("get", NAME).stdout == CANARY + "\n"
    for args in (("audit",), ("audit", "--json"), ("audit", "verify")):
        cli.ok(*args)

    # `run`: the child prints the values every way it can; its output reaches us masked.
    show = ("import base64, json, os, sys\n"
            "for v in (os.environ['KEY'], os.environ['ACCOUNT']):\n"
            "    print(v, json.dumps({'v': v}), base64.b64encode(v.encode()).decode(), flush=True)\n"
            "    print('err', v, file=sys.stderr, flush=True)\n")
    ran = cli.ok("run", "--env", f"KEY=its://{NAME}", "--env", f"ACCOUNT=its://{NAME}#account", "--",
                 sys.executable, "-c", show)
    assert ran.stdout.count("***") >= 6, f"the child's output was not masked as expected: {ran.stdout!r}"
    from_files = ("import sys\n"
                  "for path in sys.argv[1:]:\n"
                  "    print(open(path).read(), flush=True)\n")
    ran = cli.ok("run", "--files", "--env", f"KEY=its://{NAME}", "--", "sh", "-c",
                 f'exec "{sys.executable}" -c "$0" "$KEY"', from_files)
    assert "***" in ran.stdout, ran.stdout

    # Failing operations: their one-line errors are searched too.
    cli.failing("get", NAME, env={"ITS_MASTER_PASSWORD": WRONG_PASSWORD})
    cli.failing("get", NAME, "--field", "no-such-field")
    cli.failing("get", NAME + "-missing")
    cli.failing("restore", NAME, "--version", "999")
    cli.failing("set", NAME, "--value-stdin", input="")
    cli.failing("run", "--env", f"KEY=its://{NAME}#nope", "--", sys.executable, "-c", "pass")
    cli.failing("run", "--env", f"KEY=its://{NAME}", "--", "/nonexistent/program")


def _drive_moving_in_and_out(cli: Cli, tmp_path: Path) -> None:
    """Import, backup and restore, the leak scan (and its fix), stats and export. The files that
    hold the canary on purpose (the .env imported, the file the scan finds it in, the export)
    are checked and then deleted, as the docs tell the user to; everything else stays to be
    searched."""
    moving = tmp_path / "moving"
    moving.mkdir()
    source = moving / "bot.env"
    source.write_text(f"IMPORTED_KEY={CANARY}\n")
    cli.ok("import", "env", str(source), "--prefix", "imported", "--dry-run")
    cli.ok("import", "env", str(source), "--prefix", "imported")
    source.unlink()
    assert cli.ok_legit("get", "imported/IMPORTED_KEY").stdout == CANARY + "\n"

    backup_env = {"ITS_BACKUP_PASSWORD": "backup passphrase " + uuid.uuid4().hex[:8]}
    cli.ok("backup", str(moving / "vault.backup"), env=backup_env)
    cli.ok("restore-backup", str(moving / "vault.backup"), "--vault", str(moving / "restored.its"), env=backup_env)
    cli.ok("backups")
    cli.ok("stats")
    cli.ok("stats", "--json")

    leaky = moving / "bots" / "config.py"
    leaky.parent.mkdir()
    leaky.write_text(f'API_KEY = "{CANARY}"\n')
    assert cli.run("scan", str(leaky.parent)).code == 8
    assert cli.run("scan", str(leaky.parent), "--json").code == 8
    cli.ok("scan", str(leaky.parent), "--fix", "--yes")
    assert CANARY not in leaky.read_text() and "its://" in leaky.read_text()

    export = moving / "export.json"
    cli.ok("export", str(export), env={"ITS_REAUTH_PASSWORD": PASSWORD})
    assert CANARY in export.read_text()  # plain text on purpose, after re-authentication
    export.unlink()
    cli.failing("export", str(moving / "refused.json"), env={"ITS_REAUTH_PASSWORD": WRONG_PASSWORD})
    assert not (moving / "refused.json").exists()


# -- the agent ----------------------------------------------------------------------------------


def _drive_the_agent(cli: Cli, tmp_path: Path, search: Search) -> list[tuple[str, str]]:
    bot = tmp_path / "bots" / "bot.py"
    bot.parent.mkdir()
    bot.write_text(BOT)
    stranger = tmp_path / "bots" / "stranger.py"
    stranger.write_text(BOT + "\n# another program, never granted\n")
    cli.ok("grant", "add", "--exe", sys.executable, "--script", str(bot), "--secret", NAME, "--ttl", "always")
    agent = Agent(cli.env).start()
    outputs: list[tuple[str, str]] = []
    try:
        bot_env = {k: v for k, v in cli.env.items() if k != "ITS_MASTER_PASSWORD"}
        granted = subprocess.run([sys.executable, str(bot), NAME, f"{NAME}#account"], env=bot_env,
                                 capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert granted.stdout == f"OK {CANARY}\nOK {FIELD_CANARY}\n", granted.stderr  # LEGIT: not searched
        outputs.append(("stderr of the granted bot", granted.stderr))
        denied = subprocess.run([sys.executable, str(stranger), NAME, f"{NAME}#nope"], env=bot_env,
                                capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert denied.stdout.startswith("ERR "), denied.stdout
        outputs += [("stdout of an ungranted bot", denied.stdout), ("stderr of an ungranted bot", denied.stderr)]
        missing = subprocess.run([sys.executable, str(bot), f"{NAME}#nope", "brokers/canary/none"], env=bot_env,
                                 capture_output=True, text=True, timeout=60, cwd=tmp_path)
        outputs += [("stdout of a bot asking for what is not there", missing.stdout),
                    ("stderr of a bot asking for what is not there", missing.stderr)]
        cli.ok("list")
        cli.ok("grant", "list")
        cli.ok("lock")
        assert agent.wait_exit() == 0, "".join(agent.stderr)
    finally:
        agent.stop()
    agent.assert_no_traceback()
    outputs.append(("stderr of the headless agent", "".join(agent.stderr)))
    return outputs


# -- the desktop app ------------------------------------------------------------------------------


def _widget_texts(root) -> list[str]:
    texts = []
    for kind, read in ((QLineEdit, QLineEdit.text), (QLabel, QLabel.text), (QTextEdit, QTextEdit.toPlainText),
                       (QPlainTextEdit, QPlainTextEdit.toPlainText), (QAbstractButton, QAbstractButton.text)):
        texts += [read(w) for w in root.findChildren(kind)]
    return texts


def _clipboard_dump() -> str:
    board = QGuiApplication.clipboard()
    parts = [board.text(QClipboard.Mode.Clipboard)]
    mime = board.mimeData(QClipboard.Mode.Clipboard)
    if mime is not None:
        parts += [bytes(mime.data(kind)).decode("utf-8", "replace") for kind in mime.formats()]
    if board.supportsSelection():
        parts.append(board.text(QClipboard.Mode.Selection))
    return "\n".join(parts)


def _drive_the_gui(qtbot, path: Path, search: Search, exceptions: list) -> list[tuple[str, str]]:
    from its_desktop.ui.controller import VaultController
    from its_desktop.ui.models.secrets_model import Column
    from its_desktop.ui.panels.secrets import SecretsPanel
    from its_desktop.ui.settings import AppSettings
    from its_desktop.ui.window import MainWindow

    controller = VaultController(path, settings=AppSettings.load())  # as ui/app.py starts it
    shown: list[str] = []
    controller.failed.connect(shown.append)  # what the app shows for a failed operation
    window = MainWindow(controller)
    qtbot.addWidget(window)
    texts: list[tuple[str, str]] = []
    try:
        window.show()
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow)
        page = window.unlock_page
        qtbot.keyClicks(page.password, WRONG_PASSWORD)
        qtbot.keyClick(page.password, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: bool(shown), timeout=20_000)
        page.password.clear()
        qtbot.keyClicks(page.password, PASSWORD)
        qtbot.keyClick(page.password, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: controller.vault is not None and window.stack.currentWidget() is window.tabs,
                        timeout=20_000)
        panel = next(p for p in window.panels if isinstance(p, SecretsPanel))
        window.tabs.setCurrentWidget(panel)
        qtbot.waitUntil(lambda: panel.model.row_of(NAME) >= 0, timeout=10_000)
        rect = panel.table.visualRect(panel.model.index(panel.model.row_of(NAME), Column.NAME))
        qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        assert panel.editor.current == NAME
        line = panel.editor.value
        qtbot.mouseClick(line.reveal_button, Qt.MouseButton.LeftButton)
        assert line.edit.text() == CANARY, "reveal showed the value"
        qtbot.mouseClick(line.reveal_button, Qt.MouseButton.LeftButton)
        (_, field_line), = panel.editor.field_lines.values()
        qtbot.mouseClick(field_line.reveal_button, Qt.MouseButton.LeftButton)
        assert field_line.edit.text() == FIELD_CANARY
        qtbot.mouseClick(field_line.reveal_button, Qt.MouseButton.LeftButton)
        texts.append(("the window's widgets after hide", "\n".join(_widget_texts(window))))

        assert window.clipboard.timeout_seconds == 1, "the settings' clipboard timeout was not applied"
        panel.table.setFocus()
        qtbot.keyClick(panel.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
        assert QGuiApplication.clipboard().text() == CANARY, "the copy happened"
        qtbot.waitUntil(lambda: QGuiApplication.clipboard().text() == "", timeout=5_000)
        qtbot.wait(200)
        texts.append(("the clipboard after its timeout", _clipboard_dump()))
        texts.append(("the window's status bar", window.statusBar().currentMessage()))

        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow)
        qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: controller.vault is None, timeout=10_000)
        texts.append(("the window's widgets after lock", "\n".join(_widget_texts(window))))
        texts.append(("the clipboard after lock", _clipboard_dump()))
        texts.append(("repr of the controller and window", repr(controller) + repr(window)))
    finally:
        controller.lock(quick=False)
        controller.runner.shutdown()
    texts += [(f"the app's failure message {i}", text) for i, text in enumerate(shown)]
    return texts


# -- in this process: reprs and exceptions ------------------------------------------------------


def _reprs_and_exceptions(path: Path, exceptions: list[BaseException]) -> list[tuple[str, str]]:
    def expect_error(call) -> None:
        try:
            call()
        except (VaultError, KeyError, ValueError) as error:
            exceptions.append(error)
        else:
            raise AssertionError(f"{call} did not fail")

    expect_error(lambda: Vault.open(path, WRONG_PASSWORD))
    reprs: list[tuple[str, str]] = []
    with Vault.open(path, PASSWORD) as vault:
        secret = vault.get(NAME)
        assert secret.value == CANARY and secret.fields["account"] == FIELD_CANARY
        server = AgentServer(lambda: vault, mode="headless")
        reprs += [("repr of the Vault", repr(vault)), ("repr of the Secret", repr(secret)),
                  ("str of the Secret", str(secret)), ("repr of its versions", repr(secret.versions())),
                  ("repr of its history", repr(secret.history)), ("repr of its summary", repr(secret.summary())),
                  ("repr of the AgentServer", repr(server)), ("repr of the body", repr(vault._body))]
        expect_error(lambda: vault.value(NAME, "no-such-field"))
        expect_error(lambda: vault.get(NAME + "-missing"))
        expect_error(lambda: vault.restore(NAME, 999))
        expect_error(lambda: secret.field("nope"))
        expect_error(lambda: vault.set(NAME + "//bad", CANARY))
        expect_error(lambda: vault.set(NAME, CANARY, type="not-a-type"))
    reprs.append(("repr of the locked Vault", repr(vault)))
    return reprs
