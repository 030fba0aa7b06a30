"""``its-vault run``: a real child process gets the secrets it asked for (in its environment or
as private files) and whatever it prints has them masked, even when a value is split across
writes. (Through a running agent: see test_agent.)"""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ITS_VAULT
from tests.integration.test_agent import agent_env, cli, make_vault, ok

API_KEY = "AKIA-run-uniq-3f9b2c71e4"
ACCOUNT = "U7654321-run-uniq-0a"
PEM = "-----BEGIN KEY-----\nMIIEow-run-uniq-line-one\nAQAB-run-uniq-line-two\n-----END KEY-----"
QUOTED = 'pa"ss\\word-run-uniq-9'

SECRETS = {"brokers/ibkr/api_key": (API_KEY, {"account": ACCOUNT}), "certs/bot": (PEM, {}),
           "db/main": (QUOTED, {})}


@pytest.fixture
def env(cli_env, tmp_path) -> dict[str, str]:
    env = agent_env(cli_env, tmp_path)
    make_vault(env, SECRETS)
    return env


def run(env: dict[str, str], *args: str, cwd: Path | None = None, **options) -> subprocess.CompletedProcess:
    return cli(env, "run", *args, cwd=cwd, **options)


def py(code: str) -> list[str]:
    return ["--", sys.executable, "-c", code]


CHILD = r"""
import json, os, sys, time
key = os.environ["KEY"]
print("stdout:", key, "account:", os.environ["ACCOUNT"], flush=True)
print("stderr:", key, file=sys.stderr, flush=True)
sys.stdout.write(key[:7]); sys.stdout.flush(); time.sleep(0.1)      # split across two writes
sys.stdout.write(key[7:] + "\n"); sys.stdout.flush()
print("json:", json.dumps({"pem": os.environ["PEM"], "db": os.environ["DB"]}))
print("pem line:", os.environ["PEM"].splitlines()[1])
print("plain:", os.environ["PLAIN"], "inherited:", os.environ["FROM_ENV"])
print("master password seen:", "ITS_MASTER_PASSWORD" in os.environ)
print("lengths:", len(key), len(os.environ["PEM"]), len(os.environ["DB"]))
sys.exit(7)
"""


def test_run_injects_references_and_masks_every_form_of_the_values(env, tmp_path):
    dotenv = tmp_path / "bot.env"
    dotenv.write_text("# committed: references only\nPEM=its://certs/bot\nPLAIN=not-a-secret\nDB=its://db/main\n")
    result = run({**env, "FROM_ENV": "its://brokers/ibkr/api_key#account"},
                 "--env", "KEY=its://brokers/ibkr/api_key", "--env", "ACCOUNT=its://brokers/ibkr/api_key#account",
                 "--env-file", str(dotenv), *py(CHILD))
    assert result.returncode == 7, result.stderr  # the child's status
    assert result.stdout.splitlines() == [
        "stdout: *** account: ***", "***", 'json: {"pem": "***", "db": "***"}', "pem line: ***",
        "plain: not-a-secret inherited: ***", "master password seen: False",
        f"lengths: {len(API_KEY)} {len(PEM)} {len(QUOTED)}"]
    assert result.stderr == "stderr: ***\n"
    everything = result.stdout + result.stderr
    for value in (API_KEY, ACCOUNT, QUOTED, json.dumps(QUOTED)[1:-1], "run-uniq"):
        assert value not in everything


def test_run_masks_a_value_split_at_every_position(env):
    code = ("import os, sys, time\n"
            "key = os.environ['KEY']\n"
            "for cut in range(1, len(key)):\n"
            "    sys.stdout.write(f'{cut}:' + key[:cut]); sys.stdout.flush(); time.sleep(0.002)\n"
            "    sys.stdout.write(key[cut:] + '\\n'); sys.stdout.flush()\n"
            "sys.stdout.write('tail ' + key[:5])\n")
    result = ok(run(env, "--env", "KEY=its://brokers/ibkr/api_key", *py(code)))
    lines = result.stdout.split("\n")
    assert lines[:-1] == [f"{cut}:***" for cut in range(1, len(API_KEY))]
    assert lines[-1] == "tail " + API_KEY[:5]  # the start of a value, at the end of the stream, is all there is


