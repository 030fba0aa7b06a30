"""``its-vault backup``, ``restore-backup``, ``backups`` and ``export`` (docs/backup.md).

```
its-vault backup FILE [--recovery-code] [--force] [--kdf-memory MIB --kdf-time N]
its-vault restore-backup FILE [--vault PATH] [--force] [--factor recovery] [--kdf-memory MIB --kdf-time N]
its-vault backups [--keep N] [--list] [--json]
its-vault export FILE [--format json|csv|env] [--prefix P] [--force]
```

Passphrases and passwords never come from argv: the backup passphrase from
``ITS_BACKUP_PASSWORD`` or a prompt; the master password as for every command; the password
that re-authenticates an export from a prompt, or ``ITS_REAUTH_PASSWORD`` when there is no
terminal (never ``ITS_MASTER_PASSWORD``: a process that only holds the password it unlocks
with cannot dump the vault in plain text by accident). Errors propagate to ``cli.main``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable

from . import io
from .io import UsageError

BACKUP_PASSWORD_ENV = "ITS_BACKUP_PASSWORD"
REAUTH_PASSWORD_ENV = "ITS_REAUTH_PASSWORD"
FORMATS = ("json", "csv", "env")  # services.backup.FORMATS, without importing it at start-up


def add_backup_commands(command: Callable[[str, str], argparse.ArgumentParser],
                        common: argparse.ArgumentParser) -> None:
    """``backup``, ``restore-backup``, ``backups`` and ``export``, made with ``cli.main``'s
    ``command`` factory (so they take --vault, --password-stdin, --factor)."""
    p = command("backup", "write an encrypted copy of the whole vault under a passphrase of its own")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--recovery-code", action="store_true",
                   help="also make a recovery code that opens the backup (printed once)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    _kdf_options(p)
    p.set_defaults(handler=cmd_backup)

    p = command("restore-backup", "make a vault (at --vault, or the usual path) from a backup or a rolling "
                                  "generation; --factor recovery opens the backup with its recovery code")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--force", action="store_true",
                   help="replace an existing vault (it is kept beside it as <vault>.replaced-<time>)")
    _kdf_options(p)
    p.set_defaults(handler=cmd_restore_backup)

    p = command("backups", "list the rolling generations kept on every save, or set how many to keep")
    p.add_argument("--keep", type=int, metavar="N", help="keep the last N generations (default 10; 0 turns them off)")
    p.add_argument("--list", action="store_true", help="list the generations (the default without --keep)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_backups)

    p = command("export", "write every value in PLAIN TEXT to FILE (asks for the master password again)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", choices=FORMATS, default="json", help="json (default), csv or env")
    p.add_argument("--prefix", metavar="P", help="only the secrets under folder P, named relative to it")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.set_defaults(handler=cmd_export)


def _kdf_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kdf-memory", type=int, metavar="MIB", help="Argon2id memory in MiB (default 64, minimum 8)")
    p.add_argument("--kdf-time", type=int, metavar="N", help="Argon2id passes (default 3, minimum 1)")
    p.add_argument("--kdf-parallelism", type=int, metavar="N", help="Argon2id lanes (default min(4, cores))")


def _backup_passphrase(confirm: bool) -> str:
    env = os.environ.get(BACKUP_PASSWORD_ENV)
    if env:
        return env
    if not io.interactive():
        raise UsageError(f"no backup passphrase: set {BACKUP_PASSWORD_ENV} or run in a terminal")
    passphrase = io.prompt_secret("Backup passphrase", confirm=confirm)
    if not passphrase:
        raise UsageError("the backup passphrase must not be empty")
    return passphrase


def _refuse_existing_file(path: Path, force: bool) -> None:
    from ..core.errors import InvalidInput

    if path.exists() and not force:
        raise InvalidInput(f"{path} already exists (--force replaces it)")


def cmd_backup(args: argparse.Namespace) -> int:
    from ..services.backup import backup_vault, count_of, passphrase_warning
    from .commands import kdf_from_args, unlock_vault

    target = Path(args.file).expanduser()
    _refuse_existing_file(target, args.force)  # before any password is asked for
    kdf = kdf_from_args(args)
    vault, password = unlock_vault(args)
    with vault:
        passphrase = _backup_passphrase(confirm=True)
        warning = passphrase_warning(passphrase, password)
        if warning:
            io.warn(warning)
        done = backup_vault(vault, target, passphrase, kdf=kdf, recovery=args.recovery_code, force=args.force)
    io.info(f"backed up {count_of(done.secrets)} to {done.path} (restore with 'its-vault restore-backup {done.path}')")
    if done.recovery_code:
        io.info("recovery code of this backup (shown once; store it apart from the backup):")
        print(done.recovery_code)
    return 0


def cmd_restore_backup(args: argparse.Namespace) -> int:
    from ..core.audit import Actor
    from ..core.vault.api import PasswordOpener, RecoveryOpener
    from ..services.backup import count_of, open_backup, refuse_existing, restore
    from .commands import STDIN, _path, kdf_from_args

    target = _path(args)
    refuse_existing(target, args.force)  # before any passphrase is asked for
    factor = getattr(args, "factor", None)
    if factor not in (None, "password", "recovery"):
        raise UsageError("a backup opens with its passphrase or its recovery code (--factor recovery)")
    kdf = kdf_from_args(args)
    opener = RecoveryOpener(io.recovery_code(STDIN)) if factor == "recovery" else \
        PasswordOpener(_backup_passphrase(confirm=False))
    backup = open_backup(args.file, (opener,))
    password = io.master_password(STDIN, getattr(args, "password_stdin", False), confirm=True)
    io.warn_if_weak(password)
    done = restore(backup, target, password, kdf=kdf, force=args.force, actor=Actor.current("cli"))
    io.info(f"restored {count_of(done.secrets)} from {backup.described} to {done.path}")
    if done.replaced is not None:
        io.info(f"the vault that was there is kept as {done.replaced} (with its audit log)")
    io.info("recovery code (shown once; store it offline: it opens the vault without the password):")
    print(done.recovery_code)
    return 0


def cmd_backups(args: argparse.Namespace) -> int:
    from ..core.vault import backups
    from .commands import _path, kdf_from_args, open_vault

    path = _path(args)
    if args.keep is not None:
        if not 0 <= args.keep <= backups.MAX_KEEP:
            raise UsageError(f"--keep takes 0 to {backups.MAX_KEEP}")
        with open_vault(args) as vault:
            vault.change_settings(lambda s: backups.set_keep(s, args.keep), op="settings",
                                  detail=f"rolling backups: keep {args.keep}")
        folder = backups.folder_of(path)
        io.info(f"keeping the last {args.keep} generations in {folder}" if args.keep
                else "rolling backups are off (the generations kept so far are removed)")
        if not args.list:
            return 0
    rows = [{"generation": g.number, "saved": g.saved.isoformat(timespec="seconds"), "bytes": g.size,
             "path": str(g.path)} for g in backups.generations(path)]
    if args.json:
        io.print_json(rows)
        return 0
    if not rows:
        io.info(f"no rolling generations in {backups.folder_of(path)}")
    for r in rows:
        print(f"{r['generation']:>8}  {r['saved']}  {r['bytes']:>10}  {r['path']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..core.errors import WrongCredentials
    from ..services.backup import count_of, export_plaintext, normalise_prefix, reauthenticate
    from .commands import _prompter, unlock_vault

    target = Path(args.file).expanduser()
    _refuse_existing_file(target, args.force)
    normalise_prefix(args.prefix)  # a malformed prefix before any password
    if not io.interactive() and not os.environ.get(REAUTH_PASSWORD_ENV):
        raise UsageError(f"export asks for the master password again: run it in a terminal, or set "
                         f"{REAUTH_PASSWORD_ENV} in a script")
    io.warn(f"{target} will hold every value in PLAIN TEXT: anyone who can read it has your secrets; "
            "delete it as soon as you are done")
    vault, _ = unlock_vault(args)
    with vault:
        password = _reauth_password()
        openers: list = []
        if not any(s.kind == "password" for s in vault.slots):  # password + key: touch it again
            from ..factors.hardware import openers_for

            openers = openers_for(vault.slots, password, _prompter())
        if not reauthenticate(vault, password, openers):
            raise WrongCredentials("re-authentication failed: that is not the vault's master password")
        done = export_plaintext(vault, target, args.format, args.prefix, force=args.force)
    io.info(f"exported {count_of(done.secrets)} as {done.format} to {done.path} (mode 0600): delete it when done")
    return 0


def _reauth_password() -> str:
    """Asked again at the terminal whatever unlocked the vault; a script without a terminal
    sets ``ITS_REAUTH_PASSWORD`` on purpose."""
    if io.interactive():
        return io.prompt_secret("Master password again, to export in plain text")
    return os.environ[REAUTH_PASSWORD_ENV]  # checked before the vault was opened
