"""``its-vault agent | grant | lock | run``, and the way ``get`` and ``list`` use a running agent.

```
its-vault agent [--foreground]                 # unlocks, serves until locked or stopped (SIGTERM)
its-vault grant add --exe PATH [--script PATH] [--cwd DIR] --secret PATTERN [--ttl 8h|once|always]
its-vault grant list [--json] | its-vault grant rm ID
its-vault lock                                 # tells a running agent/GUI to lock now
its-vault run [--env VAR=its://NAME[#field]]... [--env-file FILE] [--files] -- COMMAND...
```

When an agent serves this vault unlocked, ``get``, ``list`` and ``run`` read through it instead
of deriving the key again; the app asks the user to approve the terminal once. A command given
the master password (``ITS_MASTER_PASSWORD``, ``--password-stdin``) never waits for an approval
nobody may be there to give: without a grant, it unlocks the vault itself. ``grant`` always
unlocks the vault itself: a program must not be able to grant itself access through the agent.
Errors propagate to ``cli.main``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

from . import io
from .io import UsageError

T = TypeVar("T")

# Never handed to a child of `run`: the child gets the secrets it asked for, not the vault.
_PRIVATE_ENV = ("ITS_MASTER_PASSWORD", "ITS_NEW_MASTER_PASSWORD", "ITS_RECOVERY_CODE", "ITS_FIDO2_PIN",
                "ITS_EMULATED_KEYS_PIN")


def add_agent_commands(command: Callable[[str, str], argparse.ArgumentParser],
                       common: argparse.ArgumentParser) -> None:
    """The ``agent``, ``grant``, ``lock`` and ``run`` commands, made with ``cli.main``'s
    ``command`` factory (so they take the common options too)."""
    p = command("agent", "serve secrets to local programs while unlocked (until 'its-vault lock' or SIGTERM)")
    p.add_argument("--foreground", action="store_true", help="stay attached to the terminal (default: detach)")
    p.set_defaults(handler=cmd_agent)

    p = command("grant", "allow programs to read secrets through the agent: add, list, remove")
    actions = p.add_subparsers(dest="grant_command", metavar="ACTION", required=True, parser_class=type(p))
    add = actions.add_parser("add", parents=[common], help="allow a program to read secrets matching a pattern")
    add.add_argument("--exe", required=True, metavar="PATH", help="the program (for a script: its interpreter)")
    add.add_argument("--script", metavar="PATH", help="the script an interpreter runs (pinned by its content)")
    add.add_argument("--cwd", metavar="DIR", help="only when the program runs in this folder")
    add.add_argument("--secret", required=True, metavar="PATTERN", help="a name, or a folder glob like brokers/ibkr/*")
    add.add_argument("--ttl", default="always", metavar="TTL",
                     help="always (default), once (its first run, until the vault locks), or 90s, 30m, 8h, 7d")
    lst = actions.add_parser("list", parents=[common], help="list the grants")
    lst.add_argument("--json", action="store_true")
    rm = actions.add_parser("rm", parents=[common], help="revoke a grant")
    rm.add_argument("id")
    p.set_defaults(handler=cmd_grant)

    p = command("lock", "tell a running agent or app to lock the vault now")
    p.set_defaults(handler=cmd_lock)
    p = command("lockdown", "emergency: revoke every agent grant, mark every secret rotate-now, lock, clear the clipboard")
    p.set_defaults(handler=cmd_lockdown)

    p = command("run", "run a command with secrets in its environment, masking them in its output")
    p.add_argument("--env", action="append", default=[], metavar="VAR=its://NAME[#field]",
                   help="set VAR to a secret's value (or field)")
    p.add_argument("--env-file", action="append", default=[], metavar="FILE",
                   help="a .env file whose values may be its:// references")
    p.add_argument("--files", action="store_true",
                   help="pass each secret as the path of a private file instead of its value")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND...")  # not "command": main's
    p.set_defaults(handler=cmd_run)


# -- reading through a running agent ------------------------------------------------------------


def password_given(args: argparse.Namespace) -> bool:
    return bool(os.environ.get(io.MASTER_PASSWORD_ENV)) or bool(getattr(args, "password_stdin", False))


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def agent_for(args: argparse.Namespace):
    """A client of the running agent when it serves this vault unlocked, else None. Not used
    when a factor is asked for (``--factor``): that asks for an unlock."""
    if getattr(args, "factor", None):
        return None
    from ..client import AgentClient, AgentError
    from .commands import _path

    client = AgentClient()
    try:
        status = client.status()
    except AgentError:
        client.close()
        return None
    if status.get("locked") or not status.get("vault") or not _same_file(status["vault"], _path(args)):
        client.close()
        return None
    return client


def via_agent(args: argparse.Namespace, ask: Callable[[object, bool], T]) -> T | None:
    """``ask(client, prompt)`` through the running agent; None when the command should unlock
    the vault itself: no agent for this vault, or no grant and a password to unlock with (or a
    terminal to type it in). ``prompt`` is False when a password was given."""
    from ..client import AccessDenied, AgentLocked, AgentTimeout, AgentUnavailable

    client = agent_for(args)
    if client is None:
        return None
    given = password_given(args)
    with client:
        try:
            return ask(client, not given)
        except (AgentUnavailable, AgentLocked):
            return None  # it stopped or locked meanwhile
        except (AccessDenied, AgentTimeout):
            if given or io.interactive():
                return None
            raise


# -- agent ---------------------------------------------------------------------------------------


def cmd_agent(args: argparse.Namespace) -> int:
    import threading

    from ..agent import protocol as wire
    from ..agent.server import AgentServer
    from ..client import AgentClient, AgentError
    from ..core.audit import Actor
    from .commands import unlock_vault

    try:  # checked before asking for a password (start() checks again, under the agent lock)
        with AgentClient(timeout=5) as client:
            status: dict | None = client.status()
    except AgentError:
        status = None
    if status is not None:
        raise wire.AgentAlreadyRunning(f"an agent is already running (pid {status.get('pid')}, "
                                       f"{'the app' if status.get('mode') == 'gui' else 'headless'}): "
                                       "stop it with 'its-vault lock'")
    from ..core.memory import harden_process

    harden_process()  # the agent serves and never asks: no core files, not dumpable
    vault, _ = unlock_vault(args)
    vault.actor = Actor.current("agent")
    stopped = threading.Event()
    why: list[str] = []

    def on_lock() -> None:
        why.append("locked through the agent")
        stopped.set()

    server = AgentServer(lambda: vault, mode="headless", on_lock=on_lock)
    # The audit writer's appends are CPU-bound Python: let the socket thread take the GIL back
    # within 1 ms (not the default 5) when a request arrives meanwhile. This process is ours.
    sys.setswitchinterval(0.001)
    started = f"headless agent at {server.socket_path}"
    if not args.foreground:
        # Written before the fork, with the unlock record: both processes would otherwise hold
        # the unlock record to write.
        vault.record("agent-start", detail=started)
        return _detach(vault, server, stopped, why)
    _log_to(None)
    _on_signals(stopped, why)
    try:
        server.start()
    except BaseException:
        vault.lock()
        raise
    vault.record("agent-start", detail=started)
    io.info(f"agent serving {vault.path} at {server.socket_path} (pid {os.getpid()}); "
            "stop it with 'its-vault lock' or SIGTERM")
    _serve_until(server, stopped)
    _finish(vault, server, why)
    return 0


def _serve_until(server, stopped) -> None:
    while not stopped.wait(0.5):
        if not server.running:
            break


def _finish(vault, server, why: list[str]) -> None:
    from ..core.audit import AuditEvent, AuditFiles, record_pending
    from ..core.errors import ConcurrencyError, VaultBusy

    server.stop()
    detail = why[0] if why else "stopped"
    try:
        vault.record("agent-stop", detail=detail)
    except ConcurrencyError as error:
        if isinstance(error, VaultBusy):
            raise
        # Re-keyed (or replaced) meanwhile: our key cannot chain it; the next append will.
        record_pending(AuditFiles.beside(vault.path), AuditEvent("agent-stop", "ok", vault.actor, None, detail))
    finally:
        vault.lock()


def _on_signals(stopped, why: list[str]) -> None:
    import signal

    def stop(signum: int, _frame: object) -> None:
        why.append(f"stopped by {signal.Signals(signum).name}")
        stopped.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)


def _log_to(path: str | None) -> None:
    """The agent's warnings: to stderr in the foreground, to a private file when detached."""
    import logging

    if path is None:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        handler = logging.StreamHandler(os.fdopen(fd, "a", buffering=1))
    handler.setFormatter(logging.Formatter("its-vault agent: %(levelname)s: %(message)s"))
    root = logging.getLogger("its_desktop")
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def _detach(vault, server, stopped, why: list[str]) -> int:
    """Fork; the child leaves the terminal and serves, the parent returns once the child's
    socket is ready (or with the child's error)."""
    from ..agent.protocol import AgentError, private_dir

    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(ready_w)
        with os.fdopen(ready_r, "rb") as pipe:
            answer = pipe.read().decode("utf-8", "replace").strip()
        vault.lock()  # this process's copy of the key; the child keeps its own
        if answer != "ok":
            raise AgentError(answer or "the agent did not start (see its log in the agent folder)")
        io.info(f"agent started (pid {pid}): serving {vault.path} at {server.socket_path}; "
                "stop it with 'its-vault lock'")
        return 0
    code = 1
    try:
        os.close(ready_r)
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        _log_to(os.path.join(private_dir(server.folder), "agent.log"))
        _on_signals(stopped, why)
        try:
            server.start()
        except Exception as error:
            os.write(ready_w, str(error).encode("utf-8", "replace"))
            vault.record("agent-stop", outcome="failed", detail=str(error)[:200])
            vault.lock()
            raise
        os.write(ready_w, b"ok\n")
        os.close(ready_w)
        _serve_until(server, stopped)
        _finish(vault, server, why)
        code = 0
    except BaseException:
        import logging

        logging.getLogger(__name__).exception("the agent failed")
    finally:
        os._exit(code)


