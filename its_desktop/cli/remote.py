"""``its-vault remote`` and ``its-vault sync``: the secret stores a vault folder syncs with.

```
its-vault remote add NAME --type openbao --folder PREFIX --url URL --mount MOUNT --prefix P
                          (--token-secret SECRET | --approle-secret SECRET)
its-vault remote add NAME --type aws --folder PREFIX --region R [--endpoint-url URL] --prefix P
                          [--credentials-secret SECRET]
its-vault remote list [--json] | its-vault remote rm NAME
its-vault sync [NAME] --plan [--json]        # prints the plan, changes nothing
its-vault sync [NAME]                        # applies; exit 7 when conflicts remain
its-vault sync [NAME] --resolve SECRET=local|remote|both
```

Credentials are named, never given: ``--token-secret`` names a vault secret whose field
``token`` (or value) is the token, ``--approle-secret`` one with ``role_id`` and ``secret_id``,
``--credentials-secret`` one with ``access_key_id`` and ``secret_access_key`` (without it, the
standard AWS chain is used). Errors propagate to ``cli.main``: a backend failure is exit 1,
an unknown remote exit 4; only "conflicts remain" (exit 7) is decided here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable

from . import io
from .io import UsageError

EXIT_CONFLICTS = 7
_CHOICES = ("local", "remote", "both")


def add_sync_commands(command: Callable[[str, str], argparse.ArgumentParser],
                      common: argparse.ArgumentParser) -> None:
    """The ``remote`` and ``sync`` commands, made with ``cli.main``'s ``command`` helper."""
    parser = command("remote", "add, list and remove the secret stores a vault folder syncs with")
    actions = parser.add_subparsers(dest="remote_command", metavar="ACTION", required=True,
                                    parser_class=type(parser))
    add = actions.add_parser("add", parents=[common], help="sync a vault folder with an OpenBao/Vault or AWS store")
    add.add_argument("name", metavar="NAME", help="a name for the remote (letters, digits, '.', '_', '-')")
    add.add_argument("--type", required=True, choices=("openbao", "vault", "aws"),
                     help="openbao (or vault: HashiCorp Vault, the same KV v2 API) or aws (Secrets Manager)")
    add.add_argument("--folder", required=True, metavar="PREFIX", help="the vault folder to sync, e.g. brokers/")
    add.add_argument("--prefix", required=True, metavar="P", help="where it lives on the remote (a path or name prefix)")
    add.add_argument("--url", metavar="URL", help="openbao: the server, e.g. https://bao.example:8200")
    add.add_argument("--mount", metavar="MOUNT", help="openbao: the KV version 2 engine's mount, e.g. secret")
    add.add_argument("--region", metavar="R", help="aws: the region, e.g. us-east-1")
    add.add_argument("--endpoint-url", metavar="URL", help="aws: another endpoint (a VPC endpoint, a test server)")
    creds = add.add_mutually_exclusive_group()
    creds.add_argument("--token-secret", metavar="SECRET", help="openbao: vault secret holding the token (field 'token')")
    creds.add_argument("--approle-secret", metavar="SECRET",
                       help="openbao: vault secret with fields 'role_id' and 'secret_id' (AppRole login)")
    creds.add_argument("--credentials-secret", metavar="SECRET",
                       help="aws: vault secret with fields 'access_key_id' and 'secret_access_key' "
                            "(default: the standard AWS credential chain)")
    listing = actions.add_parser("list", parents=[common], help="list the remotes (never a credential)")
    listing.add_argument("--json", action="store_true")
    rm = actions.add_parser("rm", parents=[common], help="forget a remote (deletes nothing on either side)")
    rm.add_argument("name", metavar="NAME")
    parser.set_defaults(handler=cmd_remote)

    sync = command("sync", "sync vault folders with their remotes: plan, apply, settle conflicts")
    sync.add_argument("name", nargs="?", metavar="NAME", help="one remote (default: every remote)")
    sync.add_argument("--plan", action="store_true", help="print what would be done and change nothing")
    sync.add_argument("--resolve", action="append", default=[], metavar="SECRET=local|remote|both",
                      help="settle a conflict: keep the local version, take the remote one, or keep both "
                           "(the remote one is pulled beside it as SECRET.remote-TIME)")
    sync.add_argument("--json", action="store_true", help="with --plan: the plan as JSON lines")
    sync.set_defaults(handler=cmd_sync)


