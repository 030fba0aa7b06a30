"""Emergency lockdown: the vault's half of "I think a key leaked".

In one save (one audit record, ``lockdown``), every agent grant is revoked and every secret is
marked "rotate now", so the rotation schedule becomes the incident checklist. The callers do
the rest of the drill, which lives in their process: lock the vault (and the agent's sessions
with it) and clear the clipboard.
"""

from __future__ import annotations

from dataclasses import dataclass

from .grants import GRANTS_KEY
from ..core.audit import AuditEvent
from ..core.vault.api import Change, Vault, mark_rotate_now


@dataclass(frozen=True)
class LockdownReport:
    grants_revoked: int
    secrets_marked: int  # newly marked; ones already marked keep their first request time

    def describe(self) -> str:
        return (f"{self.grants_revoked} agent grant{'s' if self.grants_revoked != 1 else ''} revoked, "
                f"{self.secrets_marked} secret{'s' if self.secrets_marked != 1 else ''} marked rotate now")


def lockdown(vault: Vault) -> LockdownReport:
    counts: list[LockdownReport] = []

    def change(c: Change) -> list[AuditEvent]:
        grants = len(c.body.settings.get(GRANTS_KEY) or [])
        c.body.settings[GRANTS_KEY] = []
        now = vault.clock()
        report = LockdownReport(grants, mark_rotate_now(c.body, None, now))
        counts.append(report)
        return [AuditEvent("lockdown", "ok", vault.actor, None, report.describe(), now)]

    vault.apply(change)
    return counts[0]
