"""``its-vault scan``: find vault values and well-known credentials in files.

```
its-vault scan ~/bots ~/notes             # one line per finding: path:line: secret NAME
its-vault scan . --json                   # findings and counts as JSON
its-vault scan ~/bots --fix               # replace each vault value found with its://NAME (asks first)
its-vault scan ~/bots --fix --yes         # without asking (scripts)
```

Values are never printed: a finding is a file, a line and a secret name or pattern kind. The
summary (files scanned, skipped, time, files per second) goes to stderr. Exit status: 0 when
nothing is found (or everything found was replaced), ``EXIT_FINDINGS`` (8) when findings
remain, and the usual codes of ``cli.main`` for errors. The scan is audited (``scan``, with
counts only), and so is ``--fix`` (``scan-fix``). Errors propagate to ``cli.main``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable

from . import io
from .io import UsageError

EXIT_FINDINGS = 8
_SIZE = re.compile(r"(\d+)\s*([kmg]?)i?b?", re.IGNORECASE)


def add_scan_commands(command: Callable[[str, str], argparse.ArgumentParser],
                      common: argparse.ArgumentParser) -> None:
    """The ``scan`` command, made with ``cli.main``'s ``command`` factory."""
    p = command("scan", "find vault values and well-known credentials (AWS keys, private keys…) in files; "
                        "never prints a value")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to scan")
    p.add_argument("--json", action="store_true", help="print the findings and counts as JSON")
    p.add_argument("--fix", action="store_true",
                   help="replace each vault value found with an its:// reference (asks first)")
    p.add_argument("--yes", action="store_true", help="with --fix: replace without asking")
    p.add_argument("--max-size", default="1M", metavar="SIZE",
                   help="skip files larger than this (default 1M; K, M, G suffixes)")
    p.add_argument("--no-gitignore", action="store_true", help="scan what .gitignore files ignore, too")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                   help="skip what this gitignore-style pattern matches (repeatable)")
    p.add_argument("--no-patterns", action="store_true", help="look for vault values only")
    p.add_argument("--jobs", type=int, metavar="N", help="search in N processes (default: one per CPU, up to 8)")
    p.set_defaults(handler=cmd_scan)


def parse_size(text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"--max-size expects a size like 512K or 2M, got '{text[:20]}'")
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[match.group(2).lower()]


def cmd_scan(args: argparse.Namespace) -> int:
    from ..scan.fix import fix_findings
    from ..scan.matcher import Matcher, secret_sources
    from ..scan.scanner import ScanOptions, default_workers, scan
    from ..scan.walker import WalkOptions
    from .commands import open_vault

    options = ScanOptions(WalkOptions(parse_size(args.max_size), not args.no_gitignore, tuple(args.exclude)),
                          patterns=not args.no_patterns)
    for path in args.paths:
        if not Path(path).exists() and not Path(path).is_symlink():
            raise UsageError(f"no such file or folder: {path}")
    if args.jobs is not None and not 1 <= args.jobs <= 64:
        raise UsageError("--jobs expects a number from 1 to 64")
    if args.yes and not args.fix:
        raise UsageError("--yes goes with --fix")
    if args.fix and not args.yes and not io.interactive():
        raise UsageError("--fix asks before it rewrites files, and there is no terminal to ask in: add --yes")
    fix_result = None
    with open_vault(args) as vault:
        matcher = Matcher(secret_sources(vault.secrets()))
        report = scan(args.paths, matcher, options, workers=args.jobs or default_workers())
        vault.record("scan", detail=report.audit_detail())
        _print_findings(report, args.json)
        secrets = report.secret_findings
        if args.fix and secrets and (args.yes or _confirm(secrets)):
            fix_result = fix_findings(secrets, matcher)
            vault.record("scan-fix", detail=f"{fix_result.replaced} values replaced in {fix_result.files} files")
        del matcher
    if args.json:
        doc = {"findings": [f.to_json() for f in report.findings], "stats": report.stats.to_json()}
        if fix_result is not None:
            doc["replaced"] = fix_result.replaced
        io.print_json(doc)
    io.info(report.stats.summary())
    remaining = len(report.findings)
    if fix_result is not None:
        io.info(fix_result.describe())
        spans = [(f.path, f.offset, f.offset + f.length) for f in fix_result.fixed]
        remaining = sum(1 for f in report.findings
                        if not f.is_secret or not any(f.path == p and a <= f.offset < b for p, a, b in spans))
        if fix_result.failed:
            io.warn("could not rewrite: " + ", ".join(fix_result.failed[:5]))
    if report.secret_findings:
        io.warn("vault values were found in plain files: rotate those secrets (the files may have been copied)")
        if fix_result is None:
            io.info("'its-vault scan PATH --fix' replaces them with its:// references")
    return EXIT_FINDINGS if remaining else 0


def _print_findings(report, as_json: bool) -> None:
    if as_json:
        return
    for finding in report.findings:
        print(finding.describe())
    sys.stdout.flush()


def _confirm(secrets: list) -> bool:
    files = len({f.path for f in secrets})
    sys.stderr.write(f"Replace {len(secrets)} vault value{'s' if len(secrets) != 1 else ''} in {files} "
                     f"file{'s' if files != 1 else ''} with its:// references? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")
