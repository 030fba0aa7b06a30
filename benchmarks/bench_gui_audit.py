"""How fast the audit log panel opens on a long log: ``populate()`` to a painted first page.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_gui_audit.py [--events N] [--verify]

The first run with a given N builds a vault whose audit log holds N records (appended through
``AuditLog.append`` in batches: about 30 s per million) and caches it in ``benchmarks/.work/``;
every run works on a fresh copy. Each repetition is a fresh unlock, controller and panel, as
after a real unlock; the panel's background chain verification runs meanwhile, as it does for
a user, and is cut short by locking at the end of the repetition. A report, not a test: a
missed target prints MISS and the exit status is still 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from its_desktop.core.audit import Actor, AuditEvent, AuditFiles
from its_desktop.core.crypto import Argon2Params
from its_desktop.core.vault.api import Vault
from its_desktop.core.vault.header import FORMAT_VERSION
from its_desktop.core.vault.storage import writer_lock

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"  # git-ignored
PASSWORD = "bench: correct horse battery staple"
KDF = Argon2Params(8 * 1024, 1, 1)  # the unlock is not what is measured here
DATA_VERSION = 1  # bump when the generated records change
BATCH = 50_000
REPS = 5
OPEN_TARGET_MS = 200.0
OPS = ("read",) * 6 + ("update", "rotate", "history", "export")
ACTORS = (Actor("cli", 31337, "/usr/local/bin/its-vault"), Actor("agent", 2024, "/usr/local/bin/its-agent"),
          Actor("gui", 4711, "/usr/local/bin/its-desktop"))


def _event(i: int, start: datetime) -> AuditEvent:
    """Record i of the generated log: mostly reads of 200 broker keys by three programs, one
    every 30 seconds."""
    op = OPS[i % len(OPS)]
    return AuditEvent(op, "ok" if i % 97 else "not-found", ACTORS[i % len(ACTORS)], f"brokers/b{i % 200}/api_key",
                      f"version {i % 7} restored as {i % 7 + 1}" if op == "rotate" else None,
                      start + timedelta(seconds=30 * i))


def prepare(events: int, log: Callable[[str], None]) -> Path:
    """Build (or reuse) the cached vault with ``events`` audit records; returns a fresh copy."""
    cache = WORK / "audit" / f"v{DATA_VERSION}.{FORMAT_VERSION}-n{events}"
    source = cache / "vault.its"
    if not (cache / "complete").exists():
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        log(f"building a vault with {events:,} audit records in {cache} (once)")
        started = time.perf_counter()
        with Vault.create(source, PASSWORD, kdf=KDF) as vault:
            audit = vault.audit_reader().log
            begin = datetime.now(timezone.utc) - timedelta(seconds=30 * events)
            done = 1  # Vault.create wrote "init"
            while done < events:
                count = min(BATCH, events - done)
                with writer_lock(source):
                    audit.append([_event(i, begin) for i in range(done, done + count)])
                done += count
        (cache / "complete").touch()
        log(f"built in {time.perf_counter() - started:.0f} s")
    run = WORK / "audit-run"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    files = AuditFiles.beside(source)
    for path in (source, files.log, files.head):
        shutil.copyfile(path, run / path.name)
        with open(run / path.name, "rb") as fh:
            os.fsync(fh.fileno())  # else the first append's fsync would write the whole copy out
    return run / source.name


def measure(events: int = 1_000_000, *, verify: bool = False,
            log: Callable[[str], None] = lambda message: None) -> list[tuple[str, float, str]]:
    """(figure, milliseconds, target) rows: the panel's open time on a log of ``events``
    records (median and worst of REPS fresh opens), then context figures from the last open."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QApplication

    from its_desktop.factors.base import QuietPrompter
    from its_desktop.ui.controller import VaultController
    from its_desktop.ui.models.audit_model import PAGE
    from its_desktop.ui.panels.audit import AuditPanel

    path = prepare(events, log)
    app = QApplication.instance() or QApplication([sys.argv[0]])

    def until(done: Callable[[], bool], started: float, limit: float = 600.0) -> float:
        """Milliseconds from ``started`` until ``done()``, running the event loop meanwhile."""
        while not done():
            if time.perf_counter() - started > limit:
                raise TimeoutError("the panel did not get there")
            app.processEvents()
            time.sleep(0.0005)
        return (time.perf_counter() - started) * 1000

    def filtered(label: str, setup: Callable[[], None]) -> None:
        panel.secret_filter.setText("")
        panel.op_filter.setCurrentText("")
        setup()
        started = time.perf_counter()
        panel.apply_filter()
        rows.append((f"{label}: first row", until(lambda: model.rowCount() > 0 or model.complete, started), "context"))
        rows.append((f"{label}: first {PAGE} rows or the end",
                     until(lambda: model.rowCount() >= PAGE or model.complete, started), "context"))

    opens: list[float] = []
    rows: list[tuple[str, float, str]] = []
    for rep in range(REPS):
        controller = VaultController(path)
        controller.session.unlock(PASSWORD, QuietPrompter())
        panel = AuditPanel(controller)
        model = panel.model
        panel.resize(1200, 800)
        panel.show()
        app.processEvents()
        started = opened = time.perf_counter()
        panel.populate()
        app.processEvents()  # the delayed item layout, then the paint
        panel.view.viewport().repaint()  # and a synchronous paint, in case it was coalesced
        opens.append((time.perf_counter() - started) * 1000)
        assert panel.view.indexAt(QPoint(4, 4)).row() == 0 and model.rowCount() == PAGE
        log(f"open {rep + 1}/{REPS}: {opens[-1]:.1f} ms")
        if rep == REPS - 1:
            started = time.perf_counter()
            panel.view.scrollToBottom()
            rows.append(("scroll to the end: the next page", until(lambda: model.rowCount() > PAGE, started), "context"))
            filtered("filter by one secret (1 in 200)", lambda: panel.secret_filter.setText("brokers/b7/api_key"))
            filtered("filter by operation (1 in 10)", lambda: panel.op_filter.setCurrentText("rotate"))
            filtered("filter matching nothing (a full scan)", lambda: panel.secret_filter.setText("no/such/secret"))
            if verify:
                rows.append(("chain verification, in the background", until(
                    lambda: panel.banner.text().startswith(("verified", "tampered")), opened), "context"))
                log(panel.banner.text())
        controller.lock(quick=False)  # wipes the keys: a verification still running stops at once
        controller.runner.shutdown()
        panel.deleteLater()
        app.processEvents()
    label = f"audit panel open, {events:,} events"
    target = f"<= {OPEN_TARGET_MS:.0f} ms"
    return [(f"{label} (median of {REPS})", statistics.median(opens), target),
            (f"{label} (worst of {REPS})", max(opens), target), *rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The audit panel's open time on a long log.")
    parser.add_argument("--events", type=int, default=1_000_000, help="audit records in the log (default 1,000,000)")
    parser.add_argument("--verify", action="store_true", help="also time the background chain verification")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    figures = measure(args.events, verify=args.verify, log=log)
    print(f"{'figure':<56}{'ms':>10}   {'target':<10}result")
    for label, ms, target in figures:
        result = "" if target == "context" else ("PASS" if ms <= OPEN_TARGET_MS else "MISS")
        print(f"{label:<56}{ms:10.1f}   {target:<10}{result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
