"""``its-vault import``: secrets from a .env file, KeePassXC, Bitwarden, 1Password or a CSV.

```
its-vault import env|kdbx|bitwarden|1password|csv FILE [--prefix P] [--map SPEC]
          [--duplicates skip|merge] [--accept-partial] [--dry-run]
```

The file is read and checked before the vault is unlocked. A file with problems imports
nothing: each problem is one line on stderr (``line 7: missing value``), then the error line,
exit 1; ``--accept-partial`` imports the valid part. ``--dry-run`` prints the preview on
stdout (names, types, what would be created, merged or skipped, the problems; never a value)
and changes nothing. The KDBX password comes from ``ITS_IMPORT_PASSWORD`` or a prompt, never
argv; a wrong one is exit 3. A missing file is exit 4. docs/import.md has the details.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from . import io
from .io import UsageError

if TYPE_CHECKING:
    from ..importers.apply import ImportPlan
    from ..importers.base import Preview
    from ..importers.csvmap import ColumnMap


def add_import_commands(command: Callable[[str, str], argparse.ArgumentParser],
                        common: argparse.ArgumentParser) -> None:
    from ..importers import KINDS  # the registry only: no parser is loaded

    p = command("import", "import secrets from a .env file, KeePassXC (KDBX), Bitwarden (JSON), "
                          "1Password (CSV) or any CSV file, all or nothing")
    p.add_argument("kind", choices=KINDS, metavar="{" + ",".join(KINDS) + "}", help="what the file is")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--prefix", metavar="P", help="folder to put the secrets in, e.g. imported/keepass")
    p.add_argument("--map", metavar="SPEC", type=_mapping,
                   help="csv: which column holds what, e.g. name=Title,value=Password,folder=Group,"
                        "field:account=Acct,tag:env=Env (default: guessed from the header)")
    p.add_argument("--duplicates", choices=("skip", "merge"), default="skip",
                   help="a name already in the vault or twice in the file: keep what the vault has (skip, the "
                        "default) or take the imported value as a new version, old one in history (merge)")
    p.add_argument("--accept-partial", action="store_true",
                   help="import the valid part of a file with problems (else nothing is imported)")
    p.add_argument("--dry-run", action="store_true", help="print what would be imported and change nothing")
    p.set_defaults(handler=cmd_import)


def _mapping(text: str) -> ColumnMap:
    from ..core.errors import InvalidInput
    from ..importers.csvmap import parse_mapping

    try:
        return parse_mapping(text)
    except InvalidInput as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--map: ")) from None


def cmd_import(args: argparse.Namespace) -> int:
    from ..importers import read_source
    from ..importers.apply import Action, Duplicates, apply_import, preview_plan
    from ..importers.base import ImportRefused
    from .commands import open_vault

    if args.map is not None and args.kind != "csv":
        raise UsageError("--map goes with 'import csv'")
    preview = read_source(args.kind, Path(args.file), prefix=args.prefix, password=import_password,
                          mapping=args.map)
    duplicates = Duplicates(args.duplicates)
    if not args.dry_run and preview.issues and (not args.accept_partial or not preview.secrets):
        for issue in preview.issues:
            print(issue, file=sys.stderr)
        raise ImportRefused(preview.source, len(preview.issues), len(preview.secrets))
    with open_vault(args) as vault:
        if args.dry_run:
            print_preview(preview, preview_plan(vault, preview, duplicates), args.accept_partial)
            return 0
        plan = apply_import(vault, preview, duplicates, accept_partial=args.accept_partial)
    for issue in preview.issues:
        io.warn(f"left out: {issue}")
    for note in preview.notes:
        io.info(f"note: {note}")
    for item in plan.items:
        if item.action is Action.SKIP:
            io.info(f"skipped {item.name} ({item.why})")
    io.info(f"imported {preview.kind} {preview.source}: {plan.summary()}")
    return 0


def print_preview(preview: Preview, plan: ImportPlan, accept_partial: bool) -> None:
    """The dry run: one line per secret, problem and note, then the verdict."""
    for item in plan.items:
        why = f"  ({item.why})" if item.why else ""
        print(f"{item.action.value:<9}  {item.type.value:<11}  {item.name}{why}")
    for issue in preview.issues:
        print(f"{'problem':<9}  {issue}")
    for note in preview.notes:
        print(f"{'note':<9}  {note}")
    verdict = plan.summary(done=False)
    if preview.issues:
        count = len(preview.issues)
        verdict += (f"; {count} problem{'s' if count != 1 else ''}: "
                    + ("the valid part would be imported" if accept_partial and preview.secrets
                       else "nothing would be imported (--accept-partial imports the valid part)"))
    print(f"{preview.kind} {preview.source}: {verdict}")


def import_password() -> str:
    """The KDBX password: the environment (scripts), else a prompt; never argv."""
    from ..importers import PASSWORD_ENV

    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    if not io.interactive():
        raise UsageError(f"no password for the KeePass file: set {PASSWORD_ENV} or run in a terminal")
    return io.prompt_secret("KeePass database password")
