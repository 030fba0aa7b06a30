"""`its-vault sync` against AWS Secrets Manager as `moto_server` serves it, started on a free
loopback port for each test and stopped after.

Two vault files play two machines: one keeps its AWS keys in the vault (`--credentials-secret`),
the other uses the standard AWS chain (environment variables here). Besides the sync itself,
these tests check what AWS users rely on: writes keep the AWSCURRENT / AWSPREVIOUS stages, a
repeated write is idempotent (ClientRequestToken), and a deletion is AWS's own recoverable
"scheduled for deletion".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import boto3
import pytest

from its_desktop.core.errors import BackendError
from its_desktop.core.secrets import Secret
from its_desktop.core.vault.api import Vault
from its_desktop.sync.engine import Op
from its_desktop.sync.remotes import add_remote, get_remote, make_remote
from its_desktop.sync.syncer import Syncer
from tests.conftest import FAST_KDF, ITS_VAULT, PASSWORD
from tests.integration.cli_runner import expect_failure, expect_ok
from tests.integration.servers import Server, free_port, moto  # noqa: F401 - moto is a fixture
from tests.integration.test_cli import Cli


REGION = "eu-west-1"
PREFIX = "its/brokers/"
KEY_ID, KEY_SECRET = "AKIAEXAMPLEUNIQ0001", "aws-secret-key-uniq-4be7c1"
VALUE = "binance-key-uniq-5d2e8a"
CHAIN = {"AWS_ACCESS_KEY_ID": "AKIACHAINUNIQ0002", "AWS_SECRET_ACCESS_KEY": "chain-secret-uniq-77f0aa"}


def no_aws_chain(home: Path) -> dict[str, str]:
    """An environment where boto3's standard chain finds nothing."""
    return {"HOME": str(home), "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
            "AWS_CONFIG_FILE": str(home / "none"), "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture
def sm(moto):
    client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto.url,
                          aws_access_key_id="inspector", aws_secret_access_key="inspector")
    yield client
    client.close()


def current(sm, name: str) -> dict:
    raw = sm.get_secret_value(SecretId=PREFIX + name, VersionStage="AWSCURRENT")["SecretString"]
    return json.loads(raw)


def listed(sm) -> dict[str, dict]:
    found = {}
    for page in sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True):
        for entry in page["SecretList"]:
            found[entry["Name"][len(PREFIX):]] = entry
    return found


def machine(cli_env: dict, tmp_path: Path, label: str, server: Server, keys_in_vault: bool) -> Cli:
    env = {k: v for k, v in cli_env.items() if not k.startswith("AWS_")}
    env.update({"ITS_VAULT_PATH": str(tmp_path / label / "vault.its"), **no_aws_chain(tmp_path / label)})
    if not keys_in_vault:
        env.update(CHAIN)
    cli = Cli(env, tmp_path)
    cli.init()
    options = ["--type", "aws", "--folder", "brokers", "--region", REGION, "--endpoint-url", server.url,
               "--prefix", PREFIX]
    if keys_in_vault:
        cli.set("creds/aws", KEY_SECRET, "--field", f"access_key_id={KEY_ID}")
        options += ["--credentials-secret", "creds/aws"]
    expect_ok(cli.run("remote", "add", "aws", *options))
    return cli


@pytest.fixture
def a(cli_env, tmp_path, moto) -> Cli:
    return machine(cli_env, tmp_path, "machine-a", moto, keys_in_vault=True)


@pytest.fixture
def b(cli_env, tmp_path, moto) -> Cli:
    return machine(cli_env, tmp_path, "machine-b", moto, keys_in_vault=False)


def summary(pushed=0, pulled=0, deleted_remote=0, deleted_here=0, conflicts=0, kept_both=0) -> str:
    both = f", {kept_both} kept both" if kept_both else ""
    word = "conflict" if conflicts == 1 else "conflicts"
    return f"aws: {pushed} pushed, {pulled} pulled, {deleted_remote} deleted on the remote, " \
           f"{deleted_here} deleted here{both}, {conflicts} {word}\n"


