"""``its-vault``: argument parsing, dispatch, and the mapping of errors to exit codes.

Imports are lazy: ``its-vault get`` loads the vault core and nothing else (no Qt, no SDKs).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence

from ..factors.registry import KINDS

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CREDENTIALS = 3
EXIT_NOT_FOUND = 4
EXIT_CORRUPTED = 5
EXIT_BUSY = 6


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        print(f"its-vault: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _common() -> argparse.ArgumentParser:
    """Options accepted both before and after the subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--vault", metavar="PATH", default=argparse.SUPPRESS,
                        help="vault file (default: $ITS_VAULT_PATH or the per-user data folder)")
    common.add_argument("--password-stdin", action="store_true", default=argparse.SUPPRESS,
                        help="read the master password from the first line of standard input")
    common.add_argument("--factor", choices=KINDS, default=argparse.SUPPRESS,
                        help="unlock with this factor (default: a plugged-in enrolled key, else the password)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(prog="its-vault", parents=[common],
                     description="The ITS Desktop vault from the command line.")
    parser.add_argument("--version", action="store_true", dest="show_version", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help, description=help)

    p = command("init", "create a new vault")
    p.add_argument("--kdf-memory", type=int, metavar="MIB", help="Argon2id memory in MiB (default 64, minimum 8)")
    p.add_argument("--kdf-time", type=int, metavar="N", help="Argon2id passes (default 3, minimum 1)")
    p.add_argument("--kdf-parallelism", type=int, metavar="N", help="Argon2id lanes (default min(4, cores))")

    p = command("set", "create or update a secret")
    p.add_argument("name")
    p.add_argument("--type", metavar="T", help="api_key, password, database, certificate, ssh_key, totp, note, generic")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--value-stdin", action="store_true", help="read the value from standard input")
    source.add_argument("--generate", action="store_true", help="generate a random value")
    p.add_argument("--length", type=int, metavar="N", help="length of generated and rotated values (default 32)")
    p.add_argument("--alphabet", metavar="A", help="characters of generated and rotated values: password (default), "
                                                  "alnum, hex, digits, base64url")
    p.add_argument("--field", action="append", default=[], metavar="K=V", help="a named field (not secret: argv is visible)")
    p.add_argument("--tag", action="append", default=[], metavar="K=V", help="a tag")
    p.add_argument("--description", metavar="TEXT")
    p.add_argument("--expires", metavar="YYYY-MM-DD", help="expiry date (UTC)")
    p.add_argument("--rotate-every", type=int, metavar="DAYS", help="rotation policy in days")
    p.add_argument("--rotator", metavar="R", help="how it is rotated: generated, postgresql, openbao, aws, manual")

    p = command("get", "print a secret's value")
    p.add_argument("name")
    p.add_argument("--field", metavar="K", help="print this field instead of the value")

    p = command("list", "list names and metadata (never values)")
    p.add_argument("--json", action="store_true")

    p = command("rm", "delete a secret")
    p.add_argument("name")

    p = command("history", "list a secret's versions (never values)")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")

    p = command("restore", "make an earlier version current again")
    p.add_argument("name")
    p.add_argument("--version", type=int, required=True, metavar="N")

    p = command("import-env", "import a .env file (KEY=VALUE lines)")
    p.add_argument("file")
    p.add_argument("--prefix", metavar="P", help="folder to put the secrets in, e.g. bots/alpha")

    command("passwd", "change the master password")

    p = command("audit", "show or verify the audit log")
    p.add_argument("action", nargs="?", choices=("verify",))
    p.add_argument("--json", action="store_true")

    p = command("factor", "enrol, list and remove unlock factors (YubiKey, FIDO2 key, TPM + PIN, recovery code)")
    factor = p.add_subparsers(dest="factor_command", metavar="ACTION", required=True, parser_class=_Parser)
    add = factor.add_parser("add", parents=[common], help="enrol a factor")
    add.add_argument("type", choices=[k for k in KINDS if k != "password"])
    add.add_argument("--slot", type=int, choices=(1, 2), default=2, help="YubiKey OTP slot (default 2)")
    add.add_argument("--name", metavar="N", help="a name to tell this factor apart")
    add.add_argument("--pcrs", metavar="LIST", help="TPM: PCRs the slot is bound to, e.g. 7 or 0,7, or 'none' "
                     "(default 7, the Secure Boot state); the PIN comes from ITS_TPM_PIN or a prompt")
    lst = factor.add_parser("list", parents=[common], help="list the factors")
    lst.add_argument("--json", action="store_true")
    rm = factor.add_parser("rm", parents=[common], help="remove a factor (never the last way in)")
    rm.add_argument("id")

    p = command("calibrate", "suggest Argon2id parameters for this machine")
    p.add_argument("--target", type=float, default=1.0, metavar="SECONDS")

    from .totp import add_totp_commands

    add_totp_commands(command("totp", "one-time-code accounts: add one, print its code, export its QR code"), common)
    from .remote import add_sync_commands

    add_sync_commands(command, common)  # remote, sync
    from .agent import add_agent_commands

    add_agent_commands(command, common)  # agent, grant, lock, run
    from .keys import add_key_commands

    add_key_commands(command, common)  # rekey
    from .rotation import add_rotation_commands

    add_rotation_commands(command, common)  # rotate, schedule
    from .imports import add_import_commands

    add_import_commands(command, common)  # import (import-env above is its first spelling)
    from .selftest import add_selftest_command

    add_selftest_command(command, common)  # self-test
    from .backup import add_backup_commands

    add_backup_commands(command, common)  # backup, restore-backup, backups, export
    from .stats import add_stats_commands

    add_stats_commands(command, common)  # stats
    from .scan import add_scan_commands

    add_scan_commands(command, common)  # scan
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.show_version:
        from .. import __version__

        print(f"its-vault {__version__}")
        return EXIT_OK
    if not args.command:
        return _fail("a command is required (see 'its-vault --help')", EXIT_USAGE)
    return run(args)


