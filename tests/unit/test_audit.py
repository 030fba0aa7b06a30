"""The audit chain: every kind of tampering is detected at the first bad record; an interrupted
append is not tampering; no value ever reaches the log."""

from __future__ import annotations

import json
import shutil

import pytest

from its_desktop.core.audit import AuditFiles
from its_desktop.core.errors import AuditTampered, WrongCredentials
from its_desktop.core.vault.api import Vault
from tests.conftest import PASSWORD


@pytest.fixture
def busy_vault(vault):
    for i in range(5):
        vault.set(f"s/{i}", f"VALUE-{i}")
    vault.get("s/1")
    return vault


def _lines(vault) -> list[bytes]:
    return AuditFiles.beside(vault.path).log.read_bytes().splitlines(keepends=True)


def _write(vault, lines: list[bytes]) -> None:
    AuditFiles.beside(vault.path).log.write_bytes(b"".join(lines))


def test_intact_chain_verifies_and_lists_operations(busy_vault):
    assert busy_vault.verify_audit() == len(_lines(busy_vault))
    ops = [(r.event.op, r.event.name) for r in busy_vault.audit_records()]
    assert ops[0] == ("init", None)
    assert ("create", "s/3") in ops and ("read", "s/1") in ops
    assert all(r.event.actor.pid > 0 for r in busy_vault.audit_records())


def test_no_value_or_name_in_clear(busy_vault):
    raw = b"".join(_lines(busy_vault))
    assert b"VALUE-" not in raw
    assert b"s/1" not in raw, "names are protected at rest"


def test_edited_record_is_detected(busy_vault):
    lines = _lines(busy_vault)
    doc = json.loads(lines[3])
    doc["op"] = "read"
    lines[3] = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    _write(busy_vault, lines)
    with pytest.raises(AuditTampered) as err:
        busy_vault.verify_audit()
    assert err.value.seq == 4


def test_deleted_record_is_detected(busy_vault):
    lines = _lines(busy_vault)
    del lines[2]
    _write(busy_vault, lines)
    with pytest.raises(AuditTampered) as err:
        busy_vault.verify_audit()
    assert err.value.seq == 3


def test_reordered_records_are_detected(busy_vault):
    lines = _lines(busy_vault)
    lines[2], lines[3] = lines[3], lines[2]
    _write(busy_vault, lines)
    with pytest.raises(AuditTampered) as err:
        busy_vault.verify_audit()
    assert err.value.seq == 3


def test_truncated_log_is_detected(busy_vault):
    lines = _lines(busy_vault)
    _write(busy_vault, lines[:-2])
    with pytest.raises(AuditTampered, match="truncated"):
        busy_vault.verify_audit()


def test_log_and_head_rolled_back_together_is_caught_by_the_vault_anchor(busy_vault, tmp_path):
    files = AuditFiles.beside(busy_vault.path)
    busy_vault.set("early", "x")
    saved_log, saved_head = tmp_path / "log", tmp_path / "head"
    shutil.copy(files.log, saved_log)
    shutil.copy(files.head, saved_head)
    busy_vault.set("later", "y")
    busy_vault.set("later2", "z")  # this save anchors the "later" record in the vault
    shutil.copy(saved_log, files.log)
    shutil.copy(saved_head, files.head)
    with pytest.raises(AuditTampered, match="anchor"):
        busy_vault.verify_audit()


def test_deleted_head_is_detected(busy_vault):
    AuditFiles.beside(busy_vault.path).head.unlink()
    with pytest.raises(AuditTampered, match="head"):
        busy_vault.verify_audit()


def test_forged_head_is_detected(busy_vault):
    head = AuditFiles.beside(busy_vault.path).head
    doc = json.loads(head.read_bytes())
    doc["seq"] -= 1
    head.write_text(json.dumps(doc))
    with pytest.raises(AuditTampered):
        busy_vault.verify_audit()


def test_torn_last_line_is_an_interrupted_write_not_tampering(busy_vault):
    log = AuditFiles.beside(busy_vault.path).log
    with open(log, "ab") as fh:
        fh.write(b'{"actor":{"exe":"x","kind":"cli","pi')
    count = busy_vault.verify_audit()
    busy_vault.set("after", "1")  # the next append cuts the torn tail off
    assert busy_vault.verify_audit() == count + 1
    assert all(line.endswith(b"\n") for line in _lines(busy_vault))


def test_append_not_yet_anchored_in_head_is_adopted(busy_vault, tmp_path):
    """A writer killed between appending a record and rewriting the head."""
    files = AuditFiles.beside(busy_vault.path)
    old_head = files.head.read_bytes()
    busy_vault.set("x", "1")
    files.head.write_bytes(old_head)
    n = busy_vault.verify_audit()
    busy_vault.set("y", "2")
    assert busy_vault.verify_audit() == n + 1


def test_failed_unlock_is_recorded_and_chained_at_next_unlock(busy_vault, vault_path):
    with pytest.raises(WrongCredentials):
        Vault.open(vault_path, "wrong")
    assert AuditFiles.beside(vault_path).pending.exists()
    busy_vault.lock()
    with Vault.open(vault_path, PASSWORD) as v:
        events = [(r.event.op, r.event.outcome) for r in v.audit_records()]
        assert events[-2:] == [("unlock", "failed"), ("unlock", "ok")]
        v.verify_audit()
    assert not AuditFiles.beside(vault_path).pending.exists()


def test_last_access_comes_from_the_log(busy_vault, vault_path):
    before = vault_path.read_bytes()
    busy_vault.get("s/2")
    assert vault_path.read_bytes() == before, "a read must not rewrite the vault"
    access = busy_vault.last_access()
    assert set(access) == {"s/1", "s/2"}
    assert access["s/2"] >= access["s/1"]


def test_append_cost_does_not_grow_with_the_log(busy_vault):
    """O(1) append: the tail window read is bounded however long the log is."""
    import time

    def one_append() -> float:
        start = time.perf_counter()
        busy_vault.record("test", "s/1")
        return time.perf_counter() - start

    small = min(one_append() for _ in range(5))
    log = AuditFiles.beside(busy_vault.path).log
    with open(log, "rb") as fh:
        last = fh.read().splitlines()[-1]
    # Grow the log by 20 MB of valid-looking filler *before* the tip record: the append only
    # reads the tail, so its cost must not follow the file size.
    content = log.read_bytes()
    log.write_bytes(b"\n" * 20_000_000 + content)
    big = min(one_append() for _ in range(5))
    assert big < small * 5 + 0.02, f"append took {big:.4f}s on a 20 MB log vs {small:.4f}s"
    assert last


def test_a_reformatted_record_is_detected(busy_vault):
    """Same values, other bytes (spacing): the log is kept exactly as written."""
    lines = _lines(busy_vault)
    lines[2] = json.dumps(json.loads(lines[2]), sort_keys=True).encode() + b"\n"
    _write(busy_vault, lines)
    with pytest.raises(AuditTampered) as err:
        busy_vault.verify_audit()
    assert err.value.seq == 3
