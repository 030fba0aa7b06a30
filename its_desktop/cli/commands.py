"""One function per ``its-vault`` command. Errors propagate to ``cli.main``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from ..core.audit import Actor
from ..core.crypto import MIN_MEMORY_KIB, MIN_TIME_COST, Argon2Params
from ..core.errors import InvalidInput, VaultNotFound
from ..core.vault.api import Vault, default_vault_path
from ..factors.registry import HARDWARE_KINDS
from . import io
from .io import UsageError

STDIN = io.Stdin()


def _path(args: argparse.Namespace) -> Path:
    return Path(args.vault).expanduser() if getattr(args, "vault", None) else default_vault_path()




def open_vault(args: argparse.Namespace) -> Vault:
    return unlock_vault(args)[0]


def unlock_vault(args: argparse.Namespace) -> tuple[Vault, str | None]:
    """Open the vault with the factor asked for (``--factor``), or else with a plugged-in
    enrolled key plus the password, falling back to the password slot. Returns the vault and
    the master password when one was given."""
    from ..core.vault.header import peek_header

    path = _path(args)
    if not path.exists():
        raise VaultNotFound(str(path))
    actor = Actor.current("cli")
    factor = getattr(args, "factor", None)
    if factor == "recovery":
        return Vault.open(path, recovery_code=io.recovery_code(STDIN), actor=actor, wait=_waiting), None
    if factor == "tpm2":
        from ..factors.tpm2 import TpmOpener

        if not any(s.kind == "tpm2" for s in peek_header(path).slots):
            raise io.UsageError("this vault has no TPM factor: enrol one with 'its-vault factor add tpm2'")
        return Vault.open(path, openers=(TpmOpener(io.tpm_pin()),), actor=actor, wait=_waiting), None
    password = io.master_password(STDIN, getattr(args, "password_stdin", False))
    openers: list = []
    if factor != "password":
        slots = peek_header(path).slots
        if any(s.kind in HARDWARE_KINDS for s in slots):
            from ..factors.hardware import openers_for

            openers = openers_for(slots, password, _prompter(), factor if factor in HARDWARE_KINDS else None)
    if factor in HARDWARE_KINDS:
        return Vault.open(path, openers=tuple(openers), actor=actor, wait=_waiting), password
    return Vault.open(path, password, openers=tuple(openers), actor=actor, wait=_waiting), password


def _waiting(seconds: float) -> None:
    import time

    io.info(f"waiting {seconds:.0f} s after repeated failed unlocks…")
    time.sleep(seconds)


def _prompter():
    from .prompter import TerminalPrompter

    return TerminalPrompter()


def _pairs(items: list[str], what: str) -> dict[str, str]:
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--{what} expects K=V, got '{key}'")
        result[key] = value
    return result


def _date(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        raise UsageError(f"--expires expects YYYY-MM-DD, got '{text}'") from None


def kdf_from_args(args: argparse.Namespace) -> Argon2Params:
    """The Argon2id parameters of a new password slot from --kdf-memory/--kdf-time/
    --kdf-parallelism (``init``, ``backup``, ``restore-backup``): checked, and a warning when weak."""
    default = Argon2Params.default()
    memory = default.memory_kib if args.kdf_memory is None else args.kdf_memory * 1024
    time_cost = default.time_cost if args.kdf_time is None else args.kdf_time
    parallelism = default.parallelism if args.kdf_parallelism is None else args.kdf_parallelism
    if memory < MIN_MEMORY_KIB or time_cost < MIN_TIME_COST:
        raise UsageError("KDF parameters too weak: --kdf-memory must be at least 8 MiB and --kdf-time at least 1")
    kdf = Argon2Params(memory, time_cost, parallelism)
    if not kdf.within_bounds():
        raise UsageError("KDF parameters out of range (memory 8 to 1024 MiB, time 1 to 64, parallelism 1 to 16)")
    if kdf.below_defaults():
        io.warn(f"KDF cost below the recommended 64 MiB / 3 passes ({memory // 1024} MiB / {time_cost}): "
                "fine for tests and demos, weak against offline guessing")
    return kdf


def cmd_init(args: argparse.Namespace) -> int:
    from ..core.errors import VaultExists

    path = _path(args)
    if path.exists():
        raise VaultExists(str(path))
    kdf = kdf_from_args(args)
    password = io.master_password(STDIN, getattr(args, "password_stdin", False), confirm=True)
    io.warn_if_weak(password)
    with Vault.create(path, password, kdf=kdf, actor=Actor.current("cli")) as vault:
        code = vault.take_recovery_code()
    io.info(f"vault created at {path}")
    io.info("recovery code (shown once; store it offline: it opens the vault without the password):")
    print(code)
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    from ..core.rotation import RotationPolicy

    from ..core.secrets import SecretType

    try:
        kind = SecretType.parse(args.type) if args.type else None
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None  # before any unlock
    fields = _pairs(args.field, "field")
    tags = _pairs(args.tag, "tag")
    expires = _date(args.expires) if args.expires else None
    if args.rotate_every is not None and args.rotate_every < 1:
        raise UsageError("--rotate-every must be at least 1 day")
    rotation = RotationPolicy(args.rotate_every) if args.rotate_every else None
    rotator, policy = _rotation_options(args)
    with open_vault(args) as vault:
        value: str | None
        if args.value_stdin:
            value = STDIN.rest()
            if not value:
                raise InvalidInput("standard input is empty: nothing stored (an empty value is almost always a mistake)")
        elif args.generate:
            value = _generator(vault, args.name, policy).generate()
        elif io.interactive():
            value = io.prompt_secret("Value (empty keeps the current one)") or None
        else:
            value = None
        secret = vault.set(args.name, value, type=kind, fields=fields, tags=tags,
                           description=args.description, expires_at=expires, rotation=rotation,
                           rotator=rotator, value_policy=policy)
    verb = "created" if secret.version == 1 and secret.created == secret.updated else "updated"
    io.info(f"{verb} {secret.name} (version {secret.version})")
    return 0


def _rotation_options(args: argparse.Namespace):
    """``--rotator``, and ``--length``/``--alphabet`` as the secret's value policy (None: keep)."""
    from ..core.passwords import DEFAULT_ALPHABET, DEFAULT_LENGTH, ValuePolicy
    from ..rotators.registry import check_name

    try:
        rotator = check_name(args.rotator) if args.rotator else None
        policy = None
        if args.length is not None or args.alphabet is not None:
            policy = ValuePolicy(args.length or DEFAULT_LENGTH, args.alphabet or DEFAULT_ALPHABET)
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None
    return rotator, policy


