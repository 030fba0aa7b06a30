"""OpenBao and HashiCorp Vault, KV secrets engine version 2, through hvac.

Every write carries ``cas`` (check-and-set, KV v2 ``POST /data/:path`` ``options.cas``): the
version we last saw, or 0 for "must not exist yet", so a write never overwrites a version we
have not seen. A deletion soft-deletes exactly the version we last saw (``POST
/delete/:path``), after checking it is still current: the store keeps it as a tombstone (and
it can be undeleted). Reads use ``GET /data/:path``, which gives the version, its time and the
data in one call, so listing brings every payload along.

One hvac client per thread (a requests session is not meant to be shared); all are closed by
``close``. With AppRole, a refused token triggers one new login and a retry, so a sync longer
than the token's TTL carries on.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, TypeVar

import hvac
import hvac.exceptions
import requests

from ..core.errors import BackendError, InvalidInput
from .backends import CasFailed, Listed, Progress, bounded, one_line, parse_time
from .engine import State, Version
from .remotes import Credentials, Remote

T = TypeVar("T")
DEFAULT_TIMEOUT = 15.0


class OpenBaoBackend:
    def __init__(self, url: str, mount: str, *, token: str | None = None,
                 approle: tuple[str, str] | None = None, approle_mount: str = "approle",
                 credentials_name: str = "?", workers: int = 8, timeout: float = DEFAULT_TIMEOUT) -> None:
        if (token is None) == (approle is None):
            raise InvalidInput("an openbao remote needs a token or an AppRole")
        self.url = url.rstrip("/")
        self.mount = mount.strip("/")
        self.description = f"openbao {self.url} mount {self.mount}"
        self._token = token
        self._approle = approle
        self._approle_mount = approle_mount
        self._source = credentials_name
        self._workers = max(1, workers)
        self._timeout = timeout
        self._local = threading.local()
        self._clients: list[hvac.Client] = []
        self._lock = threading.Lock()
        self._generation = 0  # grows with every AppRole login

    def __repr__(self) -> str:
        return f"<OpenBaoBackend {self.url} mount {self.mount}>"

    @classmethod
    def for_remote(cls, remote: Remote, credentials: Credentials | None, workers: int) -> OpenBaoBackend:
        if credentials is None:
            raise InvalidInput(f"remote '{remote.name}' names no credentials secret")
        common: dict[str, Any] = {"credentials_name": credentials.source, "workers": workers}
        if remote.auth == "approle":
            return cls(remote.options["url"], remote.options["mount"],
                       approle=(credentials.pick("role_id"), credentials.pick("secret_id", "value")),
                       approle_mount=credentials.values.get("mount") or "approle", **common)
        return cls(remote.options["url"], remote.options["mount"], token=credentials.pick("token", "value"), **common)

    # -- the Backend interface -----------------------------------------------------------------

    def check_key(self, key: str) -> str | None:
        if any(part in ("", ".", "..") for part in key.split("/")):
            return "not a valid KV path"
        return None

    def list(self, prefix: str, progress: Progress | None = None,
             cancel: threading.Event | None = None) -> dict[str, Listed]:
        keys = self._keys(prefix, cancel)
        found: dict[str, Listed] = {}
        if progress:
            progress(0, len(keys))
        for listed in bounded(self.read, keys, self._workers, cancel, progress):
            if listed.state is not State.ABSENT:
                found[listed.key] = listed
        return found

    def read(self, key: str) -> Listed:
        def go(client: hvac.Client) -> Listed:
            try:
                response = client.secrets.kv.v2.read_secret_version(path=key, mount_point=self.mount,
                                                                     raise_on_deleted_version=False)
            except hvac.exceptions.InvalidPath as exc:
                metadata = _metadata(exc.json)
                if metadata is None:
                    return Listed(key, State.ABSENT)
                return Listed(key, State.DELETED, _version(metadata), _deleted_at(metadata))  # destroyed
            data = response.get("data") or {}
            metadata = data.get("metadata") or {}
            if metadata.get("deletion_time") or metadata.get("destroyed") or data.get("data") is None:
                return Listed(key, State.DELETED, _version(metadata), _deleted_at(metadata))
            return Listed(key, State.PRESENT, _version(metadata), parse_time(metadata.get("created_time")),
                          data["data"])

        return self._call(go)

    def write(self, key: str, payload: dict, expected: Version | None, deleted: bool, request_id: str) -> Version:
        cas = 0 if expected is None else int(expected)

        def go(client: hvac.Client) -> Version:
            try:
                response = client.secrets.kv.v2.create_or_update_secret(path=key, secret=payload, cas=cas,
                                                                        mount_point=self.mount)
            except hvac.exceptions.InvalidRequest as exc:
                if "check-and-set" in " ".join(exc.errors or []).lower():
                    raise CasFailed(key) from None
                raise
            return int(response["data"]["version"])

        return self._call(go)

    def delete(self, key: str, expected: Version) -> None:
        def go(client: hvac.Client) -> None:
            kv = client.secrets.kv.v2
            try:
                metadata = kv.read_secret_metadata(path=key, mount_point=self.mount)["data"]
            except hvac.exceptions.InvalidPath:
                return  # already gone
            if int(metadata.get("current_version") or 0) != int(expected):
                raise CasFailed(key)
            kv.delete_secret_versions(path=key, versions=[int(expected)], mount_point=self.mount)

        self._call(go)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.adapter.close()

    # -- internals -----------------------------------------------------------------------------

    def _keys(self, prefix: str, cancel: threading.Event | None) -> list[str]:
        """Every key under ``prefix``, folder by folder (KV LIST shows one level)."""
        keys: list[str] = []
        folders = [prefix]
        while folders:
            found = list(bounded(self._list_folder, folders, self._workers, cancel))
            folders = []
            for folder, names in found:
                for name in names:
                    (folders if name.endswith("/") else keys).append(folder + name)
        return sorted(keys)

    def _list_folder(self, folder: str) -> tuple[str, list[str]]:
        def go(client: hvac.Client) -> tuple[str, list[str]]:
            try:
                response = client.secrets.kv.v2.list_secrets(path=folder, mount_point=self.mount)
            except hvac.exceptions.InvalidPath as exc:
                if any("no handler for route" in e for e in exc.errors or []):
                    raise BackendError(f"{self.url} has no KV version 2 secrets engine at mount '{self.mount}'") from None
                return folder, []
            return folder, [str(k) for k in (response.get("data") or {}).get("keys") or []]

        return self._call(go)

    def _client(self) -> hvac.Client:
        local = self._local
        client = getattr(local, "client", None)
        token = self._current_token()
        if client is None:
            client = hvac.Client(url=self.url, token=token, timeout=self._timeout)
            with self._lock:
                self._clients.append(client)
            local.client = client
        elif client.token != token:
            client.token = token
        return client

    def _current_token(self) -> str:
        with self._lock:
            if self._token is None:
                self._login_locked()
            assert self._token is not None
            return self._token

    def _login_locked(self) -> None:
        assert self._approle is not None
        client = hvac.Client(url=self.url, timeout=self._timeout)
        try:
            response = client.auth.approle.login(role_id=self._approle[0], secret_id=self._approle[1],
                                                 mount_point=self._approle_mount, use_token=False)
        except Exception as exc:
            raise self._translate(exc, login=True) from None
        finally:
            client.adapter.close()
        self._token = response["auth"]["client_token"]
        self._generation += 1

    def _relogin(self, generation: int) -> None:
        with self._lock:
            if self._generation == generation:  # not already renewed by another thread
                self._token = None
                self._login_locked()

    def _call(self, fn: Callable[[hvac.Client], T]) -> T:
        for attempt in (1, 2):
            generation = self._generation
            try:
                return fn(self._client())
            except BackendError:
                raise
            except hvac.exceptions.Forbidden as exc:
                if self._approle is not None and attempt == 1:
                    self._relogin(generation)
                    continue
                raise self._translate(exc) from None
            except Exception as exc:
                raise self._translate(exc) from None
        raise AssertionError("unreachable")

    def _translate(self, exc: BaseException, login: bool = False) -> BackendError:
        if isinstance(exc, BackendError):
            return exc
        if isinstance(exc, requests.exceptions.Timeout) and not isinstance(exc, requests.exceptions.ConnectTimeout):
            return BackendError(f"{self.url} did not answer within {self._timeout:g} s")
        if isinstance(exc, requests.exceptions.RequestException):  # refused, reset, cut mid-answer
            return BackendError(f"cannot reach {self.url}: the connection failed (is the server running?)")
        refused = (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized)
        if isinstance(exc, refused) or (login and isinstance(exc, hvac.exceptions.InvalidRequest)):
            what = "AppRole login" if self._approle is not None else "token"
            return BackendError(f"{self.url} refused the {what} from secret '{self._source}' (expired, revoked "
                                f"or without access to mount '{self.mount}'): update that secret")
        if isinstance(exc, hvac.exceptions.VaultDown):
            return BackendError(f"{self.url} is sealed or unavailable")
        if isinstance(exc, hvac.exceptions.VaultError):
            detail = one_line("; ".join(exc.errors or []) or type(exc).__name__)
            return BackendError(f"{self.url} answered: {detail}")
        return BackendError(f"{self.url}: unexpected {type(exc).__name__}")


def _metadata(body: Any) -> dict | None:
    if isinstance(body, dict) and isinstance(body.get("data"), dict) and isinstance(body["data"].get("metadata"), dict):
        return body["data"]["metadata"]
    return None


def _version(metadata: dict) -> int | None:
    version = metadata.get("version")
    return int(version) if isinstance(version, int) else None


def _deleted_at(metadata: dict):
    return parse_time(metadata.get("deletion_time")) or parse_time(metadata.get("created_time"))
