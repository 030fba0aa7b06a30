"""Run every automatic rotation that is due, and list the ones that need a person: what
``its-vault rotate --due`` (cron, a systemd timer) and the app's scheduler do.

Due means overdue or expired on the schedule, or a rotation left half-done (pending). Each
secret is rotated on its own: one failure is reported and the rest still run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..core.errors import VaultError
from ..core.rotation import RotationStatus
from ..core.secrets import SecretSummary
from ..core.vault.api import Vault
from . import registry
from .engine import Rotated, StepObserver, rotate

DUE = (RotationStatus.OVERDUE, RotationStatus.EXPIRED)


@dataclass(frozen=True)
class DueWork:
    automatic: list[str]
    manual: list[str]


@dataclass
class DueReport:
    rotated: list[Rotated] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (name, one-line reason)
    manual: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def is_due(summary: SecretSummary, now: datetime) -> bool:
    return summary.pending_since is not None or summary.status(now) in DUE


def due_work(summaries: list[SecretSummary], now: datetime) -> DueWork:
    """Which due secrets a machine may rotate and which need a person, soonest first."""
    due = sorted((s for s in summaries if is_due(s, now)), key=lambda s: (s.rotation_due or s.expires_at or "", s.name))
    automatic = [s.name for s in due if registry.is_automatic(s.rotator)]
    return DueWork(automatic, [s.name for s in due if not registry.is_automatic(s.rotator)])


def rotate_due(vault: Vault, observer: StepObserver | None = None) -> DueReport:
    work = due_work(vault.summaries(), vault.clock())
    report = DueReport(manual=work.manual)
    for name in work.automatic:
        try:
            report.rotated.append(rotate(vault, name, observer=observer))
        except VaultError as exc:
            report.failed.append((name, str(exc)))
    return report
