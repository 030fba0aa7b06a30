"""The interface a secret store implements to be synced with, and the registry of stores.

A backend is one module that alone imports its SDK (``openbao`` → hvac, ``aws`` → boto3). It
moves JSON objects under string keys and knows nothing of vaults, bases or plans:

- ``list(prefix)``: every key under the prefix with its current version, last change and
  whether it is deleted (a tombstone); the payload too when the store gives it for free;
- ``read(key)``, ``write(key, payload, expected, …)`` and ``delete(key, expected)``, where
  ``expected`` is the version the caller last saw: a write or delete that finds another
  version raises ``CasFailed`` and changes nothing it cannot undo;
- every other failure is a ``BackendError`` with a one-line message that names no secret value.

Adding Azure Key Vault or GCP Secret Manager is one module with such a class and one
``BackendKind`` line below (tests/unit/test_sync_engine.py checks that every kind opens).
"""

from __future__ import annotations

import itertools
import re
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol, TypeVar

from ..core.errors import BackendError, InvalidInput
from .engine import State, Version

if TYPE_CHECKING:
    from .remotes import Credentials, Remote

Progress = Callable[[int, int], None]
A = TypeVar("A")
T = TypeVar("T")


class CasFailed(BackendError):
    """Someone else wrote the key since we read it: nothing was overwritten."""

    def __init__(self, key: str) -> None:
        super().__init__(f"'{key}' changed on the remote since it was read")
        self.key = key


class Cancelled(BackendError):
    def __init__(self) -> None:
        super().__init__("sync cancelled")


@dataclass(frozen=True)
class Listed:
    """One key as the store reports it. ``raw`` (the payload) is there when the listing
    brought it; it holds a value, so it is kept out of the repr."""

    key: str
    state: State
    version: Version | None = None
    time: datetime | None = None
    raw: Any = field(default=None, repr=False)


class Backend(Protocol):
    description: str

    def check_key(self, key: str) -> str | None:
        """Why this store cannot hold ``key``, or None."""
        ...

    def list(self, prefix: str, progress: Progress | None = None,
             cancel: threading.Event | None = None) -> dict[str, Listed]: ...

    def read(self, key: str) -> Listed: ...

    def write(self, key: str, payload: dict, expected: Version | None, deleted: bool, request_id: str) -> Version:
        """Store ``payload`` as the new current version, only if the current one is still
        ``expected`` (None: the key must not exist; ``deleted``: it is a tombstone).
        ``request_id`` is stable across retries of the same write, for stores that make
        writes idempotent with it. Returns the new version."""
        ...

    def delete(self, key: str, expected: Version) -> None:
        """Delete, leaving the store's own tombstone, only if ``expected`` is current."""
        ...

    def close(self) -> None: ...


def bounded(fn: Callable[[A], T], args: list[A], workers: int, cancel: threading.Event | None = None,
            progress: Progress | None = None) -> Iterator[T]:
    """``fn`` over ``args`` on a pool of ``workers`` threads with at most twice that many calls
    queued, results in completion order. A cancel or the first error stops what has not started
    (what is running finishes) and is raised."""
    if not args:
        return
    with ThreadPoolExecutor(min(workers, len(args)), thread_name_prefix="its-sync") as pool:
        queue = iter(args)
        pending = {pool.submit(fn, arg) for arg in itertools.islice(queue, workers * 2)}
        done_count = 0
        try:
            while pending:
                done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                for future in done:
                    yield future.result()
                    done_count += 1
                if progress and done:
                    progress(done_count, len(args))
                pending |= {pool.submit(fn, arg) for arg in itertools.islice(queue, len(done))}
        finally:
            for future in pending:
                future.cancel()


def parse_time(text: Any) -> datetime | None:
    """RFC 3339 as stores write it (nanoseconds, ``Z``) → an aware datetime; junk → None."""
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=timezone.utc)
    if not isinstance(text, str) or not text:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.strip())
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def one_line(text: object, limit: int = 160) -> str:
    """A server's message, fit for a one-line error."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


# -- the registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendKind:
    type: str
    title: str
    auths: tuple[str, ...]  # accepted ``Remote.auth`` values
    normalize_prefix: Callable[[str], str]
    check_options: Callable[[dict[str, str]], dict[str, str]]
    open: Callable[[Remote, Credentials | None, int], Backend]  # imports the SDK when called


def _url(raw: str | None, what: str) -> str:
    if not raw or not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", raw):
        raise InvalidInput(f"{what} must be an http:// or https:// URL")
    return raw.rstrip("/")


def _openbao_options(options: dict[str, str]) -> dict[str, str]:
    mount = (options.get("mount") or "").strip("/")
    if not mount or any(not part for part in mount.split("/")):
        raise InvalidInput("an openbao remote needs --mount, the KV version 2 engine's path (e.g. secret)")
    return {"url": _url(options.get("url"), "--url"), "mount": mount}


def _aws_options(options: dict[str, str]) -> dict[str, str]:
    region = options.get("region") or ""
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d{1,2}", region):
        raise InvalidInput(f"--region must be an AWS region such as us-east-1, not '{region}'")
    result = {"region": region}
    if options.get("endpoint_url"):
        result["endpoint_url"] = _url(options["endpoint_url"], "--endpoint-url")
    return result


AWS_NAME_CHARS = re.compile(r"[A-Za-z0-9/_+=.@-]+")


def _aws_prefix(prefix: str) -> str:
    prefix = prefix.strip()
    if prefix and not AWS_NAME_CHARS.fullmatch(prefix):
        raise InvalidInput("an AWS name prefix may hold only letters, digits and /_+=.@-")
    return prefix


def _open_openbao(remote: Remote, credentials: Credentials | None, workers: int) -> Backend:
    from .openbao import OpenBaoBackend

    return OpenBaoBackend.for_remote(remote, credentials, workers)


def _open_aws(remote: Remote, credentials: Credentials | None, workers: int) -> Backend:
    from .aws import AwsBackend

    return AwsBackend.for_remote(remote, credentials, workers)


def _kv_prefix(prefix: str) -> str:
    from .remotes import normalize_path_prefix

    return normalize_path_prefix(prefix)


KINDS: tuple[BackendKind, ...] = (
    BackendKind("openbao", "OpenBao / HashiCorp Vault KV version 2", ("token", "approle"),
                _kv_prefix, _openbao_options, _open_openbao),
    BackendKind("aws", "AWS Secrets Manager", ("aws-keys", "aws-chain"), _aws_prefix, _aws_options, _open_aws),
)
ALIASES = {"vault": "openbao", "hashicorp": "openbao"}


def kind(type: str) -> BackendKind:
    type = ALIASES.get(type, type)
    for candidate in KINDS:
        if candidate.type == type:
            return candidate
    raise InvalidInput(f"unknown remote type '{type}' (choose from {', '.join(k.type for k in KINDS)})")


def open_backend(remote: Remote, credentials: Credentials | None, workers: int = 8) -> Backend:
    return kind(remote.type).open(remote, credentials, workers)
