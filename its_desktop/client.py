"""Secrets for bots, read through the agent of the unlocked vault.

```python
from its_desktop.client import get_secret, get_its_secret

api_key = get_secret("brokers/ibkr/api_key")                     # raises if it cannot be read
account = get_secret("brokers/ibkr/api_key", field="account")
token = get_its_secret("alerts/telegram", env_fallback=True)      # else $ALERTS_TELEGRAM
```

The agent runs while the vault is unlocked: in ITS Desktop, or headless with ``its-vault
agent``. The first read of a program the user has not approved asks in the app (or, headless,
is refused with the ``its-vault grant add`` line that would allow it). Nothing falls back to the
environment unless the caller asks for it (``env_fallback=True``): a bot that expects the vault
learns clearly that it is locked instead of silently running on stale variables.

Importing this module costs a fresh interpreter about a millisecond (no ``json``, ``socket``,
``typing`` or ``cryptography``), and a process keeps one connection for all its reads.
"""

from __future__ import annotations

import os
import sys

import _socket
import _thread

from .agent import protocol as _wire
from .envconfig import RedactedDict, alert_config, database_config, env_name  # noqa: F401 (RedactedDict, env_name: re-exported)
from .agent.protocol import (  # noqa: F401 (re-exported: what callers catch)
    AccessDenied,
    AgentError,
    AgentLocked,
    AgentSecretNotFound,
    AgentTimeout,
    AgentUnavailable,
)

__all__ = ["AgentClient", "get_secret", "get_its_secret", "get_database_config", "get_alert_config",
           "AgentError", "AgentUnavailable", "AccessDenied", "AgentLocked", "AgentSecretNotFound", "AgentTimeout"]

CONNECT_TIMEOUT = 5.0
# A read may wait for the user to answer the app's question (the agent gives up after 120 s).
APPROVAL_TIMEOUT = 150.0
_NOT_RUNNING = "no agent is running: unlock ITS Desktop, or start 'its-vault agent'"


class AgentClient:
    """One connection to the agent. Thread-safe; reconnects once if the agent restarted.

    ``prompt=False`` on a read means: if this program has no grant, fail now rather than ask the
    user (what a command line given the master password wants)."""

    def __init__(self, path: str | None = None, timeout: float = APPROVAL_TIMEOUT) -> None:
        self.path = path or _wire.socket_path()
        self.timeout = timeout
        self._sock = None
        self._buffer = bytearray()
        self._next_id = 0
        self._timeout: float | None = None  # the one set on the socket
        self._lock = _thread.allocate_lock()

    def __repr__(self) -> str:
        return f"<AgentClient {self.path}>"

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection ------------------------------------------------------------------------

    def connect(self) -> AgentClient:
        """Connect now (reads connect on demand). AgentUnavailable if no agent answers, or if
        the socket belongs to another user (someone else's agent must not feed us values)."""
        with self._lock:
            self._connect()
        return self

    def _connect(self) -> None:
        if self._sock is not None:
            return
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(self.path)
            owner = int.from_bytes(sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)[4:8], sys.byteorder)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            sock.close()
            raise AgentUnavailable(_NOT_RUNNING) from None
        except PermissionError:
            sock.close()
            raise AgentUnavailable(f"cannot reach the agent at {self.path}: permission denied "
                                   "(it serves only the user who unlocked the vault)") from None
        except OSError as error:
            sock.close()
            raise AgentUnavailable(f"cannot reach the agent at {self.path}: {error.strerror or error}") from None
        if owner != os.getuid():
            sock.close()
            raise AgentUnavailable(f"the agent socket {self.path} belongs to another user (uid {owner}): not used")
        # Blocking, with the kernel's timeouts: a Python timeout would poll() before every send
        # and recv, two more system calls per read.
        sock.settimeout(None)
        self._sock = sock
        self._timeout = None
        self._buffer.clear()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        self._buffer.clear()
        if sock is not None:
            sock.close()

    # -- requests --------------------------------------------------------------------------

    def request(self, message: dict, timeout: float | None = None) -> dict:
        """Send one request and return the reply when ``ok``; raise the error it carries
        otherwise (AccessDenied, AgentLocked, AgentSecretNotFound...)."""
        with self._lock:
            for attempt in (1, 2):
                fresh = self._sock is None
                self._connect()
                try:
                    reply = self._exchange(message, timeout)
                    break
                except (BrokenPipeError, ConnectionResetError, EOFError):
                    self._drop()
                    if fresh or attempt == 2:  # a new connection dropped: the agent refused it
                        raise AgentUnavailable("the agent closed the connection") from None
                except (TimeoutError, BlockingIOError):
                    self._drop()
                    raise AgentTimeout("the agent did not answer in time") from None
                except OSError as error:
                    self._drop()
                    raise AgentUnavailable(f"lost the connection to the agent: {error.strerror or error}") from None
        if reply.get("ok") is True:
            return reply
        raise _wire.error_from_reply(reply)

    def _exchange(self, message: dict, timeout: float | None) -> dict:
        sock = self._sock
        self._next_id += 1
        request_id = self._next_id
        timeout = self.timeout if timeout is None else timeout
        if timeout != self._timeout:
            _set_kernel_timeout(sock, timeout)
            self._timeout = timeout
        sock.sendall(_wire.encode_frame({"v": _wire.VERSION, "id": request_id, **message}))
        buffer = self._buffer
        while True:
            if not buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    raise EOFError
                buffer += chunk
            try:
                payload = _wire.take_frame(buffer, _wire.MAX_REPLY)
            except _wire.AgentTooLarge:
                self._drop()
                raise AgentUnavailable("the agent sent a reply larger than 16 MiB") from None
            if payload is not None:
                try:
                    reply = _wire.decode_payload(payload)
                except _wire.AgentBadRequest:
                    self._drop()
                    raise AgentUnavailable("the agent sent a malformed reply") from None
                if reply.get("id") in (request_id, None):
                    return reply
                continue  # a late reply to an earlier request that timed out
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError
            buffer += chunk

    def get(self, name: str, field: str | None = None, prompt: bool = True) -> str:
        return self.read(name, field, prompt)["value"]

    def read(self, name: str, field: str | None = None, prompt: bool = True) -> dict:
        """The whole reply of a read: ``value``, and ``expired`` (a date) if the secret has."""
        message: dict = {"op": "get", "name": name}
        if field is not None:
            message["field"] = field
        if not prompt:
            message["prompt"] = False
        return self.request(message)

    def get_with_fields(self, name: str, prompt: bool = True) -> tuple[str, dict]:
        """The value and every field of a secret, in one read."""
        message: dict = {"op": "get", "name": name, "with_fields": True}
        if not prompt:
            message["prompt"] = False
        reply = self.request(message)
        return reply["value"], reply.get("fields") or {}

    def list(self, prefix: str = "", prompt: bool = True) -> list:
        """The names under ``prefix`` this program may read (never values)."""
        return self.request({"op": "list", "prefix": prefix, "prompt": prompt})["names"]

    def list_rows(self, prefix: str = "", prompt: bool = True) -> list:
        """Every secret's listing metadata under ``prefix`` (what ``its-vault list --json``
        prints; never values). Needs a grant covering all of ``prefix``."""
        return self.request({"op": "list", "prefix": prefix, "meta": True, "complete": True, "prompt": prompt})["rows"]

    def status(self) -> dict:
        return self.request({"op": "status"}, timeout=CONNECT_TIMEOUT)

    def lock(self) -> None:
        """Ask the agent (or the app) to lock the vault now."""
        self.request({"op": "lock"}, timeout=CONNECT_TIMEOUT)

    def lockdown(self) -> dict:
        """Ask the agent (or the app) for an emergency lockdown: it revokes every grant, marks
        every secret "rotate now" and locks. ``done`` is false when it was locked already."""
        return self.request({"op": "lockdown"}, timeout=LOCKDOWN_TIMEOUT)


