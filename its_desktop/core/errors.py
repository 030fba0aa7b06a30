"""The typed errors of the vault core.

Each subclass writes its own one-line sentence for the user. Messages name secrets at most,
never their values. Only ``cli`` and the GUI's runner turn these into exit codes or dialogs.
"""

from __future__ import annotations


class VaultError(Exception):
    """Base of every error the vault reports to a user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class WrongCredentials(VaultError):
    """No key slot opened with what was offered (password, code or key)."""

    def __init__(self, message: str = "wrong password or key") -> None:
        super().__init__(message)


class IncorrectFactor(WrongCredentials):
    """This slot did not open with this factor; the caller tries the next slot."""


class VaultCorrupted(VaultError):
    """The file is damaged, tampered with, truncated, or not a vault at all."""


class UnsupportedVersion(VaultCorrupted):
    """A vault written by a newer (or unknown) format version."""


class AuditTampered(VaultCorrupted):
    """The audit chain does not verify; ``seq`` is the first bad record."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"audit log tampered at record {seq}: {reason}")
        self.seq = seq
        self.reason = reason


class VaultLocked(VaultError):
    """An operation needs an unlocked vault."""

    def __init__(self, message: str = "the vault is locked") -> None:
        super().__init__(message)


class VaultNotFound(VaultError):
    """No vault file at the given path."""

    def __init__(self, path: str) -> None:
        super().__init__(f"no vault at {path} (create one with 'its-vault init')")


class VaultExists(VaultError):
    """Refuse to overwrite an existing vault."""

    def __init__(self, path: str) -> None:
        super().__init__(f"a vault already exists at {path}")


class SecretNotFound(VaultError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no secret named '{name}'")
        self.name = name


class FieldNotFound(SecretNotFound):
    def __init__(self, name: str, field: str) -> None:
        VaultError.__init__(self, f"secret '{name}' has no field '{field}'")
        self.name = name


class VersionNotFound(SecretNotFound):
    def __init__(self, name: str, version: int) -> None:
        VaultError.__init__(self, f"secret '{name}' has no version {version} in its history")
        self.name = name


class SecretExpired(VaultError):
    def __init__(self, name: str, when: str) -> None:
        super().__init__(f"secret '{name}' expired on {when}")
        self.name = name


class ConcurrencyError(VaultError):
    """Another process changed the vault in a way this session cannot follow."""


class VaultBusy(ConcurrencyError):
    """Another writer held the vault's lock for longer than the bounded wait."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the vault is locked by another writer (waited {seconds:g} s)")


class InvalidInput(VaultError):
    """Malformed user input: a name, a .env line, a parameter out of range."""


class BackendError(VaultError):
    """A sync backend or remote store failed."""
