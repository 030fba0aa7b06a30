"""KeePassXC / KeePass databases (KDBX 4, and KDBX 3.1 which the same library reads), through
pykeepass.

Groups become folders (the root group's name is left out), the title the name, the password
the value; username and URL become the fields ``username`` and ``url``, the notes the
description, every other string attribute a field (protected ones too: fields are never
listed). A one-time-code account (``otp``, the legacy ``TOTP Seed``/``TOTP Settings`` pair,
KeePass's ``TimeOtp-*``) becomes ``NAME/totp``. An entry that expires keeps its expiry.
Entries in the recycle bin and attachments are left out and said so; history is not imported.

The header is read first, without the password: a file that is not KDBX is refused before
anyone is asked for a password, and a hostile KDF cost (gigabytes of Argon2 memory) is
refused before any derivation, with the same caps as our own vault header.
"""

from __future__ import annotations

import io
from datetime import timezone
from typing import Any, Callable

from ..core.crypto import MAX_MEMORY_KIB
from ..core.errors import InvalidInput, WrongCredentials
from ..core.totp import OtpError
from .base import Entry, ImportIssue, Preview, entry_secrets, labels_to_tags, printable
from .otp import account_from_keepass, is_otp_attribute

KIND = "kdbx"
MAX_PARALLELISM = 64
MAX_ITERATIONS = 1000  # Argon2 passes; KeePassXC's one-second default is a few dozen
# pykeepass runs AES-KDF in Python, ~2 µs a round: KeePass's default 60,000 is instant, the
# cap a few minutes (a KDBX 3 set to "one second" on a fast machine can take a minute here).
MAX_AES_ROUNDS = 100_000_000


def parse(data: bytes, source: str, password: Callable[[], str]) -> Preview:
    """``password`` is asked only once the file is known to be a KDBX database."""
    _check_header(data, source)
    database = _open(data, source, password())
    return _read(database, source)


def _check_header(data: bytes, source: str) -> None:
    """The outer header alone (signature, version, KDF parameters), parsed with the library's
    own structure: opening the file, even without decrypting, would already run the KDF."""
    from pykeepass.kdbx_parsing.kdbx import KDBX

    try:
        structure = next(part for part in KDBX.subcons if part.name == "header")
        header = structure.parse(data).value
        version = int(header.major_version)
        memory_kib, passes, lanes, rounds = _kdf_cost(header)
    except Exception:  # the library reports a foreign file in many ways; none is ours to show
        raise InvalidInput(f"{source}: not a KeePass database (KDBX), or damaged") from None
    if version not in (3, 4):
        raise InvalidInput(f"{source}: KDBX version {version} is not supported (KDBX 4 and 3.1 are)")
    if memory_kib > MAX_MEMORY_KIB or passes > MAX_ITERATIONS or lanes > MAX_PARALLELISM or rounds > MAX_AES_ROUNDS:
        raise InvalidInput(f"{source}: its key derivation costs more than this app allows (Argon2 up to "
                           f"{MAX_MEMORY_KIB // 1024} MiB, {MAX_ITERATIONS} passes and {MAX_PARALLELISM} "
                           "lanes); lower it in KeePassXC first")


def _kdf_cost(header: Any) -> tuple[int, int, int, int]:
    """Argon2 memory (KiB), passes and lanes, and AES-KDF rounds: KDBX 4's KDF dictionary
    (M in bytes, I, P, R), KDBX 3's transform rounds."""
    dynamic = header.dynamic_header
    if header.major_version == 3:
        return 0, 0, 0, int(dynamic.transform_rounds.data)
    parameters = dynamic.kdf_parameters.data.dict

    def number(key: str) -> int:
        return int(parameters[key].value) if key in parameters else 0

    return number("M") // 1024, number("I"), number("P"), number("R")


def _open(data: bytes, source: str, password: str) -> Any:
    from pykeepass import PyKeePass
    from pykeepass.exceptions import CredentialsError

    try:
        return PyKeePass(io.BytesIO(data), password=password)
    except CredentialsError:
        raise WrongCredentials(f"wrong password for the KeePass file {source}") from None
    except Exception:
        raise InvalidInput(f"{source}: the KeePass database is damaged and cannot be read") from None


def _read(database: Any, source: str) -> Preview:
    bin_id = _recycle_bin(database)
    secrets, issues, notes = [], [], []
    for number, item in enumerate(database.entries, start=1):
        label = printable(item.title or "")
        problem = None
        try:
            if _in_group(item, bin_id):
                notes.append(ImportIssue(number, "in the recycle bin, left out", "entry", label))
                continue
            entry, problem = _entry(database, item)
            secrets.extend(entry_secrets(entry, ImportIssue(number, "", "entry", label)))
            attachments = len(item.attachments)
            if attachments:
                notes.append(ImportIssue(number, f"{attachments} attachment{'s' if attachments > 1 else ''} "
                                                 "not imported", "entry", label))
        except InvalidInput as error:
            problem = problem or str(error)
        except Exception:  # an entry the library cannot read (a malformed element)
            problem = "this entry cannot be read"
        if problem:
            issues.append(ImportIssue(number, problem, "entry", label))
    return Preview(KIND, source, tuple(secrets), tuple(issues), tuple(notes))


def _entry(database: Any, item: Any) -> tuple[Entry, str | None]:
    """The entry, and the problem with its one-time code if it has a bad one (the rest of the
    entry is still good)."""
    attributes = {key: value or "" for key, value in item.custom_properties.items()}
    if item.otp:
        attributes["otp"] = item.otp
    problem, account = None, None
    try:
        account = account_from_keepass(attributes)
    except OtpError as error:
        problem = f"one-time code not imported: {error}"
    expires = item.expiry_time.astimezone(timezone.utc) if item.expires and item.expiry_time else None
    entry = Entry(
        folders=[name for name in (item.group.path or []) if name],
        title=item.title or "",
        password=_deref(database, item.password),
        username=_deref(database, item.username),
        url=_deref(database, item.url),
        notes=item.notes or "",
        fields={key: value for key, value in attributes.items() if not is_otp_attribute(key)},
        tags=labels_to_tags(item.tags or []),
        expires_at=expires,
        otp=account,
    )
    return entry, problem


def _deref(database: Any, value: str | None) -> str:
    """A ``{REF:P@I:…}`` field reference resolved as KeePass shows it (left as written if
    the entry it points to is gone)."""
    if value and "{REF:" in value:
        try:
            resolved = database.deref(value)
        except Exception:
            return value
        return resolved if isinstance(resolved, str) else value
    return value or ""


def _recycle_bin(database: Any) -> Any:
    try:
        group = database.recyclebin_group
    except Exception:  # no RecycleBinUUID element: a database that never had one
        return None
    return group.uuid if group is not None else None


def _in_group(item: Any, group_id: Any) -> bool:
    if group_id is None:
        return False
    group = item.group
    while group is not None:
        if group.uuid == group_id:
            return True
        group = group.parentgroup
    return False