def test_files_mode_passes_private_files_and_removes_them(env, tmp_path):
    code = ("import os, stat, sys\n"
            "path = os.environ['KEY']\n"
            "folder = os.path.dirname(path)\n"
            "print(path)\n"
            "print(oct(stat.S_IMODE(os.stat(folder).st_mode)), oct(stat.S_IMODE(os.stat(path).st_mode)))\n"
            "print('value in environ:', open('/proc/self/environ', 'rb').read().find(open(path, 'rb').read()) >= 0)\n"
            "print('read:', open(path).read())\n"
            "print('pem lines:', len(open(os.environ['PEM']).read().splitlines()))\n")
    result = ok(run(env, "--files", "--env", "KEY=its://brokers/ibkr/api_key", "--env", "PEM=its://certs/bot",
                    *py(code)))
    path, modes, environ, read, pem = result.stdout.splitlines()
    assert Path(path).parent.parent == Path(env["ITS_AGENT_DIR"]) and Path(path).name == "KEY"
    assert modes == "0o700 0o600"
    assert environ == "value in environ: False"
    assert read == "read: ***"  # printed anyway: still masked
    assert pem == "pem lines: 4"
    assert not Path(path).exists() and not Path(path).parent.exists()
    assert stat.S_IMODE(Path(env["ITS_AGENT_DIR"]).stat().st_mode) == 0o700


def test_run_errors_are_one_line_and_never_start_the_command(env, tmp_path):
    marker = tmp_path / "started"
    touch = py(f"open({str(marker)!r}, 'w')")
    bad_env = tmp_path / "bad.env"
    bad_env.write_text("KEY=its://brokers/ibkr/api_key\nnot a line\n")
    cases = [
        ((), 2, "run needs a command"),
        (("--env", "KEY=plain-value", *touch), 2, "--env expects VAR=its://NAME[#field]"),
        (("--env", "1KEY=its://x/y", *touch), 2, "invalid environment variable name"),
        (("--env", "KEY=its://bad//name", *touch), 2, "invalid reference"),
        (("--env-file", str(bad_env), *touch), 2, "bad.env:2: expected KEY=VALUE"),
        (("--env", "KEY=its://brokers/nope", *touch), 4, "no secret named 'brokers/nope'"),
        (("--env", "KEY=its://brokers/ibkr/api_key#nope", *touch), 4, "has no field 'nope'"),
        (("--", str(tmp_path / "no-such-program")), 127, "command not found"),
    ]
    for args, code, message in cases:
        result = run(env, *args)
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.startswith("its-vault: error: ") and message in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert not marker.exists()


def test_sigterm_reaches_the_child_and_its_status_is_returned(env):
    code = ("import os, signal, sys, time\n"
            "signal.signal(signal.SIGTERM, lambda *a: (print('child got SIGTERM', os.environ['KEY'], flush=True),"
            " sys.exit(3)))\n"
            "print('ready', flush=True)\n"
            "time.sleep(30)\n")
    proc = subprocess.Popen([*ITS_VAULT, "run", "--env", "KEY=its://brokers/ibkr/api_key", *py(code)], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert out == "child got SIGTERM ***\n" and proc.returncode == 3, err
    killed = subprocess.run([*ITS_VAULT, "run", *py("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")],
                            env=env, capture_output=True, timeout=60)
    assert killed.returncode == 128 + signal.SIGKILL
    # No reference: nothing to unlock (no password needed).
    assert ok(run(env, *py("print('plain')"), unset=("ITS_MASTER_PASSWORD",))).stdout == "plain\n"
