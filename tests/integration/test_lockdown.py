"""``its-vault lockdown``: with a running agent (it holds the key: no password needed) and
without one (the CLI unlocks the vault itself). Either way every grant is revoked, every
secret is marked "rotate now", the vault locks, and the schedule becomes the checklist."""

from __future__ import annotations

import json
import sys

from its_desktop.core.vault.api import Vault
from tests.conftest import PASSWORD
from tests.integration.test_agent import (  # noqa: F401  (fixtures)
    SECRETS,
    agent,
    audit,
    cli,
    env,
    make_vault,
    ok,
    run_bot,
    write_bot,
)


def grants(env) -> list[dict]:
    return json.loads(ok(cli(env, "grant", "list", "--json")).stdout)


def test_lockdown_through_the_running_agent_needs_no_password_and_leaves_a_checklist(env, agent, tmp_path):
    path = make_vault(env, SECRETS)
    bot = write_bot(tmp_path / "bots")
    ok(cli(env, "grant", "add", "--exe", sys.executable, "--script", str(bot), "--secret", "brokers/*"))
    agent.start()
    assert run_bot(bot, env, "brokers/ibkr/api_key")[0].startswith("OK ")
    done = ok(cli(env, "lockdown", unset=("ITS_MASTER_PASSWORD",)))
    assert "lockdown done by the agent" in done.stderr and "1 agent grant revoked, 2 secrets marked" in done.stderr
    assert agent.wait_exit() == 0  # a headless agent stops when locked
    assert grants(env) == []
    schedule = json.loads(ok(cli(env, "schedule", "--json")).stdout)
    assert {row["name"] for row in schedule} == set(SECRETS)
    assert all(row["status"] == "overdue" and row["rotate_requested"] for row in schedule)
    ops = [(e["op"], e["outcome"]) for e in audit(env)]
    assert ("lockdown", "ok") in ops and ("lock", "ok") in ops
    with Vault.open(path, PASSWORD) as vault:
        assert vault.verify_audit() > 0


def test_lockdown_without_an_agent_unlocks_the_vault_itself(env, tmp_path):
    make_vault(env, SECRETS)
    ok(cli(env, "grant", "add", "--exe", sys.executable, "--secret", "*"))
    done = ok(cli(env, "lockdown"))
    assert "lockdown: 1 agent grant revoked, 2 secrets marked rotate now" in done.stderr
    assert grants(env) == []
    # A second lockdown marks nothing new: the first request time is kept.
    assert "0 agent grants revoked, 0 secrets marked" in ok(cli(env, "lockdown")).stderr
    # Rotating a secret answers its request.
    ok(cli(env, "rotate", "database/main", "--rotator", "generated"))
    rows = {r["name"]: r for r in json.loads(ok(cli(env, "schedule", "--json")).stdout)}
    assert "database/main" not in rows and rows["brokers/ibkr/api_key"]["status"] == "overdue"


def test_lockdown_with_a_wrong_password_and_no_agent_is_exit_3_and_changes_nothing(env, tmp_path):
    make_vault(env, SECRETS)
    failed = cli({**env, "ITS_MASTER_PASSWORD": "wrong-uniq-1"}, "lockdown")
    assert failed.returncode == 3 and failed.stderr.count("\n") == 1
    assert json.loads(ok(cli(env, "schedule", "--json")).stdout) == []