def test_first_push_then_pull_with_the_aws_chain_and_the_version_stages_kept(a, b, sm):
    a.set("brokers/binance/secret", VALUE, "--type", "api_key", "--field", "account=B-77")
    a.set("brokers/ibkr/api_key", "ibkr-uniq-01")
    a.set("brokers/with space", "not-for-aws-uniq-02")
    plan = a.ok("sync", "--plan").stdout
    assert plan == ("aws: 2 to push, 0 to pull, 0 to delete on the remote, 0 to delete here, 0 conflicts, "
                    "0 unchanged, 1 skipped\n"
                    "  push           brokers/binance/secret  (new here)\n"
                    "  push           brokers/ibkr/api_key  (new here)\n"
                    "  skip           brokers/with space  (AWS names allow only letters, digits and /_+=.@- "
                    "(at most 512))\n")
    assert listed(sm) == {}
    assert a.ok("sync").stdout.startswith(summary(pushed=2).rstrip("\n"))
    data = current(sm, "binance/secret")
    assert (data["value"], data["fields"], data["type"]) == (VALUE, {"account": "B-77"}, "api_key")

    assert b.ok("sync").stdout == summary(pulled=2)  # keys from the AWS chain (the environment)
    assert b.get("brokers/binance/secret") == VALUE + "\n"
    assert b.get("brokers/binance/secret", "--field", "account") == "B-77\n"

    b.set("brokers/binance/secret", "rotated-uniq-03")
    assert b.ok("sync").stdout == summary(pushed=1)
    stages = sm.describe_secret(SecretId=PREFIX + "binance/secret")["VersionIdsToStages"]
    by_stage = {stage: version for version, labels in stages.items() for stage in labels}
    assert set(by_stage) >= {"AWSCURRENT", "AWSPREVIOUS"} and by_stage["AWSCURRENT"] != by_stage["AWSPREVIOUS"]
    previous = sm.get_secret_value(SecretId=PREFIX + "binance/secret", VersionStage="AWSPREVIOUS")["SecretString"]
    assert json.loads(previous)["value"] == VALUE  # rotation tooling still finds the old version
    assert current(sm, "binance/secret")["value"] == "rotated-uniq-03"
    assert a.ok("sync").stdout == summary(pulled=1).replace("\n", ", 1 skipped\n")
    assert a.get("brokers/binance/secret") == "rotated-uniq-03\n"
    a.assert_clean([VALUE, KEY_SECRET, "rotated-uniq-03", "ibkr-uniq-01"])
    b.assert_clean([VALUE, CHAIN["AWS_SECRET_ACCESS_KEY"], "rotated-uniq-03", "ibkr-uniq-01"])


def test_edits_on_both_sides_conflict_and_keep_both_keeps_both(a, b, sm):
    a.set("brokers/k", "base-uniq")
    a.ok("sync")
    b.ok("sync")
    a.set("brokers/k", "from-a-uniq")
    b.set("brokers/k", "from-b-uniq")
    b.ok("sync")
    result = a.run("sync", "aws")
    expect_failure(result, 7)
    assert result.stdout.splitlines()[1].startswith("  conflict       brokers/k  (changed on both sides: changed here ")
    assert a.get("brokers/k") == "from-a-uniq\n" and current(sm, "k")["value"] == "from-b-uniq"
    settled = a.ok("sync", "aws", "--resolve", "brokers/k=both").stdout
    copy = next(line.split()[2] for line in settled.splitlines() if line.startswith("  kept both"))
    assert current(sm, "k")["value"] == "from-a-uniq"
    assert current(sm, copy[len("brokers/"):])["value"] == "from-b-uniq"
    assert b.ok("sync").stdout == summary(pulled=2)
    assert b.get_all("brokers/k", copy) == {"brokers/k": "from-a-uniq\n", copy: "from-b-uniq\n"}