# -- remote ------------------------------------------------------------------------------------


def cmd_remote(args: argparse.Namespace) -> int:
    return {"add": _add, "list": _list, "rm": _rm}[args.remote_command](args)


def _add(args: argparse.Namespace) -> int:
    from ..core.errors import InvalidInput
    from ..core.secrets import validate_name
    from ..sync.remotes import add_remote, make_remote
    from .commands import open_vault

    remote = None
    try:
        if args.type in ("openbao", "vault"):
            _refuse(args, ("region", "endpoint_url", "credentials_secret"), "openbao")
            if not args.url or not args.mount:
                raise UsageError("an openbao remote needs --url and --mount")
            if not (args.token_secret or args.approle_secret):
                raise UsageError("an openbao remote needs --token-secret or --approle-secret")
            auth, secret = ("approle", args.approle_secret) if args.approle_secret else ("token", args.token_secret)
            options = {"url": args.url, "mount": args.mount}
        else:
            _refuse(args, ("url", "mount", "token_secret", "approle_secret"), "aws")
            if not args.region:
                raise UsageError("an aws remote needs --region")
            auth, secret = ("aws-keys", args.credentials_secret) if args.credentials_secret else ("aws-chain", None)
            options = {"region": args.region, "endpoint_url": args.endpoint_url or ""}
        if secret is not None:
            validate_name(secret)
        remote = make_remote(args.name, args.type, args.folder, args.prefix, options, auth, secret)
    except InvalidInput as exc:  # all of it is checked before the vault is unlocked
        raise UsageError(str(exc)) from None
    with open_vault(args) as vault:
        add_remote(vault, remote)
    io.info(f"added remote {remote.name}: {remote.describe()}")
    return 0


def _refuse(args: argparse.Namespace, options: tuple[str, ...], kind: str) -> None:
    for option in options:
        if getattr(args, option):
            raise UsageError(f"--{option.replace('_', '-')} is not an option of {kind} remotes")


def _list(args: argparse.Namespace) -> int:
    from ..sync.remotes import list_remotes
    from .commands import open_vault

    with open_vault(args) as vault:
        remotes = list_remotes(vault)
    if args.json:
        for remote in remotes:
            raw = remote.to_json()
            raw.pop("token_salt", None)
            print(json.dumps({"name": remote.name, **raw}, sort_keys=True))
        return 0
    width = max((len(r.name) for r in remotes), default=0)
    for remote in remotes:
        print(f"{remote.name:<{width}}  {remote.type:<7}  {remote.describe()}")
    return 0


def _rm(args: argparse.Namespace) -> int:
    from ..sync.remotes import remove_remote
    from .commands import open_vault

    with open_vault(args) as vault:
        remove_remote(vault, args.name)
    io.info(f"removed remote {args.name} (nothing was deleted on either side)")
    return 0


# -- sync --------------------------------------------------------------------------------------


def _resolutions(items: list[str]) -> dict:
    from ..core.secrets import validate_name
    from ..sync.engine import Choice

    result = {}
    for item in items:
        name, sep, choice = item.rpartition("=")
        if not sep or not name or choice not in _CHOICES:
            raise UsageError(f"--resolve expects SECRET=local|remote|both, got '{item}'")
        validate_name(name)
        result[name] = Choice(choice)
    return result


