"""The ``openbao`` and ``aws`` rotators against the same real stores as sync: ``bao server -dev``
and ``moto_server`` (tests/integration/servers.py), every test once per store.

A synced secret rotates on the remote (a new KV version; AWSPENDING → AWSCURRENT) and here,
the previous value stays on both sides, and sync afterwards has nothing to do. A rotation never
overwrites what it has not seen ("sync first"), and a failure at any step, the server dying or
our own process dying, leaves the vault holding the remote's value; rerunning converges
without writing a second version.
"""

from __future__ import annotations

import json
from typing import Iterator

import boto3
import hvac
import pytest

from its_desktop.core.passwords import ValuePolicy
from its_desktop.core.secrets import SecretType
from its_desktop.core.vault.api import Vault
from its_desktop.rotators.base import RotationFailed
from its_desktop.rotators.engine import Rotated, abandon, rotate
from its_desktop.sync.engine import Op
from its_desktop.sync.remotes import Remote, add_remote, get_remote, make_remote
from its_desktop.sync.syncer import Syncer
from tests.integration.servers import ROOT_TOKEN, Server, free_port, moto, openbao  # noqa: F401 - fixtures

NAME = "brokers/ibkr/api_key"
KEY = "ibkr/api_key"  # its name on the remote, under PREFIX
OTHER = "brokers/kraken/key"
PREFIX = "its/brokers/"
OLD = "old-broker-key-uniq-3f9a1c"
POLICY = ValuePolicy(40, "base64url")
REGION = "eu-west-1"


class Store:
    """One remote store as the tests see it: adding it to a vault, and looking at (or writing
    to) it directly, as another tool would."""

    kind: str
    remote: str

    def __init__(self, server: Server) -> None:
        self.server = server

    def add_to(self, vault: Vault, folder: str = "brokers/") -> Remote:
        raise NotImplementedError

    def current(self, key: str = KEY) -> dict:
        raise NotImplementedError

    def previous(self, key: str = KEY) -> dict:
        raise NotImplementedError

    def pending(self, key: str = KEY) -> dict | None:
        return None

    def versions(self, key: str = KEY) -> int:
        raise NotImplementedError

    def write_elsewhere(self, value: str, key: str = KEY) -> None:
        raise NotImplementedError

    def check_stages(self, key: str = KEY) -> None:
        """Whatever the store's own conventions need after a rotation."""

    def close(self) -> None: ...


class Bao(Store):
    kind, remote = "openbao", "bao"

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        self.client = hvac.Client(url=server.url, token=ROOT_TOKEN)
        self.kv = self.client.secrets.kv.v2

    def add_to(self, vault: Vault, folder: str = "brokers/") -> Remote:
        vault.set("creds/bao", ROOT_TOKEN)
        add_remote(vault, make_remote(self.remote, "openbao", folder, PREFIX,
                                      {"url": self.server.url, "mount": "secret"}, "token", "creds/bao"))
        return get_remote(vault, self.remote)

    def _read(self, key: str, version: int | None = None) -> dict:
        return self.kv.read_secret_version(path=PREFIX + key, version=version, mount_point="secret",
                                           raise_on_deleted_version=True)["data"]["data"]

    def current(self, key: str = KEY) -> dict:
        return self._read(key)

    def previous(self, key: str = KEY) -> dict:
        return self._read(key, self.versions(key) - 1)

    def versions(self, key: str = KEY) -> int:
        return int(self.kv.read_secret_metadata(path=PREFIX + key, mount_point="secret")["data"]["current_version"])

    def write_elsewhere(self, value: str, key: str = KEY) -> None:
        self.kv.create_or_update_secret(path=PREFIX + key, secret={"value": value}, mount_point="secret")

    def close(self) -> None:
        self.client.adapter.close()