def test_deletions_use_aws_recovery_window_and_a_later_push_restores(a, b, sm):
    a.set("brokers/gone", "gone-uniq")
    a.set("brokers/kept", "kept-uniq")
    a.ok("sync")
    b.ok("sync")
    a.ok("rm", "brokers/gone")
    assert a.ok("sync").stdout == summary(deleted_remote=1)
    described = sm.describe_secret(SecretId=PREFIX + "gone")
    assert described.get("DeletedDate")  # scheduled, recoverable: AWS's own tombstone
    assert b.ok("sync").stdout == summary(deleted_here=1)
    expect_failure(b.run("get", "brokers/gone"), 4)

    b.set("brokers/gone", "back-again-uniq")  # re-created later under the same name
    assert b.ok("sync").stdout == summary(pushed=1)
    assert not sm.describe_secret(SecretId=PREFIX + "gone").get("DeletedDate")
    assert current(sm, "gone")["value"] == "back-again-uniq"
    assert a.ok("sync").stdout == summary(pulled=1)
    assert a.get("brokers/gone") == "back-again-uniq\n"


def _vault(tmp_path: Path, label: str) -> Vault:
    return Vault.create(tmp_path / label / "vault.its", PASSWORD, kdf=FAST_KDF)


def _remote(vault: Vault, server: Server):
    vault.set("creds/aws", KEY_SECRET, fields={"access_key_id": KEY_ID})
    add_remote(vault, make_remote("aws", "aws", "brokers/", PREFIX, {"region": REGION, "endpoint_url": server.url},
                                  "aws-keys", "creds/aws"))
    return get_remote(vault, "aws")


def test_a_racing_writer_fails_the_stage_move_and_nothing_is_overwritten(tmp_path, moto, sm):
    with _vault(tmp_path, "a") as vault:
        remote = _remote(vault, moto)
        vault.set("brokers/raced", "v1-uniq")
        with Syncer(vault, remote) as syncer:
            syncer.apply()
        vault.set("brokers/raced", "mine-uniq")
        with Syncer(vault, remote) as syncer:
            plan = syncer.plan()
            assert plan.item("brokers/raced").op is Op.PUSH
            sm.put_secret_value(SecretId=PREFIX + "raced", SecretString=json.dumps({"value": "theirs-uniq"}))
            result = syncer.apply(plan)
        assert not result.pushed and [c.name for c in result.conflicts] == ["brokers/raced"]
        assert current(sm, "raced") == {"value": "theirs-uniq"}
        assert vault.peek("brokers/raced").value == "mine-uniq"


def test_server_killed_mid_sync_loses_nothing_and_a_rerun_converges(tmp_path, moto, sm):
    count = 300
    with _vault(tmp_path, "a") as vault:
        remote = _remote(vault, moto)
        vault.import_secrets([Secret(name=f"brokers/acct{i:04d}", value=f"value-{i}-uniq") for i in range(count)], "t")
        killed = []

        def progress(p) -> None:
            if p.phase == "applying" and p.done >= 100 and not killed:
                moto.kill()
                killed.append(p.done)

        with Syncer(vault, remote, batch_size=25) as syncer, pytest.raises(BackendError) as failure:
            syncer.apply(progress=progress)
        # A request in flight when the server dies sees a refused connection or a cut-off answer.
        where = f"AWS Secrets Manager ({REGION} at {moto.url})"
        assert str(failure.value) in (f"cannot reach {where}: the connection failed",
                                      f"{where} gave an incomplete answer (is it shutting down?)")
        saved = len(vault.settings()["sync"]["aws"])
        assert 100 <= saved < count
    with Vault.open(tmp_path / "a" / "vault.its", PASSWORD) as vault:
        assert vault.verify_audit() > 0
        assert sum(1 for n in vault.names() if n.startswith("brokers/")) == count
        assert all(vault.peek(f"brokers/acct{i:04d}").value == f"value-{i}-uniq" for i in range(count))
        moto.start()  # back on the same port, empty
        with Syncer(vault, get_remote(vault, "aws")) as syncer:
            assert len(syncer.apply().pushed) == count
            assert syncer.plan().unchanged == count
    assert len(listed(sm)) == count


