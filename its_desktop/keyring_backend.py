"""A ``keyring`` backend: ``keyring.get_password("its", "brokers/ibkr/api_key")`` in any Python
program returns the secret while the vault is unlocked (through the agent, so the program must
be granted like any other client). ``USERNAME`` may end in ``#field`` for one of its fields.

Registered through keyring's entry points (``[project.entry-points."keyring.backends"]`` in
pyproject.toml). Only the services ``its`` and ``its-desktop`` are ours: for any other service
``get_password`` returns None and the other methods raise NotImplementedError, so keyring's
chainer moves on to the user's usual keyring. Secrets are read-only here: they are set in the
app or with ``its-vault set``.
"""

from __future__ import annotations

from keyring.backend import KeyringBackend
from keyring.errors import KeyringError, KeyringLocked, PasswordDeleteError, PasswordSetError

SERVICES = ("its", "its-desktop")


class ItsKeyring(KeyringBackend):
    """The ITS Desktop vault, read through the running agent."""

    # Above the desktop keyrings (Secret Service 5, KWallet 4.9), so that with several viable
    # backends keyring's chainer asks us first; we answer only for our services.
    priority = 9

    def get_password(self, service: str, username: str) -> str | None:
        if service not in SERVICES:
            return None
        from .client import AgentError, AgentLocked, AgentSecretNotFound, AgentUnavailable, _client

        name, _, field = username.partition("#")
        try:
            return _client().get(name, field or None)
        except AgentSecretNotFound:
            return None
        except (AgentLocked, AgentUnavailable) as error:
            raise KeyringLocked(f"the ITS vault is locked or not running ({error})") from None
        except AgentError as error:
            raise KeyringError(str(error)) from None

    def set_password(self, service: str, username: str, password: str) -> None:
        if service not in SERVICES:
            raise NotImplementedError
        raise PasswordSetError("ITS Desktop secrets are read-only through keyring: set them in the app "
                               "or with 'its-vault set'")

    def delete_password(self, service: str, username: str) -> None:
        if service not in SERVICES:
            raise NotImplementedError
        raise PasswordDeleteError("ITS Desktop secrets are read-only through keyring: remove them in the app "
                                  "or with 'its-vault rm'")
