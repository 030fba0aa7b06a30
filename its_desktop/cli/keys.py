"""``its-vault rekey``: a new vault key, every slot re-wrapped, body and audit log re-sealed.

```
its-vault rekey          # asks for the master password (and a touch of each plugged-in key)
```

For a vault key that may have leaked (a memory dump, a debugger attached to the app): copies of
the vault made from now on no longer open with it. The password stays the same (``passwd``
changes it); keys that are not plugged in are removed (enrol them again), TPM slots are kept
when their PIN is given (ITS_TPM_PIN or a prompt; a wrong one stops the re-key) and removed when
there is none or the TPM refuses them for good (changed PCRs); the recovery code is
replaced by a new one, printed once on stdout. A running agent or app holding the old key is
told to lock. Errors propagate to ``cli.main``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from . import io


def add_key_commands(command: Callable[[str, str], argparse.ArgumentParser],
                     common: argparse.ArgumentParser) -> None:
    """The ``rekey`` command, made with ``cli.main``'s ``command`` factory (so it takes the
    common options: --vault, --password-stdin, --factor)."""
    p = command("rekey", "a new vault key: every factor re-wrapped, the vault and its audit log re-sealed, "
                         "a new recovery code")
    p.set_defaults(handler=cmd_rekey)


def cmd_rekey(args: argparse.Namespace) -> int:
    from ..factors.registry import HARDWARE_KINDS
    from .commands import STDIN, _check_password, _path, _prompter, unlock_vault

    vault, password = unlock_vault(args)
    with vault:
        if password is None:  # unlocked with the recovery code: the slots still need the password
            password = io.master_password(STDIN, False, confirm=True)
            _check_password(vault, password)
        rebuild, dropped = None, ()
        if any(s.kind in HARDWARE_KINDS for s in vault.slots):
            from ..factors.hardware import rewrap_for_new_password

            # The same password: its rebuild re-wraps for whatever key it is given, the new one.
            rebuild, dropped = rewrap_for_new_password(vault, password, _prompter())
        if any(s.kind == "tpm2" for s in vault.slots):
            rebuild, dropped = _with_tpm_slots(vault, rebuild, dropped)
        names = {s.id: f"{s.kind} '{s.name}' ({s.id})" for s in vault.slots}
        code = vault.rekey(password, rebuild, dropped)
    for slot_id in dropped:
        why = ("could not be unsealed (no PIN given, or the TPM refuses it)" if names[slot_id].startswith("tpm2")
               else "was not plugged in")
        io.warn(f"{names[slot_id]} {why} to be re-wrapped, so it was removed: enrol it again")
    if code is not None:
        io.info("new recovery code (shown once; the old code no longer works):")
        print(code, flush=True)
    io.info("vault re-keyed")
    _lock_stale_agent(_path(args))
    return 0


def _with_tpm_slots(vault, rebuild, dropped):
    """Add the TPM slots to a re-key: unsealed now with the PIN (ITS_TPM_PIN or a prompt), so a
    wrong PIN stops the re-key before anything changes; with no PIN to ask for, they are dropped."""
    import os

    from ..factors import tpm2

    pin = os.environ.get(io.TPM_PIN_ENV) or (io.prompt_secret("TPM PIN (to keep the TPM factor)")
                                             if io.interactive() else None)
    tpm_rebuild, tpm_dropped = tpm2.rewrap(vault, pin)

    def both(vault_key, vault_id):
        return (rebuild(vault_key, vault_id) if rebuild else []) + tpm_rebuild(vault_key, vault_id)

    return both, tuple(dropped) + tpm_dropped


def _lock_stale_agent(path: Path) -> None:
    """A running agent or app serving this vault holds the old key: ask it to lock (its next
    change would fail anyway). Nothing running, or serving another vault: nothing to do."""
    from ..client import AgentClient, AgentError
    from .agent import _same_file

    try:
        with AgentClient(timeout=10) as client:
            status = client.status()
            if status.get("locked") or not status.get("vault") or not _same_file(status["vault"], path):
                return
            client.lock()
    except AgentError:
        return
    who = "the app" if status.get("mode") == "gui" else "the agent"
    io.info(f"{who} (pid {status.get('pid')}) held the old key and was locked")
