"""core/memory.py: no core files, no ptrace, key buffers kept out of swap where the OS allows.

The process-wide settings are checked in child processes, never in the test runner itself."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from its_desktop.core.memory import lock_memory, unlock_memory

LINUX = sys.platform.startswith("linux")
REPO_ROOT = Path(__file__).resolve().parents[2]

PROBE = r'''
import resource, sys
from its_desktop.core.memory import harden_process, is_dumpable
if sys.argv[2] == "raise":  # as a user with `ulimit -c unlimited` would start it
    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
harden_process(dumpable=sys.argv[1] == "dumpable")
print(*resource.getrlimit(resource.RLIMIT_CORE), is_dumpable())
'''

CRASH = r'''
import os, resource, sys
from its_desktop.core.memory import harden_process
hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))  # cores allowed, as far as this machine allows
if sys.argv[1:] == ["harden"]:
    harden_process()
key = bytearray(b"core-canary-" + os.urandom(8).hex().encode())
print(key.decode(), flush=True)
os.abort()
'''


def _python(code: str, *args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize("start", ["inherited", "raise"])
def test_harden_process_sets_the_core_limit_to_zero_and_marks_the_process_non_dumpable(start):
    done = _python(PROBE, "default", start)
    assert done.returncode == 0, done.stderr
    soft, hard, dumpable = done.stdout.split()
    assert (int(soft), int(hard)) == (0, 0), "RLIMIT_CORE must be 0, soft and hard"
    assert dumpable == ("False" if LINUX else "None")


def test_a_process_that_is_an_agent_client_stays_dumpable_but_makes_no_core_file():
    done = _python(PROBE, "dumpable", "raise")
    assert done.returncode == 0, done.stderr
    soft, hard, dumpable = done.stdout.split()
    assert (int(soft), int(hard)) == (0, 0)
    assert dumpable == ("True" if LINUX else "None")  # the agent reads its /proc entry to identify it


def test_a_hardened_process_that_crashes_leaves_no_core_file(tmp_path):
    done = _python(CRASH, "harden", cwd=tmp_path)
    assert done.returncode < 0, f"the child did not crash: {done.returncode} {done.stderr}"
    assert done.stdout.startswith("core-canary-")
    left = list(tmp_path.iterdir())
    assert left == [], f"files left by the crash: {left}"


def test_the_crash_test_would_see_a_core_file(tmp_path):
    """The control: the same crash without harden_process() leaves a core file wherever this
    machine writes them into the working folder (core_pattern 'core...', a core limit above 0)."""
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip() if LINUX else ""
    writes_here = pattern.startswith("core") and resource.getrlimit(resource.RLIMIT_CORE)[1] != 0
    done = _python(CRASH, cwd=tmp_path)
    assert done.returncode < 0, f"the child did not crash: {done.returncode} {done.stderr}"
    cores = [p for p in tmp_path.iterdir() if p.name.startswith("core")]
    assert bool(cores) == writes_here, f"core_pattern {pattern!r}: {cores}"
    canary = done.stdout.strip().encode()
    assert all(canary in p.read_bytes() for p in cores), "a core file holds the process's memory"


def test_lock_memory_locks_a_key_buffer_or_says_it_could_not():
    key = bytearray(os.urandom(32))
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    locked = lock_memory(key)
    assert isinstance(locked, bool)
    if soft == resource.RLIM_INFINITY or soft >= 2 * resource.getpagesize() or os.geteuid() == 0:
        assert locked, "mlock of one page was refused although RLIMIT_MEMLOCK allows it"
    if locked and LINUX:
        assert _locked_kib() > 0, "VmLck stayed at 0 after a successful mlock"
    assert unlock_memory(key) is locked
    key[:] = b"\0" * 32  # the buffer is not pinned by the lock: it can be wiped, resized and freed
    key.extend(b"x")
    del key


def test_lock_memory_refuses_immutable_copies_and_ignores_empty_buffers():
    assert lock_memory(bytearray()) is False
    with pytest.raises(TypeError):
        lock_memory(b"immutable")  # type: ignore[arg-type]


def test_lock_memory_reports_false_when_the_limit_forbids_it():
    code = r'''
import os, resource
import ctypes  # loaded before dropping to nobody, who may not read this interpreter's folder
from its_desktop.core.memory import lock_memory, unlock_memory
warm = bytearray(1)
lock_memory(warm); unlock_memory(warm)  # and libc found, for the same reason
resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))
if os.geteuid() == 0:  # CAP_IPC_LOCK ignores the limit: drop to nobody, as a user would be
    os.setgid(65534); os.setuid(65534)
print(lock_memory(bytearray(os.urandom(32))))
'''
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def _locked_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmLck:"):
            return int(line.split()[1])
    return 0


def test_an_unlocked_vault_keeps_its_key_out_of_swap_until_it_locks(tmp_path):
    """Its key's page is locked (VmLck, read from /proc on Linux) while unlocked, and unlocked
    again at lock; elsewhere the vault opens and locks with the same calls."""
    from its_desktop.core.vault.api import Vault
    from tests.conftest import FAST_KDF, PASSWORD

    before = _locked_kib() if LINUX else 0
    vault = Vault.create(tmp_path / "v.its", PASSWORD, kdf=FAST_KDF)
    if LINUX:
        if _locked_kib() == before:  # refused: only acceptable when the limit forbids it
            assert resource.getrlimit(resource.RLIMIT_MEMLOCK)[0] < resource.getpagesize() and os.geteuid() != 0
        else:
            assert _locked_kib() > before
    vault.lock()
    assert vault.is_locked
    if LINUX:
        assert _locked_kib() == before
