"""The figures the adversarial suites report at the end of a run (printed by conftest.py).

A suite adds to a counter (``add``) or sets its summary line (``say``); the terminal summary
prints every line, so the figures show in ``make test`` and ``make soak`` output even with -q.
"""

from __future__ import annotations

from collections import Counter

COUNTS: Counter[str] = Counter()
LINES: dict[str, str] = {}


def add(key: str, n: int = 1) -> None:
    COUNTS[key] += n


def say(key: str, line: str) -> None:
    LINES[key] = line
