"""Who may read what, for how long: grants, and the policy the agent checks them against.

A grant names a client (executable path and hash; optionally a script and its hash, and a
working folder) and a pattern of secret names, with a time to live:

* ``always`` and a duration (``90s``, ``30m``, ``8h``, ``7d``) are stored in the vault's settings
  (``agent_grants``), so they survive restarts of the bot, the agent and the app;
* ``once`` lasts for the client's login session (the terminal, or the service) until the vault
  locks. One given in the app's dialog lives in the agent's memory only; one added with
  ``its-vault grant add --ttl once`` waits in the vault until the first client it matches, which
  takes it into the agent's memory (and out of the vault).

A pattern is a secret's name, ``*`` (everything) or a glob such as ``brokers/ibkr/*`` where
``*`` matches anything, ``/`` included (so ``brokers/*`` covers ``brokers/ibkr/api_key``).
Secret names never go into audit details (those are stored in the clear); patterns go in the
events' encrypted name field.
"""

from __future__ import annotations

import fnmatch
import secrets
import shlex
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Iterable

from ..core.errors import InvalidInput, SecretNotFound, VaultError
from .peer import ClientIdentity

GRANTS_KEY = "agent_grants"
ONCE = "once"
ALWAYS = "always"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_PATTERN_LENGTH = 512


class GrantNotFound(SecretNotFound):
    def __init__(self, grant_id: str) -> None:
        VaultError.__init__(self, f"no grant with id '{grant_id}' (see 'its-vault grant list')")
        self.name = grant_id


def parse_ttl(text: str) -> tuple[str, float | None]:
    """``once`` / ``always`` / a number with s, m, h or d → (the normal form, seconds or None)."""
    text = text.strip().lower()
    if text in (ONCE, ALWAYS):
        return text, None
    number, unit = text[:-1], text[-1:]
    if unit in _UNITS and number.isdigit() and 0 < int(number) * _UNITS[unit] <= 366 * 86400:
        return f"{int(number)}{unit}", float(int(number) * _UNITS[unit])
    raise InvalidInput(f"invalid --ttl '{text[:20]}': use once, always, or a duration such as 90s, 30m, 8h, 7d")


def validate_pattern(pattern: str) -> str:
    if not pattern or len(pattern) > MAX_PATTERN_LENGTH or pattern != pattern.strip() \
            or any(ord(c) < 32 or ord(c) == 127 for c in pattern):
        raise InvalidInput("a secret pattern is a name or a folder glob such as brokers/ibkr/*")
    return pattern


def pattern_matches(pattern: str, name: str) -> bool:
    if "*" not in pattern and "?" not in pattern and "[" not in pattern:
        return pattern == name
    return fnmatch.fnmatchcase(name, pattern)


def pattern_covers_prefix(pattern: str, prefix: str) -> bool:
    """Does ``pattern`` match every name that starts with ``prefix``? (For listings.)"""
    if pattern.endswith("*") and not any(c in pattern[:-1] for c in "*?["):
        return prefix.startswith(pattern[:-1])
    return False


def suggest_pattern(name: str) -> str:
    """What to ask for when ``name`` is requested: its folder (``brokers/ibkr/*``)."""
    folder, slash, _ = name.rpartition("/")
    return f"{folder}/*" if slash else name


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="seconds")


def _epoch(text: Any) -> float | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


@dataclass(frozen=True)
class Grant:
    """One permission. ``script`` / ``cwd`` None means any; ``session`` is set on a "once"
    grant taken into the agent's memory (the login session it is bound to)."""

    id: str
    pattern: str
    exe: str
    exe_hash: str | None
    script: str | None = None
    script_hash: str | None = None
    cwd: str | None = None
    ttl: str = ALWAYS
    created: str = ""
    expires: str | None = None
    session: tuple[int, int] | None = field(default=None, compare=False)
    _expires_at: float | None = field(default=None, repr=False, compare=False)

    @classmethod
    def new(cls, pattern: str, exe: str, exe_hash: str | None, script: str | None = None,
            script_hash: str | None = None, cwd: str | None = None, ttl: str = ALWAYS,
            now: float | None = None) -> Grant:
        ttl, seconds = parse_ttl(ttl)
        now = time.time() if now is None else now
        expires = now + seconds if seconds is not None else None
        return cls("g" + secrets.token_hex(4), validate_pattern(pattern), exe, exe_hash, script, script_hash,
                   cwd, ttl, _iso(now), _iso(expires) if expires is not None else None, None, expires)

    @classmethod
    def for_client(cls, client: ClientIdentity, pattern: str, ttl: str, now: float | None = None) -> Grant:
        """A grant pinning everything the client is identified by (an approval in the app)."""
        grant = cls.new(pattern, client.exe, client.exe_hash, client.script, client.script_hash, client.cwd, ttl, now)
        return replace(grant, session=client.session) if grant.ttl == ONCE else grant

    @classmethod
    def from_json(cls, raw: dict) -> Grant:
        expires = raw.get("expires")
        grant = cls(str(raw["id"]), validate_pattern(str(raw["pattern"])), str(raw["exe"]), _opt(raw.get("exe_hash")),
                    _opt(raw.get("script")), _opt(raw.get("script_hash")), _opt(raw.get("cwd")),
                    str(raw.get("ttl") or ALWAYS), str(raw.get("created") or ""), _opt(expires))
        return replace(grant, _expires_at=_epoch(expires))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "exe": self.exe, "exe_hash": self.exe_hash, "script": self.script,
                "script_hash": self.script_hash, "cwd": self.cwd, "pattern": self.pattern, "ttl": self.ttl,
                "created": self.created, "expires": self.expires}

    def bound(self, session: tuple[int, int]) -> Grant:
        return replace(self, session=session)

    def expired(self, now: float) -> bool:
        return self._expires_at is not None and now >= self._expires_at

    def fits(self, client: ClientIdentity) -> bool:
        """Is ``client`` the program this grant names (whatever the secret)?"""
        return (self.exe == client.exe and self.exe_hash is not None and self.exe_hash == client.exe_hash
                and (self.script is None or (self.script == client.script and self.script_hash == client.script_hash))
                and (self.cwd is None or self.cwd == client.cwd)
                and (self.session is None or self.session == client.session))

    def allows(self, client: ClientIdentity, name: str, now: float) -> bool:
        return not self.expired(now) and self.fits(client) and pattern_matches(self.pattern, name)

    def describe_client(self) -> str:
        parts = [self.exe]
        if self.script:
            parts.append(self.script)
        return " ".join(parts) + (f" in {self.cwd}" if self.cwd else "")


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def load_grants(settings: dict) -> list[Grant]:
    """The grants stored in the vault's settings; an entry that does not parse is skipped (and
    so grants nothing)."""
    grants = []
    for raw in settings.get(GRANTS_KEY) or []:
        try:
            grants.append(Grant.from_json(raw))
        except (KeyError, TypeError, ValueError, InvalidInput):
            continue
    return grants


