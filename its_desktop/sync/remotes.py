"""Remote definitions, kept in the vault's settings: never a credential, only the *name* of
the vault secret that holds it.

``settings()["remotes"][NAME]`` = {"type", "folder", "prefix", "options" (url and mount, or
region and endpoint), "auth", "credentials" (a secret name or null), "token_salt"}, and
``settings()["sync"][NAME][secret name]`` = the base {"version", "hash", "synced_at"}.

``token_salt`` is random, per remote: it keys the idempotency tokens sent to AWS (which are
visible there as version ids), so they reveal nothing about the content. It opens nothing.
"""

from __future__ import annotations

import re
import secrets as _random
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import InvalidInput, SecretNotFound, VaultError
from ..core.secrets import validate_name
from ..core.vault.api import Vault

REMOTES = "remotes"
BASES = "sync"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class RemoteNotFound(SecretNotFound):
    """No remote by that name (a not-found error: exit 4)."""

    def __init__(self, name: str) -> None:
        VaultError.__init__(self, f"no remote named '{name}' (see 'its-vault remote list')")
        self.name = name


# How a remote authenticates, and which fields its credentials secret must have.
AUTH_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    # each tuple: acceptable sources for one credential, the secret's value being "value"
    "token": (("token", "value"),),
    "approle": (("role_id",), ("secret_id", "value")),
    "aws-keys": (("access_key_id",), ("secret_access_key", "value")),
    "aws-chain": (),
}


@dataclass(frozen=True)
class Remote:
    name: str
    type: str
    folder: str  # local folder, "brokers/"; "" is the whole vault
    prefix: str  # where the folder lives on the remote
    options: dict[str, str] = field(default_factory=dict)
    auth: str = "token"
    credentials: str | None = None  # the name of the vault secret holding them
    token_salt: str = ""

    def covers(self, name: str) -> bool:
        return name.startswith(self.folder)

    def key_for(self, name: str) -> str:
        return self.prefix + name[len(self.folder):]

    def name_for(self, key: str) -> str:
        return self.folder + key[len(self.prefix):]

    def describe(self) -> str:
        """One line, for listings: where the folder goes."""
        folder = self.folder or "(whole vault)"
        if self.type == "aws":
            where = f"aws {self.options.get('region', '')}"
            if self.options.get("endpoint_url"):
                where += f" at {self.options['endpoint_url']}"
            target = f"{where}, names {self.prefix or '(no prefix)'}"
        else:
            target = f"{self.type} {self.options.get('url', '')}, mount {self.options.get('mount', '')}, " \
                     f"path {self.prefix or '(root)'}"
        how = {"token": "token from", "approle": "AppRole from", "aws-keys": "keys from"}.get(self.auth)
        creds = f"{how} '{self.credentials}'" if how else "the AWS credential chain"
        return f"{folder} <-> {target} ({creds})"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "folder": self.folder, "prefix": self.prefix, "options": dict(self.options),
                "auth": self.auth, "credentials": self.credentials, "token_salt": self.token_salt}

    @classmethod
    def from_json(cls, name: str, raw: dict) -> Remote:
        try:
            return cls(name, str(raw["type"]), str(raw["folder"]), str(raw["prefix"]),
                       {str(k): str(v) for k, v in dict(raw.get("options") or {}).items()},
                       str(raw.get("auth") or "token"), raw.get("credentials"), str(raw.get("token_salt") or ""))
        except (KeyError, TypeError, ValueError):
            raise InvalidInput(f"the settings of remote '{name}' are unreadable: remove it and add it again") from None


def normalize_folder(folder: str) -> str:
    """``brokers``, ``/brokers/`` → ``brokers/``; ``""`` or ``/`` → the whole vault."""
    folder = folder.strip().strip("/")
    if folder:
        validate_name(folder)
    return folder + "/" if folder else ""


def normalize_path_prefix(prefix: str) -> str:
    """A KV path prefix: no leading slash, one trailing slash (or empty: the mount's root)."""
    prefix = prefix.strip().strip("/")
    if prefix and any(not part for part in prefix.split("/")):
        raise InvalidInput(f"invalid path prefix '{prefix}': empty path segment")
    return prefix + "/" if prefix else ""


