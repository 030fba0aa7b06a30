"""``aws``: rotate a secret that a sync remote keeps in AWS Secrets Manager, with AWS's own
rotation stages (as a rotation Lambda does):

- set: ``PutSecretValue`` staged ``AWSPENDING`` only, with a ``ClientRequestToken`` derived
  from the base version and the new content (sync's token), so a resumed set is the same
  version, not a second one; nothing reads it as current yet;
- test: ``GetSecretValue(VersionStage=AWSPENDING)`` is the new value (on resume after finish
  moved the stage: ``AWSCURRENT`` is);
- finish: ``UpdateSecretVersionStage`` moves ``AWSCURRENT`` to it *from the base version*
  (AWS refuses if someone else moved it: the check-and-set), AWS moves ``AWSPREVIOUS`` to the
  old version, and ``AWSPENDING`` is taken off the new one; then the value and the moved base
  are committed here in one save. Repeated after a crash, the move is skipped.

What it shares with the ``openbao`` rotator (the remote, the "sync first" checks, the payload,
the base) is ``synced.SyncedRotator``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..sync.aws import CURRENT, PENDING, AwsBackend
from ..sync.syncer import Syncer
from .base import RotationContext, SettingsEdit, StepFailed
from .synced import SyncedRotator


@dataclass
class AwsRotator(SyncedRotator):
    name: ClassVar[str] = "aws"
    remote_type: ClassVar[str] = "aws"

    def set(self, ctx: RotationContext, new: str) -> None:
        target, content = self.target(ctx), self.content(ctx, new)
        with self.opened(ctx, target) as syncer:
            backend = _aws(syncer)
            current = backend.read(target.key)
            if current.version != target.expected:  # set again on resume: still on top of the base?
                raise StepFailed(f"'{ctx.name}' changed on remote '{target.remote.name}' since the rotation "
                                 f"began: abandon it ('its-vault rotate {ctx.name} --abandon'), sync, and rotate again",
                                 resumable=False)
            request_id = syncer.request_id(target.key, target.expected, content.hash)
            self.written = backend.put_pending(target.key, content.to_json(), request_id)

    def test(self, ctx: RotationContext, new: str) -> None:
        target, content = self.target(ctx), self.content(ctx, new)
        with self.opened(ctx, target) as syncer:
            backend = _aws(syncer)
            for stage in (PENDING, CURRENT):  # AWSCURRENT: finish already moved it, then we died
                there = backend.read_stage(target.key, stage)
                if self.holds(there, content):
                    self.verified = there.version
                    return
        raise StepFailed(f"neither {PENDING} nor {CURRENT} of '{target.key}' on remote '{target.remote.name}' "
                         f"is the new value")

    def finish(self, ctx: RotationContext, new: str) -> SettingsEdit | None:
        target = self.target(ctx)
        edit = self.move_base(ctx, target, new)  # first: it checks that test verified a version
        assert self.verified is not None
        with self.opened(ctx, target) as syncer:
            _aws(syncer).move_current(target.key, self.verified, target.expected)
        return edit


def _aws(syncer: Syncer) -> AwsBackend:
    backend = syncer.backend
    if not isinstance(backend, AwsBackend):
        raise StepFailed(f"remote '{syncer.remote.name}' is not an AWS Secrets Manager")
    return backend
