"""``its-vault stats``: what is in the vault, what needs rotating, unlocks and agent reads per
day, and the last sync of each remote.

```
its-vault stats [--days N] [--json]     # N local days, today included (default 30)
```

It unlocks the vault like every other command (its own unlock is counted, today). Only counts,
dates, types and remote names are printed: never a secret's name, value or a credential.
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import TYPE_CHECKING, Callable, Sequence

from . import io
from .io import UsageError

if TYPE_CHECKING:
    from ..services.stats import VaultStats

SPARKS = " ▁▂▃▄▅▆▇█"
SPARK_WIDTH = 60


def add_stats_commands(command: Callable[[str, str], argparse.ArgumentParser],
                       common: argparse.ArgumentParser) -> None:
    from ..services.stats import DEFAULT_DAYS

    p = command("stats", "counts by type and rotation status, unlocks and agent reads per day, last sync per remote")
    p.add_argument("--days", type=int, default=DEFAULT_DAYS, metavar="N",
                   help=f"how many local days of activity, today included (default {DEFAULT_DAYS})")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_stats)


def cmd_stats(args: argparse.Namespace) -> int:
    from ..services.stats import MAX_DAYS, vault_stats
    from .commands import open_vault

    days = args.days
    if not 1 <= days <= MAX_DAYS:  # before the password is asked for
        raise UsageError(f"--days must be between 1 and {MAX_DAYS}, not {days}")
    with open_vault(args) as vault:
        stats = vault_stats(vault, vault.clock(), days)
    if args.json:
        io.print_json(stats.to_json())
    else:
        print("\n".join(render(stats)))
    return 0


def render(stats: VaultStats) -> list[str]:
    """The text report: four short blocks, each a small aligned table."""
    lines = [f"Secrets: {stats.total}"]
    present = [(t.value, n) for t, n in stats.by_type.items() if n]
    width = max([len(name) for name, _ in present] + [4])
    lines += [f"  {name:<{width}}  {count:>6}" for name, count in present]

    s = stats.schedule
    lines += ["", f"Schedule: {s.scheduled} with a rotation policy or an expiry",
              *(f"  {label:<18}  {count:>6}" for label, count in (
                  ("ok", s.ok), ("due soon", s.due_soon), ("overdue", s.overdue), ("expired", s.expired),
                  ("rotate now", s.rotate_requested), ("rotation half-done", s.rotation_pending)))]

    total = stats.totals()
    first, last = stats.activity[0].day, stats.activity[-1].day
    lines += ["", f"Activity: last {stats.days} day{'s' if stats.days != 1 else ''} "
                  f"({first.isoformat()} to {last.isoformat()}, local time)",
              f"  unlocks      {total.unlocks_ok:>6} ok  {total.unlocks_failed:>6} failed  "
              f"{sparkline([d.unlocks for d in stats.activity])}",
              f"  agent reads  {total.agent_reads_granted:>6} ok  {total.agent_reads_denied:>6} denied  "
              f"{sparkline([d.agent_reads for d in stats.activity])}"]
    busy = [d for d in stats.activity if d.unlocks or d.agent_reads]
    if busy and stats.days <= 31:
        lines += [f"    {_day(d.day)}  unlocks {d.unlocks_ok:>4} ok {d.unlocks_failed:>4} failed  "
                  f"agent reads {d.agent_reads_granted:>5} ok {d.agent_reads_denied:>4} denied" for d in busy]

    lines += ["", f"Remotes: {len(stats.remotes)}"]
    if stats.remotes:
        width = max(len(r.name) for r in stats.remotes)
        for r in stats.remotes:
            when = r.last_sync.astimezone().strftime("%Y-%m-%d %H:%M") if r.last_sync else "never"
            lines.append(f"  {r.name:<{width}}  {r.type:<9}  last sync {when}  ({r.tracked} synced)")
    return lines


def sparkline(values: Sequence[int], width: int = SPARK_WIDTH) -> str:
    """One character per day (per run of days past ``width`` days, so a long window still
    fits a line), scaled to the busiest one; a space: none at all."""
    if len(values) > width:
        step = -(-len(values) // width)
        values = [sum(values[i:i + step]) for i in range(0, len(values), step)]
    top = max(values, default=0)
    if top == 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[0] if v == 0 else SPARKS[max(1, round(v / top * (len(SPARKS) - 1)))] for v in values)


def _day(day: date) -> str:
    return day.strftime("%a %Y-%m-%d")


def main(argv: Sequence[str] | None = None) -> int:
    """``cli.main.main`` with ``stats`` registered if ``build_parser`` does not do it yet (for
    tests, until the lead registers the command)."""
    from . import main as cli_main

    build = cli_main.build_parser

    def build_with_stats() -> argparse.ArgumentParser:
        parser = build()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "stats" not in sub.choices:
            common = cli_main._common()

            def command(name: str, help: str) -> argparse.ArgumentParser:
                return sub.add_parser(name, parents=[common], help=help, description=help)

            add_stats_commands(command, common)
        return parser

    cli_main.build_parser = build_with_stats
    try:
        return cli_main.main(argv)
    finally:
        cli_main.build_parser = build