def cmd_sync(args: argparse.Namespace) -> int:
    from ..core.errors import BackendError, InvalidInput
    from ..sync.remotes import get_remote, list_remotes
    from ..sync.syncer import Syncer
    from .commands import open_vault

    if args.json and not args.plan:
        raise UsageError("--json goes with --plan")
    try:
        resolutions = _resolutions(args.resolve)
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None
    settled: set[str] = set()
    conflicts = 0
    failures: list[BackendError] = []
    with open_vault(args) as vault:
        remotes = [get_remote(vault, args.name)] if args.name else list_remotes(vault)
        if not remotes:
            raise InvalidInput("no remotes yet: add one with 'its-vault remote add'")
        for remote in remotes:
            progress = _TerminalProgress(remote.name) if sys.stderr.isatty() else None
            try:
                with Syncer(vault, remote) as syncer:
                    if args.plan:
                        plan = syncer.plan(resolutions, progress)
                        settled.update(item.name for item in plan.items if item.resolved is not None)
                        conflicts += len(plan.conflicts)
                        _print_plan(remote.name, plan, args.json)
                    else:
                        result = syncer.apply(None, resolutions, progress)
                        settled.update(result.resolved)
                        conflicts += len(result.conflicts)
                        _print_result(result)
            except BackendError as exc:
                failures.append(exc)
                if len(remotes) == 1:
                    raise
                print(f"{remote.name}: failed: {exc}")
            finally:
                if progress:
                    progress.done()
    for name in sorted(resolutions.keys() - settled):
        io.info(f"--resolve {name}: not in conflict, nothing to settle")
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise BackendError(f"{failures[0]}{more}")
    if conflicts and not args.plan:
        remain = "1 conflict remains" if conflicts == 1 else f"{conflicts} conflicts remain"
        print(f"its-vault: error: {remain}: settle each with --resolve SECRET=local|remote|both", file=sys.stderr)
        return EXIT_CONFLICTS
    return 0


def _when(moment) -> str:
    from datetime import timezone

    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "unknown time"


def _conflict_detail(item) -> str:
    from ..sync.engine import State

    def side(where: str, state, moment) -> str:
        verb = "deleted" if state is State.DELETED else "changed"
        return f"{verb} {where} {_when(moment)}"

    return f"{item.reason}: {side('here', item.local.state, item.local.time)}, " \
           f"{side('on the remote', item.remote.state, item.remote.time)}"


def _print_plan(remote: str, plan, as_json: bool) -> None:
    from ..sync.engine import Op

    if as_json:  # every secret, the unchanged ones too ("no-op"; "adopt"/"forget" only move the base)
        for item in plan.items:
            print(json.dumps({"remote": remote, "name": item.name, "action": item.op.value, "reason": item.reason,
                              "local": item.local.state.value, "remote_state": item.remote.state.value,
                              "local_time": _iso(item.local.time), "remote_time": _iso(item.remote.time)},
                             sort_keys=True))
        for name, why in plan.skipped:
            print(json.dumps({"remote": remote, "name": name, "action": "skip", "reason": why}, sort_keys=True))
        return
    print(f"{remote}: {plan.summary()}")
    for item in plan.items:
        if item.op in (Op.NOOP, Op.ADOPT, Op.FORGET):
            continue
        detail = _conflict_detail(item) if item.op is Op.CONFLICT else item.reason
        print(f"  {item.op.value:<14} {item.name}  ({detail})")
    for name, why in plan.skipped:
        print(f"  {'skip':<14} {name}  ({why})")


def _print_result(result) -> None:
    print(f"{result.remote}: {result.summary()}")
    for copy in result.copies:
        print(f"  {'kept both':<14} {copy}  (the remote version, beside the local one)")
    for item in result.conflicts:
        print(f"  {'conflict':<14} {item.name}  ({_conflict_detail(item)})")


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


class _TerminalProgress:
    """``remote: listing 120/1000`` on one rewritten line of stderr (a terminal only)."""

    def __init__(self, remote: str) -> None:
        self.remote = remote
        self._last = 0.0
        self._shown = False

    def __call__(self, progress) -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and progress.done < progress.total:
            return
        self._last = now
        sys.stderr.write(f"\r{self.remote}: {progress.phase} {progress.done}/{progress.total}\x1b[K")
        sys.stderr.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