class Aws(Store):
    kind, remote = "aws", "aws"

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        self.sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=server.url,
                               aws_access_key_id="inspector", aws_secret_access_key="inspector")

    def add_to(self, vault: Vault, folder: str = "brokers/") -> Remote:
        vault.set("creds/aws", "aws-secret-key-uniq-0b7e", fields={"access_key_id": "AKIAROTATEUNIQ0001"})
        add_remote(vault, make_remote(self.remote, "aws", folder, PREFIX,
                                      {"region": REGION, "endpoint_url": self.server.url}, "aws-keys", "creds/aws"))
        return get_remote(vault, self.remote)

    def _stage(self, stage: str, key: str) -> dict:
        return json.loads(self.sm.get_secret_value(SecretId=PREFIX + key, VersionStage=stage)["SecretString"])

    def stages(self, key: str = KEY) -> dict[str, list[str]]:
        return self.sm.describe_secret(SecretId=PREFIX + key)["VersionIdsToStages"]

    def current(self, key: str = KEY) -> dict:
        return self._stage("AWSCURRENT", key)

    def previous(self, key: str = KEY) -> dict:
        return self._stage("AWSPREVIOUS", key)

    def pending(self, key: str = KEY) -> dict | None:
        staged = [labels for labels in self.stages(key).values() if "AWSPENDING" in labels]
        return self._stage("AWSPENDING", key) if staged else None

    def versions(self, key: str = KEY) -> int:
        return len(self.stages(key))

    def write_elsewhere(self, value: str, key: str = KEY) -> None:
        """As another machine's sync writes: a new version, then AWSCURRENT moved to it. (A
        plain PutSecretValue would do on AWS, but moto 5 then leaves AWSCURRENT on the version
        a stage move made current too: it demotes only the version it made current itself.)"""
        current = next(v for v, labels in self.stages(key).items() if "AWSCURRENT" in labels)
        made = self.sm.put_secret_value(SecretId=PREFIX + key, SecretString=json.dumps({"value": value}),
                                        VersionStages=["OTHER_TOOL"])["VersionId"]
        self.sm.update_secret_version_stage(SecretId=PREFIX + key, VersionStage="AWSCURRENT", MoveToVersionId=made,
                                            RemoveFromVersionId=current)

    def check_stages(self, key: str = KEY) -> None:
        """AWSCURRENT on the new version, AWSPREVIOUS on the old one, no AWSPENDING left over
        (a version both pending and current looks like a rotation still under way)."""
        assert sorted(map(sorted, self.stages(key).values())) == [["AWSCURRENT"], ["AWSPREVIOUS"]]

    def close(self) -> None:
        self.sm.close()


@pytest.fixture(params=["openbao", "aws"])
def store(request) -> Iterator[Store]:
    made: Store = Bao(request.getfixturevalue("openbao")) if request.param == "openbao" \
        else Aws(request.getfixturevalue("moto"))
    yield made
    made.close()


def synced(vault: Vault, store: Store) -> Remote:
    """The remote added and ``NAME`` (with the store's rotator) and ``OTHER`` pushed to it."""
    remote = store.add_to(vault)
    vault.set(NAME, OLD, type=SecretType.API_KEY, fields={"account": "U1234567"}, tags={"env": "prod"},
              rotator=store.kind, value_policy=POLICY)
    vault.set(OTHER, "kraken-key-uniq-81d2")
    assert sync(vault, remote.name) == [NAME, OTHER]
    return remote


def sync(vault: Vault, remote: str) -> list[str]:
    with Syncer(vault, get_remote(vault, remote)) as syncer:
        return sorted(syncer.apply().pushed)


def plan_ops(vault: Vault, remote: str) -> dict[str, Op]:
    with Syncer(vault, get_remote(vault, remote)) as syncer:
        return {item.name: item.op for item in syncer.plan().items}


def rotate_steps(vault: Vault, name: str = NAME) -> list[tuple[str, str]]:
    return [(r.event.op, r.event.outcome) for r in vault.audit_records()
            if r.event.name == name and r.event.op.startswith("rotate")]


def assert_converged(vault: Vault, store: Store, remote: str) -> None:
    """The remote's current value is the vault's, the old one is the remote's previous version
    and the vault's history, exactly one new version was written, and sync has nothing to do."""
    secret = vault.peek(NAME)
    assert secret.pending is None and secret.value != OLD and POLICY.accepts(secret.value)
    assert secret.history[-1].value == OLD
    now = store.current()
    assert (now["value"], now["fields"], now["type"], now["tags"]) == \
        (secret.value, {"account": "U1234567"}, "api_key", {"env": "prod"})
    assert store.previous()["value"] == OLD
    assert store.versions() == 2  # no second version from a repeated or resumed write
    store.check_stages()
    assert plan_ops(vault, remote) == {NAME: Op.NOOP, OTHER: Op.NOOP}


