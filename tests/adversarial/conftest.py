"""The adversarial suites: a short mode in ``make test``, a long one in ``make soak``.

Knobs (environment): ``ITS_FUZZ_EXAMPLES`` (hypothesis examples per fuzz target; its presence
also lets hypothesis explore new inputs instead of the fixed derandomised ones), and
``ITS_TAMPER_FULL=1`` (every bit of every byte of a bigger vault).
"""

from __future__ import annotations

from . import figures


def pytest_terminal_summary(terminalreporter) -> None:
    fuzz = {k.removeprefix("fuzz:"): n for k, n in figures.COUNTS.items() if k.startswith("fuzz:")}
    lines = dict(figures.LINES)
    if fuzz:
        per_target = ", ".join(f"{name} {n}" for name, n in sorted(fuzz.items()))
        lines["fuzz"] = f"fuzz examples run: {sum(fuzz.values())} ({per_target})"
    if not lines:
        return
    terminalreporter.write_sep("-", "adversarial figures")
    for key in sorted(lines):
        terminalreporter.write_line(lines[key])