LOCKDOWN_TIMEOUT = 30.0  # one save of every secret's summary, behind the vault's writer lock


def _set_kernel_timeout(sock, seconds: float) -> None:
    """SO_RCVTIMEO and SO_SNDTIMEO (a struct timeval); where they cannot be set, Python's own
    timeout instead."""
    whole = int(seconds)
    timeval = whole.to_bytes(8, sys.byteorder) + int((seconds - whole) * 1e6).to_bytes(8, sys.byteorder)
    try:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDTIMEO, timeval)
    except OSError:
        sock.settimeout(seconds)


# -- the module functions: one shared connection per process ---------------------------------

_shared: AgentClient | None = None
_shared_lock = _thread.allocate_lock()


def _client() -> AgentClient:
    global _shared
    path = _wire.socket_path()
    with _shared_lock:
        if _shared is None or _shared.path != path:
            if _shared is not None:
                _shared.close()
            else:
                import atexit

                atexit.register(_close_shared)
            _shared = AgentClient(path)
        return _shared


def _close_shared() -> None:
    if _shared is not None:
        _shared.close()


def get_secret(name: str, field: str | None = None) -> str:
    """The secret's value (or one of its fields) from the unlocked vault. Raises
    AgentSecretNotFound, AccessDenied, AgentLocked or AgentUnavailable, each with a sentence
    saying what to do."""
    return _client().get(name, field)


def get_its_secret(name: str, default: str | None = None, *, env_fallback: bool = False) -> str | None:
    """The secret's value; ``default`` when the vault has no such secret. With
    ``env_fallback``, ``$NAME_IN_CAPS`` (or ``$name``) is used when the vault has no such
    secret *or cannot be read* (no agent, locked, not granted); without it those raise."""
    try:
        return get_secret(name)
    except AgentSecretNotFound:
        if env_fallback:
            return _from_env(name, default)
        return default
    except AgentError:
        if env_fallback:
            return _from_env(name, default)
        raise


def _from_env(name: str, default: str | None) -> str | None:
    return os.environ.get(env_name(name), os.environ.get(name, default))


def _reader(env_fallback: bool, missing_ok: bool):
    """A secret reader for ``envconfig``: (value, fields), or None when the secret is missing
    (if that is fine) or cannot be read and the caller asked for the environment."""

    def read(name: str) -> tuple[str, dict] | None:
        try:
            value, fields = _client().get_with_fields(name)
        except AgentSecretNotFound:
            if missing_ok or env_fallback:
                return None
            raise
        except AgentError:
            if env_fallback:
                return None
            raise
        return value, fields

    return read


def get_database_config(name: str | None = None, *, env_fallback: bool = False) -> dict:
    """host, port, user, password, dbname of a ``database`` secret (default ``database/main``
    or ``$ITS_DATABASE_SECRET``: value = password; fields host, port, user or username, dbname or
    database). With ``env_fallback``, ``DB_*`` or libpq's ``PG*`` variables when it cannot be
    read."""
    name = name or os.environ.get("ITS_DATABASE_SECRET", "database/main")
    return database_config(_reader(env_fallback, missing_ok=False)(name), from_env=env_fallback)


def get_alert_config(*, env_fallback: bool = False) -> dict:
    """Telegram, Slack and e-mail alert settings (see ``envconfig.alert_config``); a channel
    the vault does not hold is left empty (None), or, with ``env_fallback``, read from the usual
    environment variables."""
    return alert_config(_reader(env_fallback, missing_ok=True), from_env=env_fallback)