def test_a_synced_secret_rotates_on_the_remote_and_sync_then_has_nothing_to_do(vault: Vault, store: Store):
    remote = synced(vault, store)
    done = rotate(vault, NAME)
    assert done == Rotated(NAME, store.kind, 2, False)
    assert_converged(vault, store, remote.name)
    base = vault.settings()["sync"][remote.name][NAME]
    assert base["version"] == (2 if store.kind == "openbao" else
                               next(v for v, labels in store.stages().items() if "AWSCURRENT" in labels))
    assert rotate_steps(vault) == [("rotate-create", "ok"), ("rotate-set", "ok"), ("rotate-test", "ok"),
                                   ("rotate-finish", "ok")]
    new = vault.peek(NAME).value
    details = " ".join(str(r.event.detail) for r in vault.audit_records())
    assert new not in details and OLD not in details
    # A second rotation starts from the base the first one left.
    rotate(vault, NAME)
    assert vault.peek(NAME).history[-1].value == new and store.current()["value"] == vault.peek(NAME).value


def test_a_change_on_either_side_since_the_last_sync_stops_the_rotation_at_create(vault: Vault, store: Store):
    remote = synced(vault, store).name
    vault.set(NAME, "edited-here-uniq-5a0e")
    with pytest.raises(RotationFailed) as failure:
        rotate(vault, NAME)
    assert str(failure.value) == (f"rotation of '{NAME}' failed at step 'create': '{NAME}' changed here since the "
                                  f"last sync with remote '{remote}': run 'its-vault sync {remote}' first; "
                                  f"nothing was changed")
    assert store.versions() == 1 and store.current()["value"] == OLD

    assert sync(vault, remote) == [NAME]
    store.write_elsewhere("theirs-uniq-c4d1")
    before = vault.peek(NAME)
    with pytest.raises(RotationFailed) as failure:
        rotate(vault, NAME)
    assert str(failure.value) == (f"rotation of '{NAME}' failed at step 'create': '{NAME}' changed on remote "
                                  f"'{remote}' since the last sync: run 'its-vault sync {remote}' first; "
                                  f"nothing was changed")
    after = vault.peek(NAME)
    assert (after.value, after.version, after.pending) == (before.value, before.version, None)
    assert store.versions() == 3 and store.current() == {"value": "theirs-uniq-c4d1"} and store.pending() is None
    assert rotate_steps(vault) == [("rotate-create", "failed")] * 2


@pytest.mark.parametrize("kind", ["openbao", "aws"])
def test_a_secret_that_no_single_remote_syncs_fails_at_create_saying_why(vault: Vault, kind: str):
    """Checked before any server is asked (these remotes point at closed ports)."""
    dead = f"http://127.0.0.1:{free_port()}"
    vault.set("brokers/creds", "token-uniq-77a0", fields={"access_key_id": "AKIADEADUNIQ0001"})
    options = {"url": dead, "mount": "secret"} if kind == "openbao" else {"region": REGION, "endpoint_url": dead}
    auth = "token" if kind == "openbao" else "aws-keys"
    add_remote(vault, make_remote("here", kind, "brokers/", PREFIX, options, auth, "brokers/creds"))
    other = "aws" if kind == "openbao" else "openbao"  # a remote of the other kind covers bots/
    other_options = {"url": dead, "mount": "secret"} if other == "openbao" else {"region": REGION, "endpoint_url": dead}
    add_remote(vault, make_remote("there", other, "bots/", PREFIX, other_options,
                                  "token" if other == "openbao" else "aws-keys", "brokers/creds"))
    vault.set("bots/alpha/token", OLD, rotator=kind)
    vault.set("brokers/new", OLD, rotator=kind)
    vault.set("brokers/creds", "token-uniq-77a0", rotator=kind)

    def reason(name: str) -> str:
        with pytest.raises(RotationFailed) as failure:
            rotate(vault, name)
        assert failure.value.step == "create" and not failure.value.pending
        assert OLD not in str(failure.value)
        return failure.value.reason

    assert reason("bots/alpha/token") == (f"no {kind} remote syncs 'bots/alpha/token': add one for its folder "
                                          f"('its-vault remote add NAME --type {kind} --folder ...') or choose "
                                          f"another rotator")
    assert reason("brokers/new") == "'brokers/new' was never synced with remote 'here': run 'its-vault sync here' first"
    assert reason("brokers/creds") == "'brokers/creds' holds the credentials of a remote, which are never synced"
    add_remote(vault, make_remote("everything", kind, "", PREFIX, options, auth, "brokers/creds"))
    assert reason("brokers/new") == f"'brokers/new' is synced by several {kind} remotes (everything, here): " \
                                    f"it can be rotated in only one"
    assert all(vault.peek(n).pending is None for n in ("bots/alpha/token", "brokers/new", "brokers/creds"))


