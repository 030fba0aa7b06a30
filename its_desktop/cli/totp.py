"""``its-vault totp``: add an authenticator account, print its code, export its QR code.

```
its-vault totp add NAME (--uri-stdin | --qr IMAGE)
its-vault totp code NAME [--at UNIX_TIME]
its-vault totp qr NAME --out FILE.png
```

The otpauth:// URI holds the secret, so it comes from stdin or an image, never from argv.
Unlocking and the stdin it reads are the other commands' (``commands.unlock_vault`` and
``commands.STDIN``), so ``--password-stdin`` puts the password line first here too.
Errors propagate to ``cli.main``, which maps them to exit codes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import io
from .io import UsageError


def add_totp_commands(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """The ``totp`` subcommands, under the ``totp`` parser ``cli.main`` made."""
    actions = parser.add_subparsers(dest="totp_command", metavar="ACTION", required=True,
                                    parser_class=type(parser))
    add = actions.add_parser("add", parents=[common], help="add an account from an otpauth:// URI or a QR image")
    add.add_argument("name")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--uri-stdin", action="store_true",
                        help="read the otpauth:// URI from standard input (after the password line, if any)")
    source.add_argument("--qr", metavar="IMAGE", help="an image file with the account's QR code")
    code = actions.add_parser("code", parents=[common], help="print the current code (only the code)")
    code.add_argument("name")
    code.add_argument("--at", type=_unix_time, metavar="UNIX_TIME", help="the code at this time instead of now")
    qr = actions.add_parser("qr", parents=[common],
                            help="write the account's QR code to a PNG (asks for the master password again)")
    qr.add_argument("name")
    qr.add_argument("--out", required=True, metavar="FILE.png", help="where to write the PNG (made private, 0600)")
    parser.set_defaults(handler=cmd_totp)


def _unix_time(text: str) -> int:
    if not text.isdigit() or len(text) > 12:
        raise argparse.ArgumentTypeError(f"expected whole seconds since 1970, got '{text[:20]}'")
    return int(text)


def cmd_totp(args: argparse.Namespace) -> int:
    return {"add": _add, "code": _code, "qr": _qr}[args.totp_command](args)


def _add(args: argparse.Namespace) -> int:
    from ..core import totp
    from ..core.errors import InvalidInput
    from ..core.secrets import validate_name
    from .commands import open_vault, STDIN

    validate_name(args.name)
    account = None
    if args.qr:  # decoded before unlocking: a wrong image costs no key derivation
        from ..services import qr

        image = Path(args.qr)
        account = totp.parse_uri(qr.pick_one(qr.decode_file(image), "otpauth://", image.name))
    with open_vault(args) as vault:
        if account is None:
            account = totp.parse_uri(STDIN.rest())
        if args.name in vault.names():
            raise InvalidInput(f"a secret named '{args.name}' already exists (remove it first)")
        vault.set(args.name, account.secret, type="totp", fields=totp.account_to_fields(account))
    io.info(f"added {account.kind.value} account {args.name} ({account.label})")
    return 0


def _code(args: argparse.Namespace) -> int:
    import time

    from ..core import totp
    from .commands import open_vault

    with open_vault(args) as vault:
        account = totp.account_from_secret(vault.get(args.name))
        if args.at is not None and not account.time_based:
            raise UsageError(f"--at is for time-based codes; '{args.name}' is an HOTP counter")
        code = totp.issue_code(vault, args.name, account, time.time() if args.at is None else args.at)
    sys.stdout.write(code + "\n")
    return 0


def _qr(args: argparse.Namespace) -> int:
    """Re-authenticates with the master password whatever opened the vault (a key, the
    recovery code): a QR code moves the account to another device for good."""
    from ..core import totp
    from ..core.errors import InvalidInput, WrongCredentials
    from ..core.vault import slots as slotlib
    from ..services import qr
    from .commands import STDIN, unlock_vault

    vault, password = unlock_vault(args)
    with vault:
        if any(slot.kind == slotlib.PASSWORD for slot in vault.slots):
            if password is None:  # opened with the recovery code
                password = io.master_password(STDIN, getattr(args, "password_stdin", False))
            if not vault.check_password(password):
                raise WrongCredentials("re-authentication failed: that is not the vault's master password")
        elif password is None:
            # A vault that requires password + key: this process's unlock was the proof, unless
            # it used the recovery code.
            raise InvalidInput("re-authenticate with the password and your key (not the recovery code)")
        account = totp.account_from_secret(vault.get(args.name))
        out = qr.write_png(account.uri(), args.out)
        vault.record("export", args.name, detail="totp qr")
    io.info(f"wrote the QR code of {args.name} to {out}: it holds the secret, delete it once scanned")
    return 0
