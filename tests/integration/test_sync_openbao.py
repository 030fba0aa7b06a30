"""`its-vault sync` against a real OpenBao (`bao server -dev`, the HashiCorp Vault KV v2 API),
started on a free loopback port for each test and stopped after.

Two vault files play two machines. Command lines and exit codes are checked exactly as a
script sees them (the `Cli` helper of test_cli.py, which also checks that no secret leaks into
any output or file); the fault tests (a racing writer, a server killed mid-sync) drive the
syncer in-process, where the moment of the fault can be chosen.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import hvac
import pytest

from its_desktop.core.errors import BackendError
from its_desktop.core.secrets import Secret
from its_desktop.core.vault.api import Vault
from its_desktop.sync.engine import Choice, Op
from its_desktop.sync.remotes import add_remote, get_remote, make_remote
from its_desktop.sync.syncer import Syncer
from tests.conftest import FAST_KDF, PASSWORD
from tests.integration.cli_runner import call, expect_failure, expect_ok
from tests.integration.servers import ROOT_TOKEN, Server, free_port, openbao  # noqa: F401 - a fixture
from tests.integration.test_cli import Cli


MOUNT = "secret"
PREFIX = "its/brokers/"
KEY = "AKIA-bao-uniq-6c1d0e"
SECRET = "s3cr3t/with=signs uniq-93ab7f"
MULTI = "-----BEGIN KEY-----\nline two uniq-0d5e11\n-----END KEY-----"


@pytest.fixture
def kv(openbao):
    """A root client to look at (and race with) the server."""
    client = hvac.Client(url=openbao.url, token=ROOT_TOKEN)
    yield client.secrets.kv.v2
    client.adapter.close()


def remote_data(kv, name: str) -> dict:
    return kv.read_secret_version(path=PREFIX + name, mount_point=MOUNT, raise_on_deleted_version=True)["data"]["data"]


def remote_keys(kv) -> list[str]:
    found, folders = [], [PREFIX]
    while folders:
        folder = folders.pop()
        try:
            keys = kv.list_secrets(path=folder, mount_point=MOUNT)["data"]["keys"]
        except hvac.exceptions.InvalidPath:
            continue
        for key in keys:
            (folders if key.endswith("/") else found).append(folder + key)
    return sorted(k[len(PREFIX):] for k in found)


def machine(cli_env: dict, tmp_path: Path, label: str, server: Server, token: str = ROOT_TOKEN) -> Cli:
    """A vault of its own with the token stored in it and the remote `bao` added."""
    env = {**cli_env, "ITS_VAULT_PATH": str(tmp_path / label / "vault.its")}
    cli = Cli(env, tmp_path)
    cli.init()
    cli.set("creds/bao", token)
    expect_ok(cli.run("remote", "add", "bao", "--type", "openbao", "--folder", "brokers/", "--url", server.url,
                      "--mount", MOUNT, "--prefix", PREFIX, "--token-secret", "creds/bao"))
    return cli


@pytest.fixture
def a(cli_env, tmp_path, openbao) -> Cli:
    return machine(cli_env, tmp_path, "machine-a", openbao)


@pytest.fixture
def b(cli_env, tmp_path, openbao) -> Cli:
    return machine(cli_env, tmp_path, "machine-b", openbao)


def summary(pushed=0, pulled=0, deleted_remote=0, deleted_here=0, conflicts=0, kept_both=0) -> str:
    both = f", {kept_both} kept both" if kept_both else ""
    word = "conflict" if conflicts == 1 else "conflicts"
    return f"bao: {pushed} pushed, {pulled} pulled, {deleted_remote} deleted on the remote, " \
           f"{deleted_here} deleted here{both}, {conflicts} {word}\n"


def in_sync(cli: Cli, count: int) -> None:
    result = cli.ok("sync", "--plan")
    assert result.stdout == f"bao: 0 to push, 0 to pull, 0 to delete on the remote, 0 to delete here, " \
                            f"0 conflicts, {count} unchanged\n"


def test_first_push_then_pull_on_a_second_machine(a, b, kv):
    a.set("brokers/ibkr/api_key", KEY, "--type", "api_key", "--field", "account=U1234567", "--tag", "env=prod")
    a.set("brokers/binance/secret", SECRET)
    a.set("brokers/ibkr/cert", MULTI, "--type", "certificate")
    a.set("bots/alpha/token", "not-synced-uniq-55aa01")

    plan = a.ok("sync", "--plan")
    assert plan.stdout == (
        "bao: 3 to push, 0 to pull, 0 to delete on the remote, 0 to delete here, 0 conflicts, 0 unchanged\n"
        "  push           brokers/binance/secret  (new here)\n"
        "  push           brokers/ibkr/api_key  (new here)\n"
        "  push           brokers/ibkr/cert  (new here)\n")
    assert remote_keys(kv) == []  # --plan changes nothing
    lines = [json.loads(line) for line in a.ok("sync", "bao", "--plan", "--json").stdout.splitlines()]
    assert [(x["name"], x["action"]) for x in lines] == [
        ("brokers/binance/secret", "push"), ("brokers/ibkr/api_key", "push"), ("brokers/ibkr/cert", "push")]

    assert a.ok("sync").stdout == summary(pushed=3)
    assert remote_keys(kv) == ["binance/secret", "ibkr/api_key", "ibkr/cert"]  # not bots/, not the token
    data = remote_data(kv, "ibkr/api_key")
    assert (data["value"], data["fields"], data["type"], data["tags"]) == (KEY, {"account": "U1234567"}, "api_key",
                                                                            {"env": "prod"})
    assert kv.read_secret_version(path=PREFIX + "ibkr/api_key", mount_point=MOUNT,
                                  raise_on_deleted_version=True)["data"]["metadata"]["version"] == 1
    pushes = sorted(e["name"] for e in a.audit_json() if e["op"] == "sync-push")
    assert pushes == ["brokers/binance/secret", "brokers/ibkr/api_key", "brokers/ibkr/cert"]

    assert b.ok("sync", "bao").stdout == summary(pulled=3)
    assert b.get_all("brokers/ibkr/api_key", "brokers/binance/secret", "brokers/ibkr/cert") == {
        "brokers/ibkr/api_key": KEY + "\n", "brokers/binance/secret": SECRET + "\n", "brokers/ibkr/cert": MULTI + "\n"}
    assert b.get("brokers/ibkr/api_key", "--field", "account") == "U1234567\n"
    listing = {row["name"]: row for row in b.list_json()}
    assert listing["brokers/ibkr/api_key"]["type"] == "api_key" and listing["brokers/ibkr/api_key"]["tags"] == {"env": "prod"}
    assert sorted(e["name"] for e in b.audit_json() if e["op"] == "sync-pull") == pushes
    in_sync(a, 3)
    in_sync(b, 3)
    a.assert_clean([KEY, SECRET, MULTI, ROOT_TOKEN])
    b.assert_clean([KEY, SECRET, MULTI, ROOT_TOKEN])


def test_edits_on_both_sides_are_a_conflict_until_the_user_picks(a, b, kv):
    for name in ("one", "two", "three"):
        a.set(f"brokers/{name}", f"base-{name}-uniq")
    a.ok("sync")
    b.ok("sync")
    for name in ("one", "two", "three"):
        a.set(f"brokers/{name}", f"from-a-{name}-uniq")
        b.set(f"brokers/{name}", f"from-b-{name}-uniq")
    assert b.ok("sync").stdout == summary(pushed=3)

    result = a.run("sync")
    expect_failure(result, 7)
    assert result.stderr == "its-vault: error: 3 conflicts remain: settle each with --resolve SECRET=local|remote|both\n"
    lines = result.stdout.splitlines()
    assert lines[0] == summary(conflicts=3).rstrip("\n")
    for line, name in zip(lines[1:], ("one", "three", "two")):
        assert line.startswith(f"  conflict       brokers/{name}  (changed on both sides: changed here 20")
        assert " UTC, changed on the remote 20" in line and line.endswith(" UTC)")
    assert a.get_all("brokers/one", "brokers/two") == {"brokers/one": "from-a-one-uniq\n",
                                                      "brokers/two": "from-a-two-uniq\n"}  # nothing taken silently
    assert remote_data(kv, "one")["value"] == "from-b-one-uniq"
    assert a.ok("sync", "--plan").stdout.count("conflict ") == 3  # a plan with conflicts still exits 0

    settled = a.ok("sync", "--resolve", "brokers/one=local", "--resolve", "brokers/two=remote",
                   "--resolve", "brokers/three=both")
    copy = next(line.split()[2] for line in settled.stdout.splitlines() if line.startswith("  kept both"))
    assert copy.startswith("brokers/three.remote-")
    assert settled.stdout.startswith("bao: 3 pushed, 1 pulled, 0 deleted on the remote, 0 deleted here, 1 kept both, "
                                     "0 conflicts\n")
    assert a.get_all("brokers/one", "brokers/two", "brokers/three", copy) == {
        "brokers/one": "from-a-one-uniq\n", "brokers/two": "from-b-two-uniq\n",
        "brokers/three": "from-a-three-uniq\n", copy: "from-b-three-uniq\n"}
    assert remote_data(kv, "one")["value"] == "from-a-one-uniq"
    assert remote_data(kv, "three")["value"] == "from-a-three-uniq"
    assert remote_data(kv, copy[len("brokers/"):])["value"] == "from-b-three-uniq"
    history = a.ok("history", "brokers/two").stdout.splitlines()
    assert len(history) == 3  # base, a's edit, then the remote's: a's edit is kept in history

    assert b.ok("sync").stdout == summary(pulled=3)
    assert b.get_all("brokers/one", "brokers/three", copy) == {
        "brokers/one": "from-a-one-uniq\n", "brokers/three": "from-a-three-uniq\n", copy: "from-b-three-uniq\n"}
    in_sync(a, 4)
    in_sync(b, 4)
    again = a.ok("sync", "--resolve", "brokers/one=remote")  # nothing left to settle: said, not an error
    assert again.stderr == "--resolve brokers/one: not in conflict, nothing to settle\n"


def test_deletions_propagate_and_a_deletion_against_an_edit_is_a_conflict(a, b, kv):
    for name in ("gone", "edited", "kept"):
        a.set(f"brokers/{name}", f"{name}-uniq")
    a.ok("sync")
    b.ok("sync")

    a.ok("rm", "brokers/gone")
    assert a.ok("sync").stdout == summary(deleted_remote=1)
    metadata = kv.read_secret_metadata(path=PREFIX + "gone", mount_point=MOUNT)["data"]
    assert metadata["versions"]["1"]["deletion_time"]  # a soft delete: the store keeps a tombstone
    assert b.ok("sync").stdout == summary(deleted_here=1)
    expect_failure(b.run("get", "brokers/gone"), 4)
    assert [(e["name"], e["detail"]) for e in b.audit_json() if e["op"] == "sync-delete"] == [
        ("brokers/gone", "bao: deleted here")]

    b.ok("rm", "brokers/edited")
    a.set("brokers/edited", "edited-again-uniq")
    assert b.ok("sync").stdout == summary(deleted_remote=1)
    result = a.run("sync")
    expect_failure(result, 7)
    assert "  conflict       brokers/edited  (changed here, deleted on the remote: changed here 20" in result.stdout
    assert ", deleted on the remote 20" in result.stdout
    assert a.get("brokers/edited") == "edited-again-uniq\n"
    assert a.ok("sync", "--resolve", "brokers/edited=local").stdout == summary(pushed=1)
    assert b.ok("sync").stdout == summary(pulled=1)  # re-created after b's deletion: it comes back
    assert b.get("brokers/edited") == "edited-again-uniq\n"
    in_sync(a, 2)
    in_sync(b, 2)


def _vault(tmp_path: Path, label: str) -> Vault:
    return Vault.create(tmp_path / label / "vault.its", PASSWORD, kdf=FAST_KDF)


def _remote(vault: Vault, server: Server, token: str = ROOT_TOKEN):
    vault.set("creds/bao", token)
    add_remote(vault, make_remote("bao", "openbao", "brokers/", PREFIX, {"url": server.url, "mount": MOUNT},
                                  "token", "creds/bao"))
    return get_remote(vault, "bao")


def test_a_racing_writer_fails_the_check_and_set_and_nothing_is_overwritten(tmp_path, openbao, kv):
    with _vault(tmp_path, "a") as vault:
        remote = _remote(vault, openbao)
        vault.set("brokers/raced", "v1-uniq")
        vault.set("brokers/calm", "c1-uniq")
        with Syncer(vault, remote) as syncer:
            syncer.apply()
        vault.set("brokers/raced", "mine-uniq")
        vault.set("brokers/calm", "c2-uniq")
        with Syncer(vault, remote) as syncer:
            plan = syncer.plan()
            assert {i.name: i.op for i in plan.changes} == {"brokers/raced": Op.PUSH, "brokers/calm": Op.PUSH}
            kv.create_or_update_secret(path=PREFIX + "raced", secret={"value": "theirs-uniq"}, cas=1, mount_point=MOUNT)
            result = syncer.apply(plan)
        assert result.pushed == ["brokers/calm"]
        assert [c.name for c in result.conflicts] == ["brokers/raced"]
        assert result.conflicts[0].reason == "changed on both sides"
        assert remote_data(kv, "raced") == {"value": "theirs-uniq"}  # their write stands
        assert vault.peek("brokers/raced").value == "mine-uniq"  # and so does ours
        with Syncer(vault, remote) as syncer:
            result = syncer.apply(resolutions={"brokers/raced": Choice.REMOTE})
        assert result.pulled == ["brokers/raced"] and vault.peek("brokers/raced").value == "theirs-uniq"
        assert [v.value for v in vault.peek("brokers/raced").versions()][-2:] == ["mine-uniq", "theirs-uniq"]


def test_an_expired_token_stops_the_sync_in_one_line_and_a_new_one_resumes_it(a, kv, openbao):
    client = hvac.Client(url=openbao.url, token=ROOT_TOKEN)
    try:
        short = client.auth.token.create(policies=["root"], ttl="1s", explicit_max_ttl="1s")["auth"]["client_token"]
    finally:
        client.adapter.close()
    a.set("creds/bao", short)
    a.set("brokers/k", "value-uniq-71be02")
    time.sleep(1.5)
    before = a.vault.read_bytes()
    result = a.fails(1, "sync")
    assert a.vault.read_bytes() == before  # it failed while listing: nothing was saved
    assert result.stderr == (f"its-vault: error: {openbao.url} refused the token from secret 'creds/bao' (expired, "
                             f"revoked or without access to mount 'secret'): update that secret\n")
    assert a.get("brokers/k") == "value-uniq-71be02\n"
    a.set("creds/bao", ROOT_TOKEN)
    assert a.ok("sync").stdout == summary(pushed=1)
    a.assert_clean(["value-uniq-71be02", short, ROOT_TOKEN])


def test_approle_logs_in_with_the_vault_secret(cli_env, tmp_path, openbao, kv):
    client = hvac.Client(url=openbao.url, token=ROOT_TOKEN)
    try:
        client.sys.enable_auth_method("approle")
        client.sys.create_or_update_policy("its-sync", 'path "secret/*" { capabilities = '
                                                       '["create", "read", "update", "delete", "list"] }')
        client.auth.approle.create_or_update_approle("its", token_policies=["its-sync"], token_ttl="5m")
        role_id = client.auth.approle.read_role_id("its")["data"]["role_id"]
        secret_id = client.auth.approle.generate_secret_id("its")["data"]["secret_id"]
    finally:
        client.adapter.close()
    env = {**cli_env, "ITS_VAULT_PATH": str(tmp_path / "approle" / "vault.its")}
    cli = Cli(env, tmp_path)
    cli.init()
    cli.set("creds/approle", secret_id, "--field", f"role_id={role_id}")
    cli.ok("remote", "add", "bao", "--type", "openbao", "--folder", "brokers", "--url", openbao.url, "--mount", MOUNT,
           "--prefix", PREFIX, "--approle-secret", "creds/approle")
    assert cli.ok("remote", "list").stdout == (
        f"bao  openbao  brokers/ <-> openbao {openbao.url}, mount secret, path {PREFIX} (AppRole from 'creds/approle')\n")
    cli.set("brokers/k", "approle-uniq-0a9f")
    assert cli.ok("sync").stdout == summary(pushed=1)
    assert remote_data(kv, "k")["value"] == "approle-uniq-0a9f"
    cli.assert_clean(["approle-uniq-0a9f", secret_id])


def test_an_approle_token_that_expires_during_a_sync_is_renewed_by_a_new_login(tmp_path, openbao, kv):
    client = hvac.Client(url=openbao.url, token=ROOT_TOKEN)
    try:
        client.sys.enable_auth_method("approle")
        client.sys.create_or_update_policy("its-sync", 'path "secret/*" { capabilities = '
                                                       '["create", "read", "update", "delete", "list"] }')
        client.auth.approle.create_or_update_approle("brief", token_policies=["its-sync"], token_ttl="1s",
                                                     token_max_ttl="1s")
        role_id = client.auth.approle.read_role_id("brief")["data"]["role_id"]
        secret_id = client.auth.approle.generate_secret_id("brief")["data"]["secret_id"]
    finally:
        client.adapter.close()
    with _vault(tmp_path, "a") as vault:
        vault.set("creds/approle", secret_id, fields={"role_id": role_id})
        add_remote(vault, make_remote("bao", "openbao", "brokers/", PREFIX, {"url": openbao.url, "mount": MOUNT},
                                      "approle", "creds/approle"))
        vault.set("brokers/first", "one-uniq")
        with Syncer(vault, get_remote(vault, "bao")) as syncer:
            assert syncer.apply().pushed == ["brokers/first"]
            time.sleep(1.5)  # the token of the first login has expired
            vault.set("brokers/second", "two-uniq")
            assert syncer.apply().pushed == ["brokers/second"]
            assert syncer.backend._generation == 2  # logged in again, once
    assert remote_data(kv, "second")["value"] == "two-uniq"


def test_server_killed_mid_sync_loses_nothing_and_a_rerun_converges(tmp_path, openbao, kv):
    count = 400
    with _vault(tmp_path, "a") as vault:
        remote = _remote(vault, openbao)
        vault.import_secrets([Secret(name=f"brokers/b{i % 7}/acct{i:04d}", value=f"value-{i}-uniq") for i in range(count)],
                             "test")
        killed = []

        def progress(p) -> None:
            if p.phase == "applying" and p.done >= 150 and not killed:
                openbao.kill()
                killed.append(p.done)

        with Syncer(vault, remote, batch_size=50) as syncer, pytest.raises(BackendError) as failure:
            syncer.apply(progress=progress)
        assert killed
        assert str(failure.value) == f"cannot reach {openbao.url}: the connection failed (is the server running?)"
        saved = len(vault.settings()["sync"]["bao"])
        assert 150 <= saved < count  # every batch done before the kill was saved
        pushes = [r for r in vault.audit_records() if r.event.op == "sync-push"]
        assert len(pushes) == saved
    with Vault.open(tmp_path / "a" / "vault.its", PASSWORD) as vault:  # a fresh look at the file
        assert vault.verify_audit() > 0
        assert {n: vault.peek(n).value for n in vault.names() if n.startswith("brokers/")} == \
            {f"brokers/b{i % 7}/acct{i:04d}": f"value-{i}-uniq" for i in range(count)}
        openbao.start()  # back, on the same port, and empty (dev mode keeps nothing)
        with Syncer(vault, get_remote(vault, "bao")) as syncer:
            result = syncer.apply()
            assert len(result.pushed) == count and not result.conflicts
            assert syncer.plan().unchanged == count
    assert len(remote_keys(kv)) == count


class Counting:
    """Wraps a backend's calls (on the instance, so its own listing counts too) to find the
    most that were in flight at once."""

    def __init__(self, inner) -> None:
        import threading

        self.inner, self.lock, self.now, self.most = inner, threading.Lock(), 0, 0
        for name in ("read", "write", "delete"):
            setattr(inner, name, self._counted(getattr(inner, name)))

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _counted(self, method):
        def counted(*args, **kwargs):
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
            try:
                return method(*args, **kwargs)
            finally:
                with self.lock:
                    self.now -= 1

        return counted


def test_1000_secrets_sync_with_bounded_concurrency_and_progress(tmp_path, openbao, kv):
    from its_desktop.sync.backends import open_backend
    from its_desktop.sync.remotes import read_credentials

    count = 1000
    names = [f"brokers/b{i % 50}/acct{i:04d}" for i in range(count)]
    with _vault(tmp_path, "a") as a, _vault(tmp_path, "b") as b:
        remote = _remote(a, openbao)
        _remote(b, openbao)
        a.import_secrets([Secret(name=n, value=f"{n}-value-uniq", fields={"username": f"u{i}"})
                          for i, n in enumerate(names)], "test")
        for vault, direction in ((a, "push"), (b, "pull")):
            backend = Counting(open_backend(remote, read_credentials(vault, remote), 8))
            seen = []
            started = time.monotonic()
            try:
                with Syncer(vault, get_remote(vault, "bao"), backend=backend, workers=8) as syncer:
                    result = syncer.apply(progress=seen.append)
            finally:
                backend.inner.close()
            elapsed = time.monotonic() - started
            assert len(result.pushed if direction == "push" else result.pulled) == count, direction
            assert 1 < backend.most <= 8, direction  # bounded, and concurrent
            phases = {p.phase for p in seen}
            assert "applying" in phases if direction == "push" else "listing" in phases
            last = [p for p in seen if p.phase == ("applying" if direction == "push" else "listing")]
            assert last[-1].done == last[-1].total == count
            assert [p.done for p in last] == sorted(p.done for p in last)
            assert elapsed < 60, f"{direction} of {count} took {elapsed:.1f} s"
        assert len(remote_keys(kv)) == count
        assert all(b.peek(n).value == f"{n}-value-uniq" and b.peek(n).fields == {"username": f"u{i}"}
                   for i, n in enumerate(names))
        with Syncer(b, get_remote(b, "bao")) as syncer:
            assert syncer.plan().unchanged == count


def test_the_command_line_contract_for_remotes_and_errors(cli_env, tmp_path, openbao):
    cli = Cli(cli_env, tmp_path)
    cli.init()
    bao = ("--type", "openbao", "--folder", "brokers/", "--prefix", PREFIX)
    at = ("--url", openbao.url, "--mount", MOUNT)
    cli.all_fail(  # usage: exit 2, before any unlock
        2,
        call("remote", "add", "x", *bao, "--mount", MOUNT, "--token-secret", "creds/bao"),
        call("remote", "add", "x", *bao, *at),
        call("remote", "add", "x", *bao, *at, "--token-secret", "a", "--approle-secret", "b"),
        call("remote", "add", "x", "--type", "aws", "--folder", "b", "--prefix", "p"),
        call("remote", "add", "x", "--type", "aws", "--folder", "b", "--prefix", "p", "--region", "us-east-1",
             "--token-secret", "t"),
        call("remote", "add", "x", "--type", "azure", "--folder", "b", "--prefix", "p"),
        call("remote", "add", "bad name", *bao, *at, "--token-secret", "creds/bao"),
        call("remote"),
        call("sync", "--resolve", "brokers/a=mine"),
        call("sync", "--resolve", "brokers/a"),
        call("sync", "--json"),
    )
    assert cli.fails(1, "sync").stderr == "its-vault: error: no remotes yet: add one with 'its-vault remote add'\n"
    cli.all_fail(  # not found: exit 4
        4,
        call("remote", "add", "x", *bao, *at, "--token-secret", "creds/missing"),
        call("remote", "rm", "nope"),
        call("sync", "nope"),
        call("sync", "nope", "--plan"),
    )
    cli.set("creds/bao", ROOT_TOKEN)
    dead_url = f"http://127.0.0.1:{free_port()}"
    cli.ok("remote", "add", "dead", *bao, "--url", dead_url, "--mount", MOUNT, "--token-secret", "creds/bao")
    cli.ok("remote", "add", "nomount", *bao, "--url", openbao.url, "--mount", "nope", "--token-secret", "creds/bao")
    assert cli.fails(1, "sync", "dead").stderr == \
        f"its-vault: error: cannot reach {dead_url}: the connection failed (is the server running?)\n"
    assert cli.fails(1, "sync", "nomount", "--plan").stderr == \
        f"its-vault: error: {openbao.url} has no KV version 2 secrets engine at mount 'nope'\n"
    assert cli.fails(1, "remote", "add", "dead", *bao, *at, "--token-secret", "creds/bao").stderr == \
        "its-vault: error: a remote named 'dead' already exists (remove it first)\n"
    assert cli.fails(1, "remote", "add", "ar", *bao, *at, "--approle-secret", "creds/bao").stderr == \
        "its-vault: error: secret 'creds/bao' has no field 'role_id' (needed for approle authentication)\n"
    both = cli.fails(1, "sync")  # every remote is tried; the first failure is the one line
    assert both.stdout.count(": failed: ") == 2 and both.stderr.endswith(" (and 1 more)\n")
    listing = cli.ok("remote", "list").stdout.splitlines()
    assert [line.split()[0] for line in listing] == ["dead", "nomount"]
    rows = [json.loads(line) for line in cli.ok("remote", "list", "--json").stdout.splitlines()]
    assert rows[0] == {"name": "dead", "type": "openbao", "folder": "brokers/", "prefix": PREFIX, "auth": "token",
                       "credentials": "creds/bao", "options": {"url": dead_url, "mount": MOUNT}}
    assert cli.ok("remote", "rm", "dead").stderr == "removed remote dead (nothing was deleted on either side)\n"
    assert [row["name"] for row in (json.loads(x) for x in cli.ok("remote", "list", "--json").stdout.splitlines())] \
        == ["nomount"]
    ops = [e["op"] for e in cli.audit_json()]
    assert ops.count("remote-add") == 2 and ops.count("remote-rm") == 1
    cli.assert_clean([ROOT_TOKEN])
