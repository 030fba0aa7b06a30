"""How the Secrets panel feels with 10,000 secrets: per-keystroke search, column sorts, filling.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_gui_secrets.py [RECORDS]

Each keystroke is a real key event sent to the search field, timed until the list has been
filtered and the view has processed the events it queued (layout and paint), as a user would
wait for it. The queries are typed once before the timed rounds (Qt fills its glyph caches on
the first paints; that round's worst is printed as context). Timings on a busy machine vary: the
load average is printed. A report, not a test: a missed target prints MISS.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from its_desktop.core.crypto import Argon2Params  # noqa: E402
from its_desktop.core.secrets import Secret, SecretType  # noqa: E402
from its_desktop.core.vault.api import Vault  # noqa: E402
from its_desktop.factors.base import QuietPrompter  # noqa: E402
from its_desktop.ui.controller import VaultController  # noqa: E402
from its_desktop.ui.models.secrets_model import Column  # noqa: E402
from its_desktop.ui.panels.secrets import SecretsPanel  # noqa: E402

PASSWORD = "bench: correct horse battery staple"
FAST_KDF = Argon2Params(8 * 1024, 1, 1)  # the KDF is not what this measures
GROUPS = 50
QUERIES = ("acct7319", "b17 prod", "crypto desk")  # typed one character at a time, then erased
KEYSTROKE_MS, SORT_MS = 16.0, 50.0
Figure = tuple[str, float, str]


def make_records(count: int) -> list[Secret]:
    """The records of ``benchmarks/bench_vault.py`` plus a description, so every field is searched."""
    return [Secret(name=f"brokers/b{i % GROUPS}/acct{i}", value=f"{i:040d}", type=SecretType.API_KEY,
                   fields={"username": f"user{i}", "url": f"https://b{i % GROUPS}.example/api"},
                   tags={"env": "prod" if i % 3 else "paper", "desk": "crypto" if i % 7 == 0 else "fx"},
                   description=f"account {i} at broker {i % GROUPS}") for i in range(count)]


def timed(action: Callable[[], object], app: QApplication, cpu: list[float] | None = None) -> float:
    """Milliseconds until ``action`` and the events it queued (the view's relayout) are done;
    ``cpu`` gets this thread's CPU time for it, which other processes on the machine cannot
    inflate (wall time minus CPU time is time spent waiting for a core)."""
    start, start_cpu = time.perf_counter(), time.thread_time()
    action()
    app.processEvents()
    if cpu is not None:
        cpu.append((time.thread_time() - start_cpu) * 1000)
    return (time.perf_counter() - start) * 1000


def measure(records: int = 10_000) -> list[Figure]:
    """(figure, milliseconds, target) for filling, keystrokes and sorts, on a fresh vault."""
    count = records
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vault.its"
        with Vault.create(path, PASSWORD, kdf=FAST_KDF) as vault:
            vault.import_secrets(make_records(count), "bench")
        controller = VaultController(path)
        controller.session.unlock(PASSWORD, QuietPrompter())
        panel = SecretsPanel(controller)
        panel.resize(1400, 900)
        panel.show()
        app.processEvents()
        try:
            return _measure(app, controller, panel, count)
        finally:
            controller.lock(quick=False)
            controller.runner.shutdown()
            panel.close()
            panel.deleteLater()
            app.processEvents()


def _measure(app: QApplication, controller: VaultController, panel: SecretsPanel, count: int) -> list[Figure]:
    figures: list[Figure] = []
    first = timed(controller.unlocked.emit, app)  # decodes every record of the vault body
    assert panel.model.rowCount() == count
    figures.append((f"populate {count:,} secrets, first (decodes)", first, "context"))
    again = []
    for _ in range(4):
        panel.clear()
        app.processEvents()
        again.append(timed(controller.unlocked.emit, app))
    figures.append(("populate again (median of 4)", statistics.median(again), "context"))

    vault = controller.vault
    assert vault is not None
    changes = []
    for i in range(5):
        vault.set(f"brokers/b1/added{i}", "x" * 40, tags={"env": "prod"})
        changes.append(timed(controller.notify_changed, app))
    figures.append(("apply one vault change (median of 5)", statistics.median(changes), "context"))

    panel.search.setFocus()
    cold = type_queries(app, panel)  # the first round also fills Qt's glyph caches
    figures.append((f"keystroke, worst of the first round ({len(cold)})", max(cold), "context"))
    cpu: list[float] = []
    strokes = type_queries(app, panel, cpu) + type_queries(app, panel, cpu)
    assert panel.model.rowCount() == panel.model.total
    figures.append((f"keystroke, median of {len(strokes)}", statistics.median(strokes), f"<= {KEYSTROKE_MS:g} ms"))
    figures.append((f"keystroke, worst of {len(strokes)}", max(strokes), f"<= {KEYSTROKE_MS:g} ms"))
    figures.append(("keystroke, worst CPU time of the same", max(cpu), "context"))

    for column in Column:
        runs = [timed(lambda order=order: panel.table.sortByColumn(column, order), app)
                for _ in range(3) for order in (Qt.SortOrder.DescendingOrder, Qt.SortOrder.AscendingOrder)]
        figures.append((f"sort by {column.name.lower()} (median of 6)", statistics.median(runs), f"<= {SORT_MS:g} ms"))
    return figures


def type_queries(app: QApplication, panel: SecretsPanel, cpu: list[float] | None = None) -> list[float]:
    """Each query typed a key at a time into the search field, then erased with Backspace."""
    strokes = []
    for query in QUERIES:
        for ch in query:
            strokes.append(timed(lambda ch=ch: QTest.keyClick(panel.search, ch), app, cpu))
        assert panel.model.rowCount() < panel.model.total
        for _ in query:
            strokes.append(timed(lambda: QTest.keyClick(panel.search, Qt.Key.Key_Backspace), app, cpu))
    return strokes


def verdict(ms: float, target: str) -> str:
    if not target.startswith("<="):
        return ""
    return "PASS" if ms <= float(target.split()[1]) else "MISS"


def main(argv: list[str]) -> int:
    count = int(argv[1]) if len(argv) > 1 else 10_000
    figures = measure(count)
    print(f"Secrets panel, {count:,} secrets, {os.environ.get('QT_QPA_PLATFORM')} platform, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    for label, ms, target in figures:
        print(f"{label:<44}{ms:9.2f} ms   {target:<10}{verdict(ms, target)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