@pytest.mark.parametrize("step", ["set", "test", "finish"])
def test_the_server_dying_at_a_step_leaves_the_remote_value_in_the_vault(vault: Vault, store: Store, step: str):
    remote = synced(vault, store).name
    seen: dict[str, dict | None] = {}

    def server_dies(name: str, at: str) -> None:
        if at == step:
            seen.update(current=store.current(), pending=store.pending())
            store.server.kill()

    if store.kind == "openbao" and step == "finish":
        # KV v2 has nothing left to do at finish: the value was verified by test, so it commits.
        rotate(vault, NAME, observer=server_dies)
        assert vault.peek(NAME).value == seen["current"]["value"] != OLD
        return
    with pytest.raises(RotationFailed) as failure:
        rotate(vault, NAME, observer=server_dies)
    assert failure.value.step == step and failure.value.pending
    assert "cannot reach" in failure.value.reason and "\n" not in str(failure.value)
    secret = vault.peek(NAME)
    assert secret.value == OLD and secret.pending is not None
    assert secret.pending.value not in str(failure.value) and OLD not in str(failure.value)
    held = {secret.value, secret.pending.value}
    assert seen["current"]["value"] in held  # what the remote served when it died is in the vault
    assert seen["pending"] is None or seen["pending"]["value"] == secret.pending.value

    # The dev server comes back empty (it keeps everything in memory): resuming cannot write on
    # top of the base any more and says what to do; doing it converges.
    store.server.start()
    with pytest.raises(RotationFailed) as again:
        rotate(vault, NAME)
    assert again.value.step == "set" and f"'its-vault rotate {NAME} --abandon'" in again.value.reason
    abandon(vault, NAME)
    assert sync(vault, remote) == [NAME, OTHER]  # vanished from the remote: restored from here
    rotate(vault, NAME)
    assert store.current()["value"] == vault.peek(NAME).value != OLD
    assert plan_ops(vault, remote) == {NAME: Op.NOOP, OTHER: Op.NOOP}


class ProcessDied(SystemExit):
    """Our process going away at a chosen moment (the vault keeps what was saved before)."""


@pytest.mark.parametrize("step", ["set", "test", "finish", "commit"])
def test_a_rotation_whose_process_died_at_a_step_resumes_to_one_new_version(
        vault: Vault, store: Store, step: str, monkeypatch: pytest.MonkeyPatch):
    """``commit``: after finish did its remote work (AWS moved AWSCURRENT), before the vault
    saved the new value."""
    remote = synced(vault, store).name

    def dies(name: str, at: str) -> None:
        if at == step:
            raise ProcessDied(1)

    if step == "commit":
        monkeypatch.setattr(vault, "finish_rotation", lambda *args, **kwargs: dies(NAME, "commit"))
    with pytest.raises(ProcessDied):
        rotate(vault, NAME, observer=dies)
    monkeypatch.undo()

    secret = vault.peek(NAME)
    assert secret.value == OLD and secret.pending is not None
    new = secret.pending.value
    assert store.current()["value"] in (OLD, new)
    assert (store.pending() or {"value": new})["value"] == new

    done = rotate(vault, NAME)
    assert done.resumed and vault.peek(NAME).value == new
    assert_converged(vault, store, remote)
    steps = rotate_steps(vault)
    assert steps[-1] == ("rotate-finish", "ok")
    # On resume, set ran again only if the dead process never got to it.
    assert ("rotate-test", "failed") in steps if step == "set" else ("rotate-test", "failed") not in steps


def test_an_aws_set_repeated_on_resume_is_the_same_version_staged_again(vault: Vault, moto: Server):
    """Our version lost AWSPENDING while our process was dead (another tool unstaged it): the
    resumed test fails, set runs again with the same request token, AWS ignores the repeat
    (no second version) and the version is staged AWSPENDING again."""
    store = Aws(moto)
    try:
        remote = synced(vault, store).name

        def dies(name: str, at: str) -> None:
            if at == "test":
                raise ProcessDied(1)

        with pytest.raises(ProcessDied):
            rotate(vault, NAME, observer=dies)
        ours = next(v for v, labels in store.stages().items() if "AWSPENDING" in labels)
        store.sm.update_secret_version_stage(SecretId=PREFIX + KEY, VersionStage="AWSPENDING",
                                             RemoveFromVersionId=ours)
        assert rotate(vault, NAME).resumed
        assert rotate_steps(vault)[-4:] == [("rotate-test", "failed"), ("rotate-set", "ok"), ("rotate-test", "ok"),
                                            ("rotate-finish", "ok")]
        assert_converged(vault, store, remote)
        assert "AWSCURRENT" in store.stages()[ours]
    finally:
        store.close()
