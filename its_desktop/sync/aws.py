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

The ``aws`` rotator uses AWS's own rotation stages instead (``put_pending``, ``read_stage``,
``move_current``): the new version is staged ``AWSPENDING``, read back, then ``AWSCURRENT`` moves
to it with the same check-and-set.

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
PENDING = "AWSPENDING"
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
        # The stage is AWS's default; named, because moto's GetSecretValue otherwise returns
        # the version that was current before an UpdateSecretVersionStage.
        return self.read_stage(key, CURRENT)

    def write(self, key: str, payload: dict, expected: Version | None, deleted: bool, request_id: str) -> Version:
        text = _text(payload)

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
                version = self._put(key, text, request_id, PUSH_STAGE)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) == "ResourceExistsException":
                    raise CasFailed(key) from None
                raise
            if version != expected:
                self._move_current(key, version, str(expected))
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

    # -- rotation: AWS's own stages (rotators/aws.py), beside the Backend interface -------------

    def read_stage(self, key: str, stage: str) -> Listed:
        """The version wearing ``stage`` with its payload; ABSENT when no version wears it."""

        def go() -> Listed:
            try:
                response = self._client.get_secret_value(SecretId=key, VersionStage=stage)
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

    def put_pending(self, key: str, payload: dict, request_id: str) -> Version:
        """A new version staged ``AWSPENDING`` only: nothing reads it as current yet. The same
        ``request_id`` with the same payload is the same version (AWS ignores the repeat), so a
        resumed rotation does not make a second one; if that version lost ``AWSPENDING``
        meanwhile (another tool's doing), it is staged again. CasFailed if the secret is gone."""
        text = _text(payload)

        def go() -> Version:
            try:
                version = self._put(key, text, request_id, PENDING)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) == "ResourceExistsException":  # AWS never changes a version's content
                    raise BackendError(f"{self.where} already has a version of '{key}' made with this request "
                                       f"token, with other content") from None
                raise
            stages = self._client.describe_secret(SecretId=key).get("VersionIdsToStages") or {}
            if not {PENDING, CURRENT} & set(stages.get(version) or []):
                holder = next((v for v, labels in stages.items() if PENDING in labels), None)
                self._client.update_secret_version_stage(SecretId=key, VersionStage=PENDING, MoveToVersionId=version,
                                                         **({"RemoveFromVersionId": holder} if holder else {}))
            return version

        return self._call(go)

    def move_current(self, key: str, version: Version, expected: Version) -> None:
        """``AWSCURRENT`` to ``version`` from ``expected`` (CasFailed when someone else moved it),
        then ``AWSPENDING`` off ``version`` (AWS leaves it there after the move; a version both
        pending and current looks like a rotation still under way). Repeating it after it
        succeeded, even halfway, finishes it and changes nothing else."""

        def go() -> None:
            try:
                stages = self._client.describe_secret(SecretId=key).get("VersionIdsToStages") or {}
            except botocore.exceptions.ClientError as exc:
                if _code(exc) == "ResourceNotFoundException":
                    raise CasFailed(key) from None
                raise
            labels = stages.get(str(version)) or []
            if CURRENT not in labels:
                self._move_current(key, str(version), str(expected))
            if PENDING in labels:
                self._client.update_secret_version_stage(SecretId=key, VersionStage=PENDING,
                                                         RemoveFromVersionId=str(version))

        self._call(go)

    # -- internals -----------------------------------------------------------------------------

    def _put(self, key: str, text: str, request_id: str, stage: str) -> str:
        """``PutSecretValue`` staged ``stage`` only; CasFailed if the secret is gone. A
        ResourceExistsException (the token's version exists, not as asked) is the caller's."""
        try:
            response = self._client.put_secret_value(SecretId=key, SecretString=text, ClientRequestToken=request_id,
                                                     VersionStages=[stage])
        except botocore.exceptions.ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                raise CasFailed(key) from None
            raise
        return str(response["VersionId"])

    def _move_current(self, key: str, version: str, expected: str) -> None:
        """The check-and-set: AWS refuses when ``AWSCURRENT`` is no longer on ``expected``."""
        try:
            self._client.update_secret_version_stage(SecretId=key, VersionStage=CURRENT,
                                                     MoveToVersionId=version, RemoveFromVersionId=expected)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in ("InvalidParameterException", "ResourceNotFoundException"):
                raise CasFailed(key) from None
            raise

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


def _text(payload: dict) -> str:
    """The ``SecretString`` for a payload: deterministic, so a repeated write is the same write."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True)


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _current(stages: dict[str, list[str]]) -> str | None:
    return next((version for version, labels in stages.items() if CURRENT in labels), None)