def add_to_settings(settings: dict, grant: Grant) -> None:
    stored = [g for g in settings.get(GRANTS_KEY) or [] if isinstance(g, dict) and g.get("id") != grant.id]
    stored.append(grant.to_json())
    settings[GRANTS_KEY] = stored


def remove_from_settings(settings: dict, grant_id: str) -> bool:
    stored = settings.get(GRANTS_KEY) or []
    kept = [g for g in stored if not (isinstance(g, dict) and g.get("id") == grant_id)]
    settings[GRANTS_KEY] = kept
    return len(kept) != len(stored)


def prune_expired(settings: dict, now: float | None = None) -> int:
    """Drop stored grants whose time is up; returns how many went."""
    now = time.time() if now is None else now
    stored = settings.get(GRANTS_KEY) or []
    kept = []
    for raw in stored:
        try:
            if Grant.from_json(raw).expired(now):
                continue
        except (KeyError, TypeError, ValueError, InvalidInput):
            pass
        kept.append(raw)
    settings[GRANTS_KEY] = kept
    return len(stored) - len(kept)


def grant_command(client: ClientIdentity, pattern: str) -> str:
    """The ``its-vault grant add`` line that would let ``client`` read ``pattern``."""
    words = ["its-vault", "grant", "add", "--exe", client.exe]
    if client.script and client.script.startswith("/"):
        words += ["--script", client.script]
    words += ["--cwd", client.cwd, "--secret", pattern]
    return " ".join(shlex.quote(w) for w in words)


class Policy:
    """The grants in force: those stored in the vault plus this agent's session grants.

    ``epoch`` moves whenever the set changes, so connections can cache a decision per secret
    and check one integer before reusing it."""

    def __init__(self) -> None:
        self.stored: list[Grant] = []
        self.session: list[Grant] = []
        self.consumed: set[str] = set()  # stored "once" grants taken into the session
        self.to_remove: list[str] = []  # ... which the agent has yet to remove from the vault
        self.epoch = 0

    def load(self, stored: Iterable[Grant]) -> None:
        stored = list(stored)
        ids = {g.id for g in stored}
        self.consumed &= ids  # forget the ones the vault no longer holds
        self.stored = [g for g in stored if g.id not in self.consumed]
        self.session = [g for g in self.session if g.ttl == ONCE or g.id not in ids]  # saved copies win
        self.epoch += 1

    def add_session(self, grant: Grant) -> None:
        self.session = [g for g in self.session if g.id != grant.id] + [grant]
        self.epoch += 1

    def revoke_sessions(self) -> None:
        self.session = []
        self.epoch += 1

    def find(self, client: ClientIdentity, name: str, now: float) -> Grant | None:
        for grant in self.session:
            if grant.allows(client, name, now):
                return grant
        for grant in self.stored:
            if grant.allows(client, name, now):
                if grant.ttl == ONCE:  # taken by its first client, for that client's session
                    self.consumed.add(grant.id)
                    self.to_remove.append(grant.id)
                    self.stored = [g for g in self.stored if g.id != grant.id]
                    bound = grant.bound(client.session)
                    self.add_session(bound)
                    return bound
                return grant
        return None

    def covers_prefix(self, client: ClientIdentity, prefix: str, now: float) -> bool:
        return any(not g.expired(now) and g.fits(client) and pattern_covers_prefix(g.pattern, prefix)
                   for g in [*self.session, *self.stored])