def run(args: argparse.Namespace) -> int:
    from ..core import errors
    from . import commands
    from .io import UsageError

    # A command group in a module of its own (totp) names its handler; the rest live in commands.
    handler = getattr(args, "handler", None) or getattr(commands, "cmd_" + args.command.replace("-", "_"))
    try:
        return handler(args) or EXIT_OK
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except errors.WrongCredentials as exc:
        return _fail(str(exc), EXIT_CREDENTIALS)
    except (errors.SecretNotFound, errors.VaultNotFound) as exc:
        return _fail(str(exc), EXIT_NOT_FOUND)
    except errors.VaultCorrupted as exc:
        return _fail(str(exc), EXIT_CORRUPTED)
    except errors.ConcurrencyError as exc:
        return _fail(str(exc), EXIT_BUSY)
    except errors.VaultError as exc:
        return _fail(str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return EXIT_ERROR
    except OSError as exc:
        return _fail(f"{exc.strerror or 'I/O error'}: {exc.filename or ''}".rstrip(": "), EXIT_ERROR)
    except Exception:  # the one place an unexpected error is caught: log it, say one line
        where = _log_traceback()
        return _fail(f"unexpected internal error (details in {where})", EXIT_ERROR)


def _fail(message: str, code: int) -> int:
    print(f"its-vault: error: {message}", file=sys.stderr)
    return code


def _log_traceback() -> str:
    """The traceback goes to a private log file, never to the terminal."""
    import os
    import traceback
    from pathlib import Path

    from platformdirs import user_log_dir

    folder = Path(user_log_dir("its-desktop", appauthor=False))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    log = folder / "its-vault.log"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write(traceback.format_exc())
    return str(log)


def entry() -> NoReturn:
    """The console script: run, flush, and leave without the interpreter's ~15 ms teardown
    (every file is closed and every vault locked by then)."""
    import os

    harden()
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or EXIT_ERROR
    os._exit(code)


def harden() -> None:
    """For a process that is the CLI (not a test calling ``main``): no core files. It stays
    dumpable: a running agent identifies its clients through /proc."""
    from ..core.memory import harden_process

    harden_process(dumpable=True)


if __name__ == "__main__":
    harden()
    sys.exit(main())