# -- lock ------------------------------------------------------------------------------------------


def cmd_lock(args: argparse.Namespace) -> int:
    from ..client import AgentClient, AgentUnavailable

    try:
        with AgentClient(timeout=10) as client:
            status = client.status()
            client.lock()
    except AgentUnavailable:
        io.info("nothing to lock: no agent or app is serving the vault")
        return 0
    who = "the app" if status.get("mode") == "gui" else "the agent"
    io.info(f"locked: {who} (pid {status.get('pid')}) locked {status.get('vault') or 'the vault'}")
    return 0


def cmd_lockdown(args: argparse.Namespace) -> int:
    """Through a running unlocked agent or app when there is one (no password needed: it holds
    the key; the app also clears the clipboard), else by unlocking the vault here."""
    from ..client import AgentClient, AgentError, AgentUnavailable
    from ..agent.lockdown import LockdownReport, lockdown
    from .commands import _path, open_vault

    reply: dict = {}
    try:
        with AgentClient(timeout=10) as client:
            status = client.status()
            if status.get("vault") and _same_file(status["vault"], _path(args)):
                reply = client.lockdown()
            else:
                client.lock()  # an agent of another vault: lock it too, it is an emergency
    except (AgentUnavailable, AgentError):
        reply = {}
    if reply.get("done"):
        report = LockdownReport(int(reply.get("grants_revoked", 0)), int(reply.get("secrets_marked", 0)))
        who = "the app" if status.get("mode") == "gui" else "the agent"
        io.info(f"lockdown done by {who} (pid {status.get('pid')}): {report.describe()}; vault locked")
        return 0
    with open_vault(args) as vault:
        report = lockdown(vault)
    io.info(f"lockdown: {report.describe()}; vault locked")
    io.info("next: its-vault schedule shows every secret as due; rotate them (its-vault rotate --due for the automatic ones)")
    return 0