def test_a_sync_killed_outright_resumes_without_writing_anything_twice(a, sm, tmp_path):
    """SIGKILL to `its-vault sync` mid-push: the vault opens, and the rerun records what the
    killed run wrote (no second version anywhere) and pushes the rest."""
    count = 500
    dotenv = tmp_path / "many.env"
    dotenv.write_text("".join(f"ACCT{i:04d}=value-{i}-uniq\n" for i in range(count)))
    a.ok("import-env", str(dotenv), "--prefix", "brokers/bulk")
    process = subprocess.Popen([*ITS_VAULT, "sync"], env=a.env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(listed(sm)) < 100:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
        process.stdout.close()
        process.stderr.close()
    time.sleep(0.5)  # a request the killed process had already sent may still be served
    partial = len(listed(sm))
    assert 100 <= partial < count
    expect_ok(a.run("list", "--json"))  # the vault opens: nothing half-written
    result = a.ok("sync")
    assert result.stdout == summary(pushed=count - partial)  # what the killed run wrote is only recorded
    entries = listed(sm)
    assert len(entries) == count
    assert all(len(e["SecretVersionsToStages"]) == 1 for e in entries.values())  # idempotent: one version each
    assert a.ok("sync", "--plan").stdout.endswith(f", 0 conflicts, {count} unchanged\n")


def test_1000_secrets_sync_with_bounded_concurrency_and_progress(tmp_path, moto, sm):
    count = 1000
    names = [f"brokers/b{i % 50}/acct{i:04d}" for i in range(count)]
    with _vault(tmp_path, "a") as a, _vault(tmp_path, "b") as b:
        _remote(a, moto)
        _remote(b, moto)
        a.import_secrets([Secret(name=n, value=f"{n}-value-uniq") for n in names], "test")
        for vault, phase in ((a, "applying"), (b, "reading")):
            seen = []
            started = time.monotonic()
            with Syncer(vault, get_remote(vault, "aws"), workers=8) as syncer:
                result = syncer.apply(progress=seen.append)
            assert len(result.pushed or result.pulled) == count
            steps = [p for p in seen if p.phase == phase]
            assert steps[-1].done == steps[-1].total == count
            assert [p.done for p in steps] == sorted(p.done for p in steps)
            assert time.monotonic() - started < 60
        assert len(listed(sm)) == count
        assert all(b.peek(n).value == f"{n}-value-uniq" for n in names)


def test_errors_are_one_line(cli_env, tmp_path, moto):
    env = {k: v for k, v in cli_env.items() if not k.startswith("AWS_")}
    env.update(no_aws_chain(tmp_path))
    cli = Cli(env, tmp_path)
    cli.init()
    dead = f"http://127.0.0.1:{free_port()}"
    common = ("--type", "aws", "--folder", "brokers", "--region", REGION, "--prefix", PREFIX)
    cli.ok("remote", "add", "nokeys", *common, "--endpoint-url", moto.url)
    cli.set("creds/aws", KEY_SECRET, "--field", f"access_key_id={KEY_ID}")
    cli.ok("remote", "add", "dead", *common, "--endpoint-url", dead, "--credentials-secret", "creds/aws")
    assert cli.fails(1, "sync", "nokeys").stderr == (
        "its-vault: error: no AWS credentials: name a vault secret with --credentials-secret, or set up the AWS "
        "chain (environment, ~/.aws, an instance role)\n")
    assert cli.fails(1, "sync", "dead", "--plan").stderr == \
        f"its-vault: error: cannot reach AWS Secrets Manager ({REGION} at {dead}): the connection failed\n"
    cli.all_fail(2, (("remote", "add", "x", "--type", "aws", "--folder", "b", "--prefix", "bad prefix!",
                      "--region", REGION), {}),
                 (("remote", "add", "x", "--type", "aws", "--folder", "b", "--prefix", "p", "--region", "moon"), {}))
    cli.assert_clean([KEY_SECRET])
