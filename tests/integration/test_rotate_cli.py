"""``its-vault set --rotator``, ``rotate``, ``rotate --due`` and ``schedule`` as a user (or cron)
runs them: exit codes, one-line errors, and no value on any stream but ``get``'s."""

from __future__ import annotations

import json

import pytest

from tests.integration.cli_runner import CliRunner
from tests.integration.postgres import Postgres, postgres  # noqa: F401  (fixture)

FAST_INIT = ("init", "--kdf-memory", "8", "--kdf-time", "1")
OLD = "old-secret-uniq-8a1f"
NEW = "new-broker-key-uniq-3c9d"


@pytest.fixture
def cli(cli_env, tmp_path) -> CliRunner:
    runner = CliRunner(cli_env, tmp_path)
    runner.ok(*FAST_INIT)
    return runner


def schedule(cli: CliRunner) -> dict[str, dict]:
    return {row["name"]: row for row in json.loads(cli.ok("schedule", "--json").stdout)}


def assert_no_value_leaked(cli: CliRunner, *values: str) -> None:
    for result in cli.results:
        for value in values:
            assert value not in result.stderr, f"a value leaked into the stderr of {result.args}"
            if result.args[0] != "get":
                assert value not in result.stdout, f"a value leaked into the stdout of {result.args}"


def test_generated_rotation_from_the_command_line(cli: CliRunner):
    cli.ok("set", "bots/key", "--value-stdin", "--rotate-every", "30", "--rotator", "generated",
           "--length", "40", "--alphabet", "base64url", input=OLD)
    rotated = cli.ok("rotate", "bots/key")
    assert "verified and committed" in rotated.stderr and rotated.stdout == ""
    new = cli.ok("get", "bots/key").stdout.strip()
    assert len(new) == 40 and new != OLD
    row = schedule(cli)["bots/key"]
    assert (row["rotator"], row["status"]) == ("generated", "ok")
    assert row["last_rotated"] is not None and row["due_date"] > row["last_rotated"]
    assert set(row) >= {"name", "rotator", "last_rotated", "due_date", "status"}
    ops = [json.loads(line)["op"] for line in cli.ok("audit", "--json").stdout.splitlines()]
    assert [op for op in ops if op.startswith("rotate")] == ["rotate-create", "rotate-set", "rotate-test",
                                                            "rotate-finish"]
    assert_no_value_leaked(cli, OLD, new)


def test_set_generate_follows_the_stored_value_policy(cli: CliRunner):
    cli.ok("set", "hexkey", "--generate", "--length", "24", "--alphabet", "hex")
    cli.ok("set", "hexkey", "--generate")  # a new value with the policy stored above
    value = cli.ok("get", "hexkey").stdout.strip()
    assert len(value) == 24 and set(value) <= set("0123456789abcdef")


def test_manual_rotation_needs_a_value_and_a_confirmation(cli: CliRunner):
    cli.ok("set", "brokers/ibkr", "--value-stdin", "--rotate-every", "90", "--field", "url=https://broker.example",
           input=OLD)
    unconfirmed = cli.run("rotate", "brokers/ibkr", "--value-stdin", input=NEW)
    assert unconfirmed.code == 1 and "Traceback" not in unconfirmed.stderr
    assert "failed at step 'test'" in unconfirmed.stderr.splitlines()[-1]
    assert "https://broker.example" in unconfirmed.stderr  # the guidance came first
    assert cli.ok("get", "brokers/ibkr").stdout.strip() == OLD  # still the one in use
    assert schedule(cli)["brokers/ibkr"]["rotation_pending"] is True
    cli.ok("rotate", "brokers/ibkr", "--yes")  # resumes: only the confirmation is needed
    assert cli.ok("get", "brokers/ibkr").stdout.strip() == NEW
    assert_no_value_leaked(cli, OLD, NEW)


def test_rotate_usage_and_failures_are_one_line_errors(cli: CliRunner):
    cli.ok("set", "plain", "--value-stdin", input=OLD)
    cli.fails(2, "rotate")
    cli.fails(2, "rotate", "plain", "--due")
    cli.fails(2, "rotate", "plain", "--rotator", "carrier-pigeon")
    cli.fails(2, "set", "plain", "--rotator", "carrier-pigeon")
    cli.fails(2, "set", "plain", "--alphabet", "emoji")
    cli.fails(4, "rotate", "missing")
    needs_person = cli.run("rotate", "plain")  # manual, and nobody at the terminal to enter a value
    assert needs_person.code == 1 and "failed at step 'create': no new value" in needs_person.stderr
    not_db = cli.fails(1, "rotate", "plain", "--rotator", "postgresql")
    assert "not a database" in not_db.stderr
    cli.fails(1, "rotate", "plain", "--abandon")  # nothing to abandon


def test_rotate_due_rotates_the_automatic_ones_and_names_the_manual_ones(cli: CliRunner):
    cli.ok("set", "auto", "--value-stdin", "--rotator", "generated", input=OLD)
    cli.ok("set", "hand", "--value-stdin", input=OLD)
    cli.ok("set", "fresh", "--value-stdin", "--rotator", "generated", "--rotate-every", "30", input=OLD)
    assert "nothing is due" in cli.ok("rotate", "--due").stderr
    cli.ok("lockdown")  # marks everything "rotate now"
    due = cli.ok("rotate", "--due")
    assert "rotated auto with generated" in due.stderr and "rotated fresh with generated" in due.stderr
    assert "hand is due and needs a person" in due.stderr
    rows = schedule(cli)
    assert rows["hand"]["status"] == "overdue" and "auto" not in rows and rows["fresh"]["status"] == "ok"
    cli.ok("set", "db", "--value-stdin", "--type", "database", "--rotator", "postgresql", "--rotate-every", "1",
           input=OLD)
    cli.ok("lockdown")
    failing = cli.run("rotate", "--due")
    assert failing.code == 1 and "rotation of 'db' failed at step" not in failing.stdout
    assert "db" in failing.stderr and "Traceback" not in failing.stderr
    assert_no_value_leaked(cli, OLD)


def test_a_database_secret_rotates_against_a_real_server(cli: CliRunner, postgres: Postgres):
    role = postgres.create_role(OLD)
    cli.ok("set", "db/main", "--value-stdin", "--type", "database", "--rotator", "postgresql",
           "--field", "host=127.0.0.1", "--field", f"port={postgres.port}", "--field", f"user={role}",
           "--field", f"dbname={role}", input=OLD)
    cli.ok("rotate", "db/main")
    new = cli.ok("get", "db/main").stdout.strip()
    assert postgres.signs_in(role, new) and not postgres.signs_in(role, OLD)
    assert_no_value_leaked(cli, OLD, new)
