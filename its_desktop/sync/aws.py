"""AWS Secrets Manager through boto3.

A version is a ``VersionId`` and the current one wears the ``AWSCURRENT`` staging label. A
write is idempotent and checked:

1. ``PutSecretValue`` with a ``ClientRequestToken`` derived from the version we last saw and the
   content (same token, same value: AWS ignores the repeat; see ``Syncer``), staged only as
   ``ITS_SYNC``, so nothing reads it yet;
2. ``UpdateSecretVersionStage`` moves ``AWSCURRENT`` to it *from the version we last saw*
   (``RemoveFromVersionId``): if someone else wrote meanwhile, that label is elsewhere and AWS
   refuses, which is our check-and-set. AWS moves ``AWSPREVIOUS`` to the old version itself,
   so rotation stages and ``get-secret-value --version-stage AWSPREVIOUS`` keep working.

A new secret is ``CreateSecret`` (fails if the name exists: someone else created it). A
deletion is ``DeleteSecret`` with AWS's recovery window (30 days), after checking that
``AWSCURRENT`` is still the version we last saw; the secret stays listed as scheduled for
deletion, which is the tombstone other machines see, and a later push restores it first.

Credentials come from a vault secret (``access_key_id``, ``secret_access_key``, optional
``session_token``) or, without one, from boto3's standard chain (environment, shared files,
instance roles). A boto3 client is thread-safe; one is shared by all workers.
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any, Callable, TypeVar

import boto3
import botocore.config
import botocore.exceptions

from ..core.errors import BackendError
from .backends import AWS_NAME_CHARS, Cancelled, CasFailed, Listed, Progress, one_line, parse_time
from .engine import State, Version
from .remotes import Credentials, Remote

T = TypeVar("T")
MAX_NAME = 512
CURRENT = "AWSCURRENT"
PUSH_STAGE = "ITS_SYNC"
_REFUSED = {"UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException", "ExpiredToken",
            "ExpiredTokenException", "AccessDeniedException", "AccessDenied", "SignatureDoesNotMatch",
            "IncompleteSignature", "MissingAuthenticationToken"}


class AwsBackend:
    def __init__(self, region: str, *, endpoint_url: str | None = None, credentials: Credentials | None = None,
                 workers: int = 8, timeout: float = 15.0) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.where = f"AWS Secrets Manager ({region}{' at ' + endpoint_url if endpoint_url else ''})"
        self.description = f"aws {region}" + (f" at {endpoint_url}" if endpoint_url else "")
        self._source = credentials.source if credentials else None
        keys: dict[str, Any] = {}
        if credentials is not None:
            keys = {"aws_access_key_id": credentials.pick("access_key_id"),
                    "aws_secret_access_key": credentials.pick("secret_access_key", "value"),
                    "aws_session_token": credentials.values.get("session_token") or None}
        config = botocore.config.Config(
            max_pool_connections=max(10, workers * 2), connect_timeout=5, read_timeout=timeout,
            retries={"max_attempts": 3, "mode": "standard"},
        )
        try:
            session = boto3.session.Session(region_name=region, **keys)
            self._client = session.client("secretsmanager", endpoint_url=endpoint_url, config=config)
        except botocore.exceptions.BotoCoreError as exc:
            raise self._translate(exc) from None

    def __repr__(self) -> str:
        return f"<AwsBackend {self.description}>"

    @classmethod
    def for_remote(cls, remote: Remote, credentials: Credentials | None, workers: int) -> AwsBackend:
        return cls(remote.options["region"], endpoint_url=remote.options.get("endpoint_url"),
                   credentials=credentials, workers=workers)

    # -- the Backend interface -----------------------------------------------------------------

    def check_key(self, key: str) -> str | None:
        if len(key) > MAX_NAME or not AWS_NAME_CHARS.fullmatch(key):
            return "AWS names allow only letters, digits and /_+=.@- (at most 512)"
        return None

    def list(self, prefix: str, progress: Progress | None = None,
             cancel: threading.Event | None = None) -> dict[str, Listed]:
        def go() -> dict[str, Listed]:
            found: dict[str, Listed] = {}
            options: dict[str, Any] = {"IncludePlannedDeletion": True, "PaginationConfig": {"PageSize": 100}}
            if prefix:
                options["Filters"] = [{"Key": "name", "Values": [prefix]}]  # a case-insensitive prefix match
            for page in self._client.get_paginator("list_secrets").paginate(**options):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                for entry in page.get("SecretList", []):
                    name = entry.get("Name", "")
                    if name.startswith(prefix):
                        found[name] = self._listed(name, entry)
                if progress:
                    progress(len(found), len(found))
            return found

        return self._call(go)

    def read(self, key: str) -> Listed:
        def go() -> Listed:
            try:
                # The stage is AWS's default; named, because moto's GetSecretValue otherwise
                # returns the version that was current before an UpdateSecretVersionStage.
                response = self._client.get_secret_value(SecretId=key, VersionStage=CURRENT)
            except botocore.exceptions.ClientError as exc:
                code = _code(exc)
                if code == "ResourceNotFoundException":
                    return Listed(key, State.ABSENT)
                if code == "InvalidRequestException":  # scheduled for deletion
                    return self._listed(key, self._client.describe_secret(SecretId=key))
                raise
            raw = response.get("SecretString")
            if raw is None and response.get("SecretBinary") is not None:
                raw = base64.b64encode(response["SecretBinary"]).decode("ascii")
            return Listed(key, State.PRESENT, response.get("VersionId"), parse_time(response.get("CreatedDate")), raw)

        return self._call(go)

    def write(self, key: str, payload: dict, expected: Version | None, deleted: bool, request_id: str) -> Version:
        text = json.dumps(payload, ensure_ascii=False, sort_keys=True)

        def go() -> Version:
            if expected is None:
                try:
                    response = self._client.create_secret(Name=key, SecretString=text, ClientRequestToken=request_id)
                except botocore.exceptions.ClientError as exc:
                    if _code(exc) == "ResourceExistsException":
                        raise CasFailed(key) from None
                    raise
                return str(response["VersionId"])
            if deleted:
                self._client.restore_secret(SecretId=key)
            try:
                response = self._client.put_secret_value(SecretId=key, SecretString=text, ClientRequestToken=request_id,
                                                         VersionStages=[PUSH_STAGE])
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in ("ResourceNotFoundException", "ResourceExistsException"):
                    raise CasFailed(key) from None
                raise
            version = str(response["VersionId"])
            if version != expected:
                try:
                    self._client.update_secret_version_stage(SecretId=key, VersionStage=CURRENT,
                                                             MoveToVersionId=version, RemoveFromVersionId=str(expected))
                except botocore.exceptions.ClientError as exc:
                    if _code(exc) in ("InvalidParameterException", "ResourceNotFoundException"):
                        raise CasFailed(key) from None
                    raise
            return version

        return self._call(go)

    def delete(self, key: str, expected: Version) -> None:
        def go() -> None:
            try:
                described = self._client.describe_secret(SecretId=key)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) == "ResourceNotFoundException":
                    return
                raise
            if described.get("DeletedDate"):
                return  # already scheduled for deletion
            if _current(described.get("VersionIdsToStages") or {}) != expected:
                raise CasFailed(key)
            self._client.delete_secret(SecretId=key)

        self._call(go)

    def close(self) -> None:
        self._client.close()

    # -- internals -----------------------------------------------------------------------------

    def _listed(self, name: str, entry: dict) -> Listed:
        version = _current(entry.get("SecretVersionsToStages") or entry.get("VersionIdsToStages") or {})
        if entry.get("DeletedDate") or version is None:
            # DeletedDate is when the deletion becomes final (the end of the recovery window),
            # not when it was asked for: the time of the deletion is unknown.
            return Listed(name, State.DELETED, version, None)
        return Listed(name, State.PRESENT, version, parse_time(entry.get("LastChangedDate")))

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except BackendError:
            raise
        except Exception as exc:
            raise self._translate(exc) from None

    def _translate(self, exc: BaseException) -> BackendError:
        if isinstance(exc, (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError)):
            return BackendError("no AWS credentials: name a vault secret with --credentials-secret, or set up "
                                "the AWS chain (environment, ~/.aws, an instance role)")
        if isinstance(exc, botocore.exceptions.NoRegionError):
            return BackendError("no AWS region: give the remote --region")
        if isinstance(exc, botocore.exceptions.ReadTimeoutError):
            return BackendError(f"{self.where} did not answer in time")
        if isinstance(exc, (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)):
            return BackendError(f"cannot reach {self.where}: the connection failed")  # refused, reset, closed
        if isinstance(exc, botocore.exceptions.ClientError):
            code = _code(exc)
            if code in _REFUSED:
                source = f"the keys in secret '{self._source}'" if self._source else "the credentials of the AWS chain"
                return BackendError(f"{self.where} refused {source} ({code}): they are expired, wrong or lack permission")
            return BackendError(f"{self.where} answered {code}: {one_line(exc.response.get('Error', {}).get('Message', ''))}")
        if isinstance(exc, botocore.exceptions.BotoCoreError):
            return BackendError(f"{self.where}: {one_line(exc)}")
        if isinstance(exc, (KeyError, ValueError, TypeError)):
            # An answer missing what every answer carries: a server dying mid-reply sends that.
            return BackendError(f"{self.where} gave an incomplete answer (is it shutting down?)")
        return BackendError(f"{self.where}: unexpected {type(exc).__name__}")


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _current(stages: dict[str, list[str]]) -> str | None:
    return next((version for version, labels in stages.items() if CURRENT in labels), None)