def make_remote(name: str, type: str, folder: str, prefix: str, options: dict[str, str], auth: str,
                credentials: str | None) -> Remote:
    """A new remote, checked and normalised (its salt drawn here)."""
    from .backends import kind

    if not _NAME.fullmatch(name):
        raise InvalidInput(f"invalid remote name '{name}': 1 to 64 letters, digits, '.', '_' or '-'")
    backend = kind(type)
    options = backend.check_options({k: v for k, v in options.items() if v})
    prefix = backend.normalize_prefix(prefix)
    if auth not in backend.auths:
        raise InvalidInput(f"a {type} remote authenticates with {' or '.join(backend.auths)}, not {auth}")
    if (credentials is None) != (auth == "aws-chain"):
        raise InvalidInput(f"{auth} authentication needs the name of a vault secret holding the credentials")
    return Remote(name, backend.type, normalize_folder(folder), prefix, options, auth, credentials,
                  _random.token_hex(16))


def list_remotes(vault: Vault) -> list[Remote]:
    raw = vault.settings().get(REMOTES) or {}
    return [Remote.from_json(name, raw[name]) for name in sorted(raw)]


def get_remote(vault: Vault, name: str) -> Remote:
    raw = (vault.settings().get(REMOTES) or {}).get(name)
    if raw is None:
        raise RemoteNotFound(name)
    return Remote.from_json(name, raw)


def check_credentials(vault: Vault, remote: Remote) -> None:
    """The credentials secret exists and has the fields its kind of auth needs (read without
    an audited access: only field names are looked at)."""
    if remote.credentials is None:
        return
    secret = vault.peek(remote.credentials)  # SecretNotFound: exit 4
    present = {name for name in secret.fields} | ({"value"} if secret.value else set())
    for sources in AUTH_FIELDS[remote.auth]:
        if not present.intersection(sources):
            wanted = " or ".join(f"field '{s}'" if s != "value" else "its value" for s in sources)
            raise InvalidInput(f"secret '{remote.credentials}' has no {wanted} (needed for {remote.auth} authentication)")


def add_remote(vault: Vault, remote: Remote) -> None:
    check_credentials(vault, remote)  # it may live in the synced folder: credentials are never synced

    def edit(settings: dict) -> None:
        remotes = settings.setdefault(REMOTES, {})
        if remote.name in remotes:
            raise InvalidInput(f"a remote named '{remote.name}' already exists (remove it first)")
        remotes[remote.name] = remote.to_json()

    vault.change_settings(edit, op="remote-add", detail=f"{remote.name}: {remote.type}")


def remove_remote(vault: Vault, name: str) -> None:
    """Forget a remote and its bases. Nothing is deleted on either side."""

    def edit(settings: dict) -> None:
        remotes = settings.get(REMOTES) or {}
        if name not in remotes:
            raise RemoteNotFound(name)
        del remotes[name]
        (settings.get(BASES) or {}).pop(name, None)

    vault.change_settings(edit, op="remote-rm", detail=name)


def credential_names(vault: Vault) -> set[str]:
    """Secrets that hold some remote's credentials: never synced anywhere."""
    return {r.credentials for r in list_remotes(vault) if r.credentials}


@dataclass(frozen=True, repr=False)
class Credentials:
    """The values a backend logs in with, read from the vault (an audited read). Never in a
    repr, an error or a log."""

    source: str
    values: dict[str, str]

    def __repr__(self) -> str:
        return f"<Credentials from '{self.source}'>"

    def pick(self, *names: str) -> str:
        for name in names:
            if self.values.get(name):
                return self.values[name]
        raise InvalidInput(f"secret '{self.source}' has no field '{names[0]}'")


def read_credentials(vault: Vault, remote: Remote) -> Credentials | None:
    if remote.credentials is None:
        return None
    secret = vault.get(remote.credentials)
    return Credentials(remote.credentials, {**secret.fields, "value": secret.value})