# -- grant -----------------------------------------------------------------------------------------


def cmd_grant(args: argparse.Namespace) -> int:
    return {"add": _grant_add, "list": _grant_list, "rm": _grant_rm}[args.grant_command](args)


def _existing_file(text: str, option: str, search: bool = False) -> str:
    import shutil

    path = text
    if search and os.sep not in text:
        path = shutil.which(text) or text
    real = os.path.realpath(os.path.expanduser(path))
    if not os.path.isfile(real):
        raise UsageError(f"{option}: no such file '{text}'")
    return real


def _grant_add(args: argparse.Namespace) -> int:
    from ..agent.grants import Grant, add_to_settings, parse_ttl, prune_expired, validate_pattern
    from ..agent.peer import Hasher, interpreter_family
    from ..core.errors import InvalidInput
    from .commands import open_vault

    try:  # every check before the unlock
        validate_pattern(args.secret)
        parse_ttl(args.ttl)
    except InvalidInput as error:
        raise UsageError(str(error)) from None
    exe = _existing_file(args.exe, "--exe", search=True)
    script = _existing_file(args.script, "--script") if args.script else None
    cwd = None
    if args.cwd:
        cwd = os.path.realpath(os.path.expanduser(args.cwd))
        if not os.path.isdir(cwd):
            raise UsageError(f"--cwd: no such folder '{args.cwd}'")
    hasher = Hasher()
    exe_hash = hasher.of_file(exe)
    script_hash = hasher.of_file(script) if script else None
    if exe_hash is None or (script and script_hash is None):
        raise UsageError("cannot read the program or script to fingerprint it")
    if interpreter_family(exe) and not script:
        io.warn(f"no --script: any program {os.path.basename(exe)} runs{' in ' + cwd if cwd else ''} may read "
                f"'{args.secret}'")
    grant = Grant.new(args.secret, exe, exe_hash, script, script_hash, cwd, args.ttl)

    def edit(settings: dict) -> None:
        prune_expired(settings)
        add_to_settings(settings, grant)

    with open_vault(args) as vault:
        vault.change_settings(edit, op="grant-add", name=grant.pattern,
                              detail=f"grant {grant.id} ({grant.ttl}) for {grant.describe_client()}")
    until = f" until {grant.expires}" if grant.expires else (" (its first run, until the vault locks)"
                                                               if grant.ttl == "once" else "")
    io.info(f"granted {grant.describe_client()} read access to '{grant.pattern}'{until}")
    print(grant.id)
    return 0


