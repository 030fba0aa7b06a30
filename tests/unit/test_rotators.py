"""The rotation engine with the rotators that need no server: generated and manual.

The manual rotator's person is a scripted ``Person`` (the same Interaction the terminal and the
GUI implement); every step runs against a real vault file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from its_desktop.core.errors import InvalidInput
from its_desktop.core.passwords import ValuePolicy
from its_desktop.core.rotation import RotationPolicy, RotationStatus
from its_desktop.core.secrets import SecretSummary, SecretType
from its_desktop.core.vault.api import Vault
from its_desktop.rotators import registry
from its_desktop.rotators.base import RotationFailed
from its_desktop.rotators.due import due_work, rotate_due
from its_desktop.rotators.engine import abandon, rotate
from tests.conftest import PASSWORD

OLD = "old-value-uniq-5b1c"
NEW = "new-broker-key-uniq-77e0"


@dataclass
class Person:
    value: str | None = NEW
    confirms: bool = True
    told: list[str] = field(default_factory=list)
    asked: int = 0

    def guide(self, name: str, text: str) -> None:
        self.told.append(text)

    def new_value(self, name: str) -> str | None:
        return self.value

    def confirm(self, question: str) -> bool:
        self.asked += 1
        return self.confirms


def steps_in_audit(vault: Vault, name: str) -> list[tuple[str, str]]:
    return [(r.event.op, r.event.outcome) for r in vault.audit_records()
            if r.event.name == name and r.event.op.startswith("rotate")]


def test_generated_rotation_follows_the_policy_keeps_the_old_value_and_audits_every_step(vault: Vault):
    vault.set("bots/alpha", OLD, rotator="generated", value_policy=ValuePolicy(24, "hex"),
              rotation=RotationPolicy(30))
    done = rotate(vault, "bots/alpha")
    secret = vault.peek("bots/alpha")
    assert (done.rotator, done.version, done.resumed) == ("generated", 2, False)
    assert len(secret.value) == 24 and set(secret.value) <= set("0123456789abcdef")
    assert secret.history[-1].value == OLD
    assert secret.pending is None and secret.rotation_count == 1 and secret.last_rotated is not None
    assert steps_in_audit(vault, "bots/alpha") == [("rotate-create", "ok"), ("rotate-set", "ok"),
                                                   ("rotate-test", "ok"), ("rotate-finish", "ok")]
    assert all(OLD not in line and secret.value not in line
               for line in vault.path.with_name("vault.its.audit").read_text().splitlines())


def test_a_crash_after_create_leaves_the_current_value_and_the_next_rotation_resumes(vault: Vault):
    vault.set("bots/alpha", OLD, rotator="generated")

    def crash_at_set(name: str, step: str) -> None:
        if step == "set":
            raise KeyboardInterrupt  # the process dies here

    with pytest.raises(KeyboardInterrupt):
        rotate(vault, "bots/alpha", observer=crash_at_set)
    reopened = Vault.open(vault.path, PASSWORD)
    secret = reopened.peek("bots/alpha")
    assert secret.value == OLD and secret.pending is not None
    pending = secret.pending.value
    assert reopened.summaries()[0].pending_since is not None
    done = rotate(reopened, "bots/alpha")
    assert done.resumed and reopened.peek("bots/alpha").value == pending
    reopened.lock()


def test_manual_rotation_takes_the_new_value_and_commits_it_only_once_confirmed(vault: Vault):
    vault.set("brokers/ibkr", OLD, description="IBKR API", fields={"url": "https://broker.example/keys"})
    doubter = Person(confirms=False)
    with pytest.raises(RotationFailed) as failure:
        rotate(vault, "brokers/ibkr", interaction=doubter)
    assert failure.value.step == "test" and failure.value.pending
    assert NEW not in str(failure.value) and OLD not in str(failure.value)
    assert "https://broker.example/keys" in doubter.told[0]
    assert vault.peek("brokers/ibkr").value == OLD  # still the one in use
    sure = Person(value=None)  # resuming never asks for the value again
    done = rotate(vault, "brokers/ibkr", interaction=sure)
    assert done.resumed and sure.asked == 1
    secret = vault.peek("brokers/ibkr")
    assert secret.value == NEW and secret.history[-1].value == OLD


def test_manual_rotation_needs_a_person_and_refuses_the_same_value(vault: Vault):
    vault.set("brokers/ibkr", OLD)
    with pytest.raises(RotationFailed, match="needs a person") as failure:
        rotate(vault, "brokers/ibkr")
    assert failure.value.step == "create" and not failure.value.pending
    with pytest.raises(RotationFailed, match="same as the current"):
        rotate(vault, "brokers/ibkr", interaction=Person(value=OLD))
    with pytest.raises(RotationFailed, match="no new value"):
        rotate(vault, "brokers/ibkr", interaction=Person(value=None))
    assert vault.peek("brokers/ibkr").pending is None
    assert ("rotate-create", "failed") in steps_in_audit(vault, "brokers/ibkr")


def test_a_half_done_rotation_must_be_resumed_with_its_own_rotator_or_abandoned(vault: Vault):
    vault.set("brokers/ibkr", OLD)
    with pytest.raises(RotationFailed):
        rotate(vault, "brokers/ibkr", interaction=Person(confirms=False))
    with pytest.raises(InvalidInput, match="under way"):
        rotate(vault, "brokers/ibkr", rotator="generated")
    abandon(vault, "brokers/ibkr")
    assert vault.peek("brokers/ibkr").pending is None and vault.peek("brokers/ibkr").value == OLD
    assert rotate(vault, "brokers/ibkr", rotator="generated").rotator == "generated"


def test_a_rotator_that_cannot_handle_the_secret_says_why_before_changing_anything(vault: Vault):
    vault.set("db/main", OLD, type=SecretType.DATABASE)
    with pytest.raises(InvalidInput, match="no host or user field"):
        rotate(vault, "db/main", rotator="postgresql")
    vault.set("note", OLD)
    with pytest.raises(InvalidInput, match="not a database"):
        rotate(vault, "note", rotator="postgresql")
    with pytest.raises(InvalidInput, match="unknown rotator"):
        rotate(vault, "note", rotator="carrier-pigeon")
    assert steps_in_audit(vault, "db/main") == []


def test_rotate_now_requests_make_secrets_overdue_until_they_get_a_new_value(vault: Vault):
    vault.set("a", OLD, rotator="generated")
    vault.set("b", OLD, rotation=RotationPolicy(90))
    vault.set("c", OLD)
    assert vault.request_rotation() == 3
    now = vault.clock()
    assert {s.name: s.status(now) for s in vault.summaries()} == {
        "a": RotationStatus.OVERDUE, "b": RotationStatus.OVERDUE, "c": RotationStatus.OVERDUE}
    rotate(vault, "a")
    vault.set("b", "typed-by-hand-uniq-2")
    vault.mark_rotated("c")
    assert all(s.status(now) is RotationStatus.OK and s.rotate_requested is None for s in vault.summaries())


def test_restoring_an_old_value_does_not_answer_a_rotate_now_request(vault: Vault):
    vault.set("a", OLD)
    vault.set("a", "second-uniq-3")
    vault.request_rotation(["a"])
    vault.restore("a", 1)
    assert vault.peek("a").rotate_requested is not None


def test_rotate_due_runs_automatic_rotators_and_lists_the_manual_ones(vault: Vault):
    long_ago = vault.clock() - timedelta(days=40)
    vault.set("auto/due", OLD, rotator="generated", rotation=RotationPolicy(30))
    vault.set("auto/fresh", OLD, rotator="generated", rotation=RotationPolicy(90))
    vault.set("hand/due", OLD, rotation=RotationPolicy(30))
    vault.set("broken/due", OLD, rotator="postgresql", rotation=RotationPolicy(30))  # not a database secret
    vault.clock = lambda: long_ago + timedelta(days=80)  # 40 days later than now
    report = rotate_due(vault)
    assert [r.name for r in report.rotated] == ["auto/due"]
    assert report.manual == ["hand/due"]
    assert [name for name, _ in report.failed] == ["broken/due"] and not report.ok
    assert vault.peek("auto/fresh").value == OLD and vault.peek("hand/due").value == OLD


def test_due_work_includes_half_done_rotations(vault: Vault):
    vault.set("auto", OLD, rotator="generated")
    vault.begin_rotation("auto", "pending-uniq-9", "generated")
    work = due_work(vault.summaries(), vault.clock())
    assert work.automatic == ["auto"]


def test_summary_rows_written_before_the_rotation_fields_still_read():
    row = ["n", "id", "password", {}, [], "", "2030-01-01T00:00:00.000000+00:00",
           "2030-01-01T00:00:00.000000+00:00", "2030-01-01T00:00:00.000000+00:00", None, 1, None, None, None,
           0, None, False]
    summary = SecretSummary.from_row(row)
    assert summary.rotator is None and summary.pending_since is None
    assert registry.rotator_name(summary) == "manual"


def test_value_policies_reject_what_they_cannot_make():
    with pytest.raises(InvalidInput, match="unknown alphabet"):
        ValuePolicy(20, "emoji")
    with pytest.raises(InvalidInput, match="length"):
        ValuePolicy(4)
    policy = ValuePolicy(40, "base64url")
    assert policy.accepts(policy.generate()) and not policy.accepts("short")