def _generator(vault: Vault, name: str, policy):
    """The policy a generated value follows: the one given, else the secret's, else the default."""
    from ..core.errors import SecretNotFound
    from ..core.passwords import ValuePolicy

    if policy is not None:
        return policy
    try:
        return vault.peek(name).value_policy or ValuePolicy()
    except SecretNotFound:
        return ValuePolicy()


def cmd_get(args: argparse.Namespace) -> int:
    from .agent import via_agent

    reply = via_agent(args, lambda agent, prompt: agent.read(args.name, args.field, prompt=prompt))
    if reply is not None:  # an unlocked agent serves this vault: no key derivation
        value = reply["value"]
        if reply.get("expired"):
            io.warn(f"secret '{args.name}' expired on {reply['expired']}")
        sys.stdout.write(value + "\n")
        return 0
    with open_vault(args) as vault:
        secret = vault.get(args.name)
        value = secret.value if args.field is None else secret.field(args.field)
        if secret.expires_at is not None and secret.expires_at <= vault.clock():
            io.warn(f"secret '{secret.name}' expired on {secret.expires_at.date().isoformat()}")
    sys.stdout.write(value + "\n")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ..agent.listing import listing_rows
    from .agent import via_agent

    rows = via_agent(args, lambda agent, prompt: agent.list_rows(prompt=prompt))
    if rows is None:
        with open_vault(args) as vault:
            rows = listing_rows(vault)
    if args.json:
        io.print_json(rows)
        return 0
    width = max([len(r["name"]) for r in rows] + [4])
    print(f"{'NAME':<{width}}  {'TYPE':<11}  {'UPDATED':<10}  {'STATUS':<8}  TAGS")
    for r in rows:
        tags = ",".join(f"{k}={v}" for k, v in sorted(r["tags"].items()))
        print(f"{r['name']:<{width}}  {r['type']:<11}  {r['updated'][:10]:<10}  {r['status']:<8}  {tags}")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        vault.delete(args.name)
    io.info(f"deleted {args.name}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        current = vault.peek(args.name).version
        versions = vault.history(args.name)
        vault.record("history", args.name)
    rows = [{"version": v.version, "created": v.created.isoformat(timespec="seconds"),
             "fields": sorted(v.fields), "current": v.version == current} for v in versions]
    if args.json:
        io.print_json(rows)
        return 0
    for r in rows:
        mark = "  (current)" if r["current"] else ""
        print(f"{r['version']:>4}  {r['created']}{mark}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        secret = vault.restore(args.name, args.version)
    io.info(f"restored {args.name} version {args.version} as version {secret.version}")
    return 0


def cmd_import_env(args: argparse.Namespace) -> int:
    """``import-env FILE``: the first spelling of ``import env FILE --duplicates merge``, kept
    for scripts as it always behaved: a changed value becomes a new version (the old one stays
    in history), and a malformed file is refused in one line naming its first bad line."""
    from ..importers import read_source
    from ..importers.apply import Action, Duplicates, apply_import

    source = Path(args.file)
    preview = read_source("env", source, prefix=args.prefix)
    if preview.issues:
        first, more = preview.issues[0], len(preview.issues) - 1
        tail = f" (and {more} more bad line{'s' if more > 1 else ''})" if more else ""
        raise InvalidInput(f"{source}:{first.number}: {first.reason}{tail}")
    with open_vault(args) as vault:
        plan = apply_import(vault, preview, Duplicates.MERGE)
    io.info(f"imported {source}: {plan.count(Action.CREATE)} created, {plan.count(Action.MERGE)} updated "
            f"(old values kept in history), {plan.count(Action.UNCHANGED)} unchanged")
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        new = io.new_master_password(STDIN, getattr(args, "password_stdin", False))
        io.warn_if_weak(new)
        rebuild, dropped = None, ()
        if any(s.kind in HARDWARE_KINDS for s in vault.slots):
            from ..factors.hardware import rewrap_for_new_password

            rebuild, dropped = rewrap_for_new_password(vault, new, _prompter())
        names = {s.id: f"{s.kind} '{s.name}' ({s.id})" for s in vault.slots}
        vault.change_password(new, rebuilt=rebuild, dropped=dropped)
    for slot_id in dropped:
        io.warn(f"{names[slot_id]} was not plugged in to be re-wrapped, so it was removed: enrol it again")
    io.info("master password changed")
    return 0


def cmd_factor(args: argparse.Namespace) -> int:
    return {"add": _factor_add, "list": _factor_list, "rm": _factor_rm}[args.factor_command](args)


def _factor_add(args: argparse.Namespace) -> int:
    if args.type == "recovery":
        with open_vault(args) as vault:
            code = vault.add_recovery_slot()
        io.info("new recovery code (shown once; the previous code no longer works):")
        print(code)
        return 0
    if args.type == "tpm2":
        return _factor_add_tpm(args)
    from ..factors import hardware

    vault, password = unlock_vault(args)
    with vault:
        if password is None:  # unlocked with the recovery code: bind the slot to a password
            password = io.master_password(STDIN, False, confirm=True)
            _check_password(vault, password)
        keys = hardware.list_keys(args.type)
        if not keys:
            raise InvalidInput(f"no {'YubiKey' if args.type == 'yubikey' else 'FIDO2 key'} is plugged in")
        key = keys[0]
        name = args.name or (f"YubiKey {key.serial} slot {args.slot}" if args.type == "yubikey" else key.label)
        slot = hardware.enroll(vault, key, password, _prompter(), name, {"otp_slot": args.slot})
    io.info(f"enrolled {slot.kind} '{slot.name}' as factor {slot.id}")
    return 0


def _factor_add_tpm(args: argparse.Namespace) -> int:
    from ..factors import tpm2

    pcrs = tpm2.parse_pcrs(args.pcrs) if args.pcrs is not None else tpm2.DEFAULT_PCRS
    with open_vault(args) as vault:
        pin = io.tpm_pin(confirm=True)
        slot = tpm2.enroll(vault, pin, pcrs, args.name or "TPM + PIN")
    bound = f"PCR {','.join(map(str, pcrs))}" if pcrs else "no PCRs"
    io.info(f"enrolled this workstation's TPM ({bound}) as factor {slot.id}; "
            f"unlock with --factor tpm2 and the PIN")
    return 0


def _check_password(vault: Vault, password: str) -> None:
    """When a password slot exists, the password bound to a new key must be the vault's."""
    from ..core.errors import IncorrectFactor, WrongCredentials
    from ..core.vault import slots as slotlib

    password_slots = [s for s in vault.slots if s.kind == slotlib.PASSWORD]
    for slot in password_slots:
        try:
            slotlib.open_password_slot(slot, password, vault.vault_id)
            return
        except IncorrectFactor:
            continue
    if password_slots:
        raise WrongCredentials("that is not the vault's master password")


def _factor_list(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        rows = [{"id": s.id, "type": s.kind, "name": s.name, "created": s.created} for s in vault.slots]
        details = {s.id: _slot_details(s) for s in vault.slots}
    if args.json:
        io.print_json(rows)
        return 0
    for r in rows:
        print(f"{r['id']}  {r['type']:<9} {r['created'][:10]}  {r['name']}{details[r['id']]}")
    return 0


def _slot_details(slot) -> str:
    if slot.kind == "yubikey":
        return f"  (serial {slot.params.get('serial')}, OTP slot {slot.params.get('otp_slot')})"
    if slot.kind == "fido2":
        return f"  (PIN {'required' if slot.params.get('pin') else 'not set'})"
    if slot.kind == "tpm2":
        pcrs = slot.params.get("pcrs") or []
        return f"  (PIN, PCR {','.join(map(str, pcrs))})" if pcrs else "  (PIN, no PCRs)"
    return ""


def _factor_rm(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        vault.remove_slot(args.id)
    io.info(f"removed factor {args.id}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        if args.action == "verify":
            count = vault.verify_audit()
            print(f"audit log verified: {count} records, chain intact")
            return 0
        records = list(vault.audit_records())
    for record in records:
        e = record.event
        if args.json:
            print(json.dumps({"seq": record.seq, "time": e.time.isoformat(timespec="milliseconds"),
                              "op": e.op, "outcome": e.outcome, "name": e.name, "detail": e.detail,
                              "actor": {"kind": e.actor.kind, "pid": e.actor.pid, "exe": e.actor.exe}}))
        else:
            print(f"{record.seq:>6}  {e.time.isoformat(timespec='seconds')}  {e.actor.kind}:{e.actor.pid}  "
                  f"{e.op:<14} {e.outcome:<9} {e.name or ''}{'  ' + e.detail if e.detail else ''}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from ..core.crypto import calibrate_argon2

    if not 0.05 <= args.target <= 30:
        raise UsageError("--target must be between 0.05 and 30 seconds")
    params = calibrate_argon2(args.target)
    print(f"--kdf-memory {params.memory_kib // 1024} --kdf-time {params.time_cost} "
          f"--kdf-parallelism {params.parallelism}")
    return 0
