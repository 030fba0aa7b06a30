"""``its-vault rotate`` and ``its-vault schedule``: rotate now, rotate what is due, show the plan.

```
its-vault rotate NAME [--rotator R] [--value-stdin] [--yes] [--abandon]
its-vault rotate --due                  # every automatic rotation that is due (cron, systemd timers)
its-vault schedule [--json]             # name, rotator, last rotated, due date, status
```

``rotate NAME`` exits 0 only once the new value is verified and committed; a failed step is
exit 1 with the step named, and the vault keeps a working value (resume by running it again).
``rotate --due`` rotates every due secret whose rotator runs unattended, lists the ones that
need a person on stderr, and exits 1 if any automatic rotation failed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable

from . import io
from .io import UsageError


def add_rotation_commands(command: Callable[[str, str], argparse.ArgumentParser],
                          common: argparse.ArgumentParser) -> None:
    from ..rotators.registry import names

    p = command("rotate", "rotate a secret now (create, set, test, finish), or every due one")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--rotator", choices=names(), help="rotate with this rotator instead of the secret's own")
    p.add_argument("--due", action="store_true", help="rotate every due secret whose rotator runs unattended")
    p.add_argument("--value-stdin", action="store_true", help="manual: read the new value from standard input")
    p.add_argument("--yes", action="store_true", help="manual: the new value is confirmed to work")
    p.add_argument("--abandon", action="store_true", help="drop a rotation left half-done (its new value is lost)")
    p.set_defaults(handler=cmd_rotate)

    p = command("schedule", "the rotation schedule: name, rotator, last rotated, due date, status")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_schedule)


@dataclass
class TerminalInteraction:
    """A manual rotation at the terminal: guidance on stderr, the value from stdin or a
    prompt (never argv), the confirmation from --yes or a question."""

    value_stdin: bool
    yes: bool

    def guide(self, name: str, text: str) -> None:
        io.info(text)

    def new_value(self, name: str) -> str | None:
        from .commands import STDIN

        if self.value_stdin:
            return STDIN.rest() or None
        if io.interactive():
            return io.prompt_secret(f"New value of {name}", confirm=True) or None
        return None

    def confirm(self, question: str) -> bool:
        if self.yes:
            return True
        if not io.interactive():
            return False
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def cmd_rotate(args: argparse.Namespace) -> int:
    from ..rotators import engine
    from .commands import open_vault

    if args.due == bool(args.name):
        raise UsageError("give a secret NAME or --due")
    if args.due:
        return _rotate_due(args)
    with open_vault(args) as vault:
        if args.abandon:
            engine.abandon(vault, args.name)
            io.warn(f"the half-done rotation of {args.name} was dropped; its current value is unchanged")
            return 0
        done = engine.rotate(vault, args.name, args.rotator, TerminalInteraction(args.value_stdin, args.yes),
                             observer=_say_step)
    io.info(f"rotated {done.name} with {done.rotator}: version {done.version} verified and committed"
            + (" (resumed)" if done.resumed else ""))
    return 0


def _say_step(name: str, step: str) -> None:
    if sys.stderr.isatty():
        io.info(f"  {step}…")


def _rotate_due(args: argparse.Namespace) -> int:
    from ..rotators.due import rotate_due
    from .commands import open_vault

    with open_vault(args) as vault:
        report = rotate_due(vault)
    for done in report.rotated:
        io.info(f"rotated {done.name} with {done.rotator} (version {done.version})")
    for name, reason in report.failed:
        io.warn(reason if name in reason else f"{name}: {reason}")
    for name in report.manual:
        io.warn(f"{name} is due and needs a person: its-vault rotate {name}")
    if not (report.rotated or report.failed or report.manual):
        io.info("nothing is due")
    return 0 if report.ok else 1


def schedule_rows(vault) -> list[dict]:
    """What ``schedule --json`` prints (names and dates only, never a value)."""
    from ..core.schedule import build_schedule
    from ..rotators.registry import rotator_name

    rows = []
    summaries = {s.name: s for s in vault.summaries()}
    for entry in build_schedule(summaries.values(), vault.clock()):
        summary = summaries[entry.name]
        rows.append({
            "name": entry.name, "type": entry.type.value, "rotator": rotator_name(summary),
            "last_rotated": _iso(entry.last_rotated), "due_date": _iso(entry.due),
            "status": entry.status.value, "days_left": entry.days_left,
            "expires_at": _iso(entry.expires_at), "rotate_requested": summary.rotate_requested is not None,
            "rotation_pending": summary.pending_since is not None,
        })
    return rows


def cmd_schedule(args: argparse.Namespace) -> int:
    from .commands import open_vault

    with open_vault(args) as vault:
        rows = schedule_rows(vault)
    if args.json:
        io.print_json(rows)
        return 0
    width = max([len(r["name"]) for r in rows] + [4])
    print(f"{'NAME':<{width}}  {'ROTATOR':<10}  {'LAST ROTATED':<12}  {'DUE':<10}  STATUS")
    for r in rows:
        flags = " (rotate now)" if r["rotate_requested"] else ""
        flags += " (rotation half-done)" if r["rotation_pending"] else ""
        print(f"{r['name']:<{width}}  {r['rotator']:<10}  {(r['last_rotated'] or 'never')[:10]:<12}  "
              f"{r['due_date'][:10]:<10}  {r['status']}{flags}")
    return 0


def _iso(moment) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")
