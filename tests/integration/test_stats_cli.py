"""`its-vault stats` driven as a user would, in real subprocesses on a real vault: the text
report, `--json` with the same numbers, `--days`, a one-line usage error, and no secret value,
name or credential anywhere in what it prints.

Until `cli/main.py` registers the command, the runs go through `its_desktop.cli.stats.main`,
which is `cli.main.main` with `stats` added to the parser.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime

import pytest

from tests.integration.cli_runner import CliRunner, Result, call, expect_failure, expect_ok

FAST_INIT = ("init", "--kdf-memory", "8", "--kdf-time", "1")
STATS_MAIN = "import sys; from its_desktop.cli.stats import main; sys.exit(main(sys.argv[1:]))"
SECRETS = {  # name -> (type, value); every value carries a unique token
    "brokers/ibkr/api_key": ("api_key", "AKIA-stats-uniq-51c0de"),
    "brokers/alpaca/api_key": ("api_key", "PK-stats-uniq-7a11ce"),
    "db/main/password": ("password", "pw stats-uniq-d00d42"),
    "remotes/bao-token": ("generic", "hvs.stats-uniq-70ken5"),
}
TOKENS = [value for _, value in SECRETS.values()] + ["uniq"]


class StatsCli(CliRunner):
    def stats(self, *args: str) -> Result:
        started = datetime.now()
        with subprocess.Popen([sys.executable, "-c", STATS_MAIN, "stats", *args], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env, cwd=self.tmp_path) as proc:
            out, err = proc.communicate(timeout=120)
        result = Result(("stats", *args), proc.returncode, out.decode(), err.decode(),
                        (datetime.now() - started).total_seconds(), proc.pid)
        self.results.append(result)
        return result


@pytest.fixture
def cli(cli_env, tmp_path) -> StatsCli:
    runner = StatsCli(cli_env, tmp_path)
    runner.ok(*FAST_INIT)
    for result in runner.run_all(*(call("set", name, "--type", kind, "--value-stdin", input=value)
                                   for name, (kind, value) in SECRETS.items() if name != "db/main/password")):
        expect_ok(result)
    runner.ok("set", "db/main/password", "--type", "password", "--value-stdin", "--rotate-every", "90",
              input=SECRETS["db/main/password"][1])
    runner.ok("remote", "add", "desk", "--type", "openbao", "--folder", "brokers/", "--url", "https://bao:8200",
              "--mount", "secret", "--prefix", "its/brokers", "--token-secret", "remotes/bao-token")
    expect_failure(runner.run("get", "db/main/password", env={"ITS_MASTER_PASSWORD": "wrong uniq-bad"}), 3)
    return runner


def assert_nothing_secret(results: list[Result]) -> None:
    for result in results:
        if result.args[0] == "stats":
            for needle in [*TOKENS, *SECRETS, "bao:8200"]:
                assert needle not in result.stdout + result.stderr, f"{needle} in the output of {result.args}"


def test_text_and_json_report_the_same_numbers(cli):
    text, doc = cli.run_all(call("list"), call("list"))  # two more unlocks, side by side
    expect_ok(text), expect_ok(doc)
    text = expect_ok(cli.stats())
    doc = json.loads(expect_ok(cli.stats("--json")).stdout)

    assert doc["days"] == 30 and len(doc["activity"]) == 30
    assert doc["secrets"] == {"total": 4, "by_type": {"api_key": 2, "password": 1, "database": 0, "certificate": 0,
                                                      "ssh_key": 0, "totp": 0, "note": 0, "generic": 1}}
    assert doc["schedule"] == {"scheduled": 1, "ok": 1, "due_soon": 0, "overdue": 0, "expired": 0,
                               "rotate_requested": 0, "rotation_pending": 0}
    today = doc["activity"][-1]
    assert today["day"] == datetime.now().astimezone().date().isoformat()
    # init does not unlock; 4 sets, remote add, 2 lists and the text stats did; the JSON run's own too
    assert today["unlocks_ok"] == 9 and today["unlocks_failed"] == 1
    assert today["agent_reads_granted"] == today["agent_reads_denied"] == 0
    assert doc["remotes"] == [{"name": "desk", "type": "openbao", "tracked": 0, "last_sync": None}]

    lines = text.stdout.splitlines()
    assert lines[0] == "Secrets: 4"
    assert "  api_key        2" in lines and "  generic        1" in lines
    assert any(line.startswith("  overdue") and line.endswith(" 0") for line in lines)
    assert any(line.startswith("  unlocks") and "8 ok" in line and "1 failed" in line for line in lines)
    assert any("desk" in line and "openbao" in line and "last sync never" in line for line in lines)
    assert text.stderr == ""
    assert_nothing_secret(cli.results)


def test_days_narrow_the_window_and_bad_days_are_a_usage_error(cli):
    doc = json.loads(expect_ok(cli.stats("--days", "3", "--json")).stdout)
    assert [d["day"] for d in doc["activity"]][-1] == datetime.now().astimezone().date().isoformat()
    assert len(doc["activity"]) == 3
    for bad in ("0", "100000"):
        result = expect_failure(cli.stats("--days", bad), 2)
        assert "--days must be between 1 and" in result.stderr
    result = expect_failure(cli.stats("--days", "many"), 2)
    assert "invalid int value" in result.stderr
    assert_nothing_secret(cli.results)
