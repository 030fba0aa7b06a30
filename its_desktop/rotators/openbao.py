"""``openbao``: rotate a secret that a sync remote keeps in OpenBao / HashiCorp Vault (KV v2).

The remote store owns such a secret (bots read it there), so the new value goes there first, as
a new KV version written with check-and-set on the version both sides last agreed on (the sync
*base*); it is read back, and only then committed here (see ``synced``). The previous value
stays in both histories (KV version n-1, the secret's history here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import RotationContext, StepFailed
from .synced import SyncedRotator


@dataclass
class OpenBaoRotator(SyncedRotator):
    name: ClassVar[str] = "openbao"
    remote_type: ClassVar[str] = "openbao"

    def set(self, ctx: RotationContext, new: str) -> None:
        """A new KV version, only on top of the base version (KV v2 ``cas``)."""
        target, content = self.target(ctx), self.content(ctx, new)
        with self.opened(ctx, target) as syncer:
            request_id = syncer.request_id(target.key, target.expected, content.hash)
            self.written = syncer.backend.write(target.key, content.to_json(), target.expected, False, request_id)

    def test(self, ctx: RotationContext, new: str) -> None:
        """The current version holds the new value (on resume: set already happened)."""
        target, content = self.target(ctx), self.content(ctx, new)
        with self.opened(ctx, target) as syncer:
            there = syncer.backend.read(target.key)
        if not self.holds(there, content):
            raise StepFailed(f"the current version of '{target.key}' on remote '{target.remote.name}' "
                             f"is not the new value")
        self.verified = there.version