def _grant_list(args: argparse.Namespace) -> int:
    from ..agent.grants import load_grants
    from .commands import open_vault

    with open_vault(args) as vault:
        grants = load_grants(vault.settings())
    now = time.time()
    if args.json:
        json.dump([{**g.to_json(), "expired": g.expired(now)} for g in grants], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not grants:
        io.info("no grants (add one with 'its-vault grant add')")
        return 0
    width = max(7, *(len(g.pattern) for g in grants))
    for g in grants:
        state = "expired" if g.expired(now) else (f"until {g.expires}" if g.expires else g.ttl)
        print(f"{g.id}  {g.pattern:<{width}}  {state:<31}  {g.describe_client()}")
    return 0


def _grant_rm(args: argparse.Namespace) -> int:
    from ..agent.grants import GrantNotFound, remove_from_settings
    from .commands import open_vault

    def edit(settings: dict) -> None:
        if not remove_from_settings(settings, args.id):
            raise GrantNotFound(args.id)

    with open_vault(args) as vault:
        vault.change_settings(edit, op="grant-rm", detail=f"grant {args.id} revoked")
    io.info(f"revoked grant {args.id}")
    return 0


# -- run --------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from ..agent.run import check_variable, parse_reference, run_masked, secret_files
    from ..core.dotenv import parse_dotenv
    from ..core.errors import InvalidInput

    command = list(args.argv)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("run needs a command: its-vault run [--env VAR=its://NAME]... -- COMMAND...")
    wanted: dict = {}
    plain: dict[str, str] = {}
    try:
        for variable, value in os.environ.items():  # references already in the environment
            reference = parse_reference(value)
            if reference is not None:
                wanted[variable] = reference
        for name in args.env_file:
            source = Path(name)
            try:
                text = source.read_text(encoding="utf-8-sig")
            except UnicodeDecodeError:
                raise InvalidInput(f"{source}: not a UTF-8 text file") from None
            for entry in parse_dotenv(text, str(source)):
                reference = parse_reference(entry.value)
                if reference is None:
                    plain[entry.key] = entry.value
                    wanted.pop(entry.key, None)
                else:
                    wanted[entry.key] = reference
                    plain.pop(entry.key, None)
        for spec in args.env:
            variable, sep, value = spec.partition("=")
            reference = parse_reference(value) if sep else None
            if reference is None:
                raise UsageError(f"--env expects VAR=its://NAME[#field], got '{spec[:60]}'")
            wanted[check_variable(variable)] = reference
            plain.pop(variable, None)
    except UsageError:
        raise
    except InvalidInput as error:
        raise UsageError(str(error)) from None
    values = _resolve(args, wanted)
    env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV}
    env.update(plain)
    try:
        if args.files:
            with secret_files(values) as paths:
                env.update(paths)
                return run_masked(command, env, values.values())
        env.update(values)
        return run_masked(command, env, values.values())
    except FileNotFoundError:
        print(f"its-vault: error: command not found: {command[0]}", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"its-vault: error: permission denied: {command[0]}", file=sys.stderr)
        return 126


def _resolve(args: argparse.Namespace, wanted: dict) -> dict[str, str]:
    """{variable: value} for {variable: Reference}: through the agent, else from the vault."""
    if not wanted:
        return {}
    from .commands import open_vault

    unique = sorted(set(wanted.values()), key=str)
    found = via_agent(args, lambda client, prompt: {r: client.get(r.name, r.field, prompt=prompt) for r in unique})
    if found is None:
        with open_vault(args) as vault:
            found = {r: vault.value(r.name, r.field) for r in unique}
    return {variable: found[reference] for variable, reference in wanted.items()}
