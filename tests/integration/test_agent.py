"""The agent with real processes: a headless ``its-vault agent``, bots that read through it,
another user, grants that expire or are revoked by locking, hostile clients, and the command
line reusing the unlocked session.

Every test has its own vault and its own agent folder (``ITS_AGENT_DIR``). Secret values carry
a unique token so a leak is unmistakable.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from its_desktop.agent import protocol as wire
from its_desktop.agent.grants import Grant, add_to_settings
from its_desktop.agent.peer import Hasher, Peer, identify
from its_desktop.core.vault.api import Vault
from tests.conftest import FAST_KDF, ITS_VAULT, PASSWORD

API_KEY = "AKIA-agent-uniq-5c1e9a77d0"
ACCOUNT = "U1234567-uniq-77ab"
DB_PASSWORD = "db-pass-uniq-19fe03c2"
VENV_ITS_VAULT = Path(sys.executable).with_name("its-vault")

# A bot: reads the secrets named on its command line (NAME or NAME#field), or, with --serve,
# one per line of stdin over one connection; prints "OK value" or "ERR Class: message".
BOT = r'''
import sys
from its_desktop.client import AgentError, get_secret

def read(spec):
    name, _, field = spec.partition("#")
    try:
        return "OK " + get_secret(name, field or None)
    except AgentError as error:
        return f"ERR {type(error).__name__}: {error}"

if sys.argv[1:] == ["--serve"]:
    for line in sys.stdin:
        print(read(line.strip()), flush=True)
else:
    for spec in sys.argv[1:]:
        print(read(spec), flush=True)
'''


# -- helpers (also used by test_run and test_keyring) ----------------------------------------------


def agent_env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**cli_env, "ITS_AGENT_DIR": str(tmp_path / "agent")}


def make_vault(env: dict[str, str], secrets: dict[str, tuple[str, dict]] | None = None,
               grants: list[Grant] = ()) -> Path:
    """A vault at the env's path holding ``secrets`` ({name: (value, fields)}) and ``grants``."""
    path = Path(env["ITS_VAULT_PATH"])
    with Vault.create(path, PASSWORD, kdf=FAST_KDF) as vault:
        for name, (value, fields) in (secrets or {}).items():
            vault.set(name, value, fields=fields)
        for grant in grants:
            vault.change_settings(lambda s, g=grant: add_to_settings(s, g))
    return path


def cli(env: dict[str, str], *args: str, input: str | None = None, unset: tuple[str, ...] = (),
        program: list[str] | None = None, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    full = {k: v for k, v in env.items() if k not in unset}
    return subprocess.run([*(program or ITS_VAULT), *args], env=full, input=input, capture_output=True, text=True,
                          stdin=None if input is not None else subprocess.DEVNULL, cwd=cwd, timeout=timeout)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"{result.args} -> {result.returncode}: {result.stderr}"
    assert "Traceback" not in result.stderr
    return result


class Agent:
    """``its-vault agent --foreground`` in a subprocess; stderr is drained by a thread so the
    agent never blocks on a full pipe."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.stderr: list[str] = []

    @property
    def folder(self) -> Path:
        return Path(self.env["ITS_AGENT_DIR"])

    @property
    def socket(self) -> Path:
        return self.folder / wire.SOCKET_NAME

    def start(self) -> Agent:
        self.stderr = []
        self.proc = subprocess.Popen([*ITS_VAULT, "agent", "--foreground"], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + 30
        while not any("agent serving" in line for line in self.stderr):
            assert self.proc.poll() is None, f"the agent exited: {''.join(self.stderr)}"
            assert time.monotonic() < deadline, "the agent did not start"
            time.sleep(0.02)
        return self

    def _drain(self, proc: subprocess.Popen) -> None:
        with proc.stderr:
            for line in proc.stderr:
                self.stderr.append(line)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout: float = 15) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(15)

    def assert_no_traceback(self) -> None:
        assert "Traceback" not in "".join(self.stderr), "".join(self.stderr)


def write_bot(folder: Path, name: str = "bot.py", code: str = BOT) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(code)
    return path


def run_bot(bot: Path, env: dict[str, str], *specs: str, timeout: float = 30) -> list[str]:
    result = subprocess.run([sys.executable, bot.name, *specs], cwd=bot.parent, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return result.stdout.splitlines()


def grant_for_this_process(pattern: str, ttl: str = "always") -> Grant:
    """A grant for the test process itself (its interpreter, pytest and folder), so a test can
    be a client without a bot subprocess."""
    me = identify(Peer(os.getpid(), os.getuid(), os.getgid()), Hasher())
    return Grant.for_client(me, pattern, ttl)


def raw_request(path: Path, *frames: bytes, timeout: float = 5) -> list[dict]:
    """Send raw bytes on a fresh connection; return every reply frame until the agent closes
    the connection or stops answering."""
    replies = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        for frame in frames:
            sock.sendall(frame)
        sock.shutdown(socket.SHUT_WR)
        buffer = bytearray()
        try:
            while chunk := sock.recv(65536):
                buffer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    while (payload := wire.take_frame(buffer, wire.MAX_REPLY)) is not None:
        replies.append(json.loads(payload))
    return replies


def frame(message: dict | bytes) -> bytes:
    payload = message if isinstance(message, bytes) else json.dumps(message).encode()
    return len(payload).to_bytes(4, "big") + payload


def audit(env: dict[str, str]) -> list[dict]:
    return [json.loads(line) for line in ok(cli(env, "audit", "--json")).stdout.splitlines()]


@pytest.fixture
def env(cli_env, tmp_path) -> dict[str, str]:
    return agent_env(cli_env, tmp_path)


@pytest.fixture
def agent(env):
    running = Agent(env)
    yield running
    running.stop()
    running.assert_no_traceback()


SECRETS = {"brokers/ibkr/api_key": (API_KEY, {"account": ACCOUNT}), "database/main": (DB_PASSWORD, {"host": "db1"})}


# -- bots ------------------------------------------------------------------------------------------


def test_a_bot_is_refused_until_granted_then_reads_and_every_request_is_audited(env, agent, tmp_path):
    make_vault(env, SECRETS)
    agent.start()
    folder = stat.S_IMODE(agent.folder.stat().st_mode)
    sock = agent.socket.lstat()
    assert folder == 0o700 and stat.S_ISSOCK(sock.st_mode) and stat.S_IMODE(sock.st_mode) == 0o600
    bot = write_bot(tmp_path / "bots")
    (denied,) = run_bot(bot, env, "brokers/ibkr/api_key")
    assert denied.startswith("ERR AccessDenied: access denied: no grant lets python bot.py")
    assert "its-vault grant add --exe" in denied and f"--script {bot}" in denied and "'brokers/ibkr/*'" in denied
    added = ok(cli(env, "grant", "add", "--exe", sys.executable, "--script", str(bot), "--cwd", str(bot.parent),
                   "--secret", "brokers/ibkr/*", "--ttl", "8h"))
    grant_id = added.stdout.strip()
    assert grant_id.startswith("g") and API_KEY not in added.stdout + added.stderr
    assert run_bot(bot, env, "brokers/ibkr/api_key", "brokers/ibkr/api_key#account", "database/main",
                   "brokers/ibkr/nope") == [
        f"OK {API_KEY}", f"OK {ACCOUNT}",
        "ERR AccessDenied: access denied: no grant lets python bot.py in "
        f"{bot.parent} read 'database/main'; allow it with: "
        f"its-vault grant add --exe {os.path.realpath(sys.executable)} --script {bot} --cwd {bot.parent} "
        "--secret 'database/*'",
        "ERR AgentSecretNotFound: no secret named 'brokers/ibkr/nope'"]
    listed = json.loads(ok(cli(env, "grant", "list", "--json")).stdout)
    assert [g["id"] for g in listed] == [grant_id] and listed[0]["pattern"] == "brokers/ibkr/*"
    assert listed[0]["script"] == str(bot) and listed[0]["exe_hash"] and listed[0]["expires"]
    # A change to the bot's code is a different program: the grant no longer fits.
    bot.write_text(BOT + "\n# edited\n")
    assert run_bot(bot, env, "brokers/ibkr/api_key")[0].startswith("ERR AccessDenied")
    agent.stop()
    events = [e for e in audit(env) if e["actor"]["kind"] == "agent"]
    reads = [(e["op"], e["name"], e["outcome"]) for e in events if e["op"] == "read"]
    assert reads == [("read", "brokers/ibkr/api_key", "denied"), ("read", "brokers/ibkr/api_key", "ok"),
                     ("read", "brokers/ibkr/api_key", "ok"), ("read", "database/main", "denied"),
                     ("read", "brokers/ibkr/nope", "not-found"), ("read", "brokers/ibkr/api_key", "denied")]
    assert all(e["actor"]["exe"] == os.path.realpath(sys.executable) for e in events if e["op"] == "read")
    ok(cli(env, "audit", "verify"))
    everything = cli(env, "audit", "--json").stdout
    assert API_KEY not in everything and ACCOUNT not in everything


def test_another_user_is_refused(env, tmp_path):
    """As `nobody`: the private folder stops it; and with the folder opened by mistake, the
    agent's own peer check (SO_PEERCRED) refuses it and audits the attempt."""
    import shutil
    import tempfile

    make_vault(env, SECRETS)
    outer = Path(tempfile.mkdtemp(prefix="its-agent-test-"))  # pytest's folders are closed to nobody
    env = {**env, "ITS_AGENT_DIR": str(outer / "agent")}
    agent = Agent(env).start()
    try:
        _refused_as_nobody(env, agent, outer)
    finally:
        agent.stop()
        shutil.rmtree(outer, ignore_errors=True)
    agent.assert_no_traceback()
    refused = [e for e in audit(env) if e["op"] == "agent-connect"]
    assert refused and refused[0]["outcome"] == "denied" and "uid 65534" in refused[0]["detail"]


def _refused_as_nobody(env: dict[str, str], agent: Agent, outer: Path) -> None:
    python = _interpreter_for_nobody()
    reader = ("import os, sys\n"
              "from its_desktop.client import get_secret, AgentError\n"
              "try:\n    print('OK', get_secret('brokers/ibkr/api_key'))\n"
              "except AgentError as e:\n    print(f'ERR {type(e).__name__}: {e}')\n")
    nobody_env = {"PATH": "/usr/bin:/bin", "ITS_AGENT_DIR": env["ITS_AGENT_DIR"],
                  "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([python, "-c", reader], user="nobody", env=nobody_env, cwd="/", capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ERR AgentUnavailable: cannot reach the agent at")
    assert "permission denied" in out.stdout

    # Open the way to the socket (as a careless chmod would) and try again, raw.
    for path, mode in ((outer, 0o711), (agent.folder, 0o711), (agent.socket, 0o666)):
        os.chmod(path, mode)
    raw = ("import json, socket, sys\n"
           "s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])\n"
           "body = json.dumps({'v': 1, 'op': 'get', 'name': 'brokers/ibkr/api_key'}).encode()\n"
           "try:\n    s.sendall(len(body).to_bytes(4, 'big') + body)\nexcept OSError:\n    pass\n"
           "data = b''\n"
           "while True:\n    chunk = s.recv(65536)\n    if not chunk: break\n    data += chunk\n"
           "print(data[4:].decode())\n")
    out = subprocess.run([python, "-c", raw, str(agent.socket)], user="nobody", env=nobody_env, cwd="/",
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert reply["ok"] is False and reply["error"] == "denied"
    assert reply["message"] == "this agent serves only the user who unlocked the vault"
    assert API_KEY not in out.stdout
    assert agent.running


def _interpreter_for_nobody() -> str:
    """A Python that `nobody` may run (the venv's may sit in root's home)."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        try:
            if subprocess.run([candidate, "-c", "pass"], user="nobody", cwd="/", capture_output=True,
                              timeout=30).returncode == 0:
                return candidate
        except OSError:
            continue
    raise AssertionError("no Python interpreter that the user nobody may run")


def test_a_grant_expires_after_its_ttl_even_on_an_open_connection(env, agent, tmp_path):
    make_vault(env, SECRETS)
    bot = write_bot(tmp_path / "bots")
    ok(cli(env, "grant", "add", "--exe", sys.executable, "--script", str(bot), "--secret", "brokers/*",
           "--ttl", "2s"))
    agent.start()
    proc = subprocess.Popen([sys.executable, bot.name, "--serve"], cwd=bot.parent, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        def ask() -> str:
            proc.stdin.write("brokers/ibkr/api_key\n")
            proc.stdin.flush()
            return proc.stdout.readline().strip()

        assert ask() == f"OK {API_KEY}"
        assert ask() == f"OK {API_KEY}"  # the cached decision
        time.sleep(2.2)
        assert ask().startswith("ERR AccessDenied: access denied: no grant lets python bot.py")
    finally:
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()
    listed = json.loads(ok(cli(env, "grant", "list", "--json")).stdout)
    assert listed[0]["expired"] is True


def test_locking_revokes_sessions_and_stops_the_agent(env, agent, tmp_path):
    make_vault(env, SECRETS)
    bot = write_bot(tmp_path / "bots")
    ok(cli(env, "grant", "add", "--exe", sys.executable, "--script", str(bot), "--secret", "brokers/ibkr/api_key",
           "--ttl", "once"))
    agent.start()
    proc = subprocess.Popen([sys.executable, bot.name, "--serve"], cwd=bot.parent, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        proc.stdin.write("brokers/ibkr/api_key\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == f"OK {API_KEY}"
        # The "once" grant now belongs to this session: it left the vault.
        deadline = time.monotonic() + 10
        while json.loads(ok(cli(env, "grant", "list", "--json")).stdout):
            assert time.monotonic() < deadline, "the used 'once' grant stayed in the vault"
            time.sleep(0.1)
        locked = ok(cli(env, "lock", unset=("ITS_MASTER_PASSWORD",)))
        assert "locked: the agent" in locked.stderr
        assert agent.wait_exit() == 0
        assert not agent.socket.exists()
        proc.stdin.write("brokers/ibkr/api_key\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == ("ERR AgentUnavailable: no agent is running: unlock ITS Desktop, "
                                                  "or start 'its-vault agent'")
    finally:
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()
    # A new session: the once-grant was revoked with the old one.
    agent.start()
    assert run_bot(bot, env, "brokers/ibkr/api_key")[0].startswith("ERR AccessDenied")
    agent.stop()
    ops = [(e["op"], e["outcome"]) for e in audit(env)]
    assert ("grant-use", "ok") in ops and ("lock", "ok") in ops and ("agent-stop", "ok") in ops
    assert ok(cli(env, "lock")).stderr.startswith("nothing to lock")


def test_hostile_clients_get_errors_and_never_stop_the_agent(env, agent, tmp_path):
    make_vault(env, SECRETS, grants=[grant_for_this_process("brokers/*")])
    agent.start()
    from its_desktop.client import AgentClient

    good = AgentClient(str(agent.socket))
    assert good.get("brokers/ibkr/api_key") == API_KEY

    # A connection that sends half a frame and waits, and one that never reads its replies.
    slow = socket.socket(socket.AF_UNIX)
    slow.connect(str(agent.socket))
    slow.sendall(b"\x00\x00\x01")
    deaf = socket.socket(socket.AF_UNIX)
    deaf.connect(str(agent.socket))
    deaf.setblocking(False)
    request = frame({"v": 1, "op": "get", "name": "brokers/ibkr/api_key"})
    sent = 0
    try:
        for _ in range(20000):
            sent += deaf.send(request * 64)
    except BlockingIOError:
        pass
    assert sent > 0

    # Typed error replies for each kind of malformed request, on connections that stay usable.
    cases = [
        (frame(b"not json"), "bad_request"), (frame(b"\xff\xfe"), "bad_request"), (frame(b"[1, 2]"), "bad_request"),
        (frame(b"[" * 60000), "bad_request"), (frame({"v": 1, "op": "get", "name": 7}), "bad_request"),
        (frame({"v": 1, "op": "fly"}), "bad_request"), (frame({"v": 2, "op": "get"}), "unsupported_version"),
        (frame({"op": "status"}), "unsupported_version"), (frame(b""), "bad_request"),
        (frame({"v": 1, "op": "get", "name": "brokers/ibkr/api_key", "field": "account", "id": "x"}), None),
    ]
    replies = raw_request(agent.socket, *(data for data, _ in cases))
    assert [r.get("error") for r in replies] == [code for _, code in cases]
    assert replies[-1] == {"v": 1, "ok": True, "id": "x", "value": ACCOUNT}
    assert replies[6]["versions"] == [1]
    (too_large,) = raw_request(agent.socket, (70000).to_bytes(4, "big") + b"{")
    assert too_large["error"] == "too_large"

    # Random bytes, random frames, random cuts: every reply is a well-formed error, nothing more.
    rng = random.Random(20240611)
    codes = set()
    for _ in range(150):
        kind = rng.randrange(4)
        if kind == 0:
            data = rng.randbytes(rng.randrange(1, 300))
        elif kind == 1:
            data = frame(rng.randbytes(rng.randrange(0, 300)))
        elif kind == 2:
            body = json.dumps({"v": 1, "op": rng.choice(["get", "list", "status", "hello", "x"]),
                               "name": rng.choice([None, 1, "", "a" * 2000, "brokers/x"]),
                               "prefix": rng.choice([None, 3, "brokers/"]), "meta": rng.choice([1, "x"])})
            data = frame(body.encode())[: rng.randrange(4, len(body) + 5)]
        else:
            data = rng.randrange(1 << 32).to_bytes(4, "big") + rng.randbytes(rng.randrange(0, 50))
        for reply in raw_request(agent.socket, data, timeout=3):
            assert set(reply) <= {"v", "ok", "error", "message", "id", "versions", "name", "names", "value", "version",
                                  "server", "mode", "max_request", "locked", "pid", "vault"}
            if not reply["ok"]:
                codes.add(reply["error"])
                assert reply["error"] in {"bad_request", "too_large", "unsupported_version", "not_found", "denied"}
    assert {"bad_request", "too_large"} <= codes

    # Meanwhile the good client was never held up, and is still served.
    times = []
    for _ in range(200):
        start = time.perf_counter()
        assert good.get("brokers/ibkr/api_key") == API_KEY
        times.append(time.perf_counter() - start)
    assert sorted(times)[len(times) // 2] < 0.005 and max(times) < 0.5
    assert agent.running
    for sock in (slow, deaf):
        sock.close()
    good.close()
    agent.stop()
    assert agent.wait_exit() == 0
    agent.assert_no_traceback()
    ok(cli(env, "audit", "verify"))


# -- the command line and the agent ------------------------------------------------------------------


def test_cli_get_list_and_run_reuse_the_unlocked_agent(env, agent, tmp_path):
    """With a grant for the its-vault program, get/list/run need no password (no key
    derivation); without one, a CLI given the password unlocks the vault itself at once, and
    one without a password fails with the line that would grant it."""
    make_vault(env, SECRETS)
    program = [sys.executable, str(VENV_ITS_VAULT)]
    agent.start()
    no_password = ("ITS_MASTER_PASSWORD",)
    refused = cli(env, "get", "brokers/ibkr/api_key", unset=no_password, program=program, cwd=tmp_path)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith(f"its-vault: error: access denied: no grant lets python {VENV_ITS_VAULT} in "
                                     f"{tmp_path} read 'brokers/ibkr/api_key'")
    assert refused.stderr.count("\n") == 1 and "its-vault grant add" in refused.stderr
    start = time.monotonic()
    assert ok(cli(env, "get", "brokers/ibkr/api_key", program=program, cwd=tmp_path)).stdout == API_KEY + "\n"
    assert time.monotonic() - start < 20  # no approval was waited for: it unlocked by itself
    ok(cli(env, "grant", "add", "--exe", sys.executable, "--script", str(VENV_ITS_VAULT), "--cwd", str(tmp_path),
           "--secret", "*"))
    got, field, listed, ran = (cli(env, *args, unset=no_password, program=program, cwd=tmp_path) for args in (
        ("get", "brokers/ibkr/api_key"), ("get", "brokers/ibkr/api_key", "--field", "account"), ("list", "--json"),
        ("run", "--env", "K=its://brokers/ibkr/api_key", "--", sys.executable, "-c",
         "import os; print(len(os.environ['K']), os.environ['K'])")))
    assert ok(got).stdout == API_KEY + "\n" and ok(field).stdout == ACCOUNT + "\n"
    assert [r["name"] for r in json.loads(ok(listed).stdout)] == ["brokers/ibkr/api_key", "database/main"]
    assert ok(ran).stdout == f"{len(API_KEY)} ***\n"
    # Another vault than the agent's: the agent is not used.
    other = {**env, "ITS_VAULT_PATH": str(tmp_path / "other" / "vault.its")}
    make_vault(other, {"x/y": ("other-value-uniq-1", {})})
    assert ok(cli(other, "get", "x/y", program=program, cwd=tmp_path)).stdout == "other-value-uniq-1\n"
    agent.stop()
    reads = [e for e in audit(env) if e["op"] == "read" and e["actor"]["kind"] == "agent"]
    assert [e["outcome"] for e in reads] == ["denied", "denied", "ok", "ok", "ok"]


def test_background_agent_detaches_refuses_a_second_one_and_stops_on_lock(env, tmp_path):
    make_vault(env, SECRETS)
    started = ok(cli(env, "agent"))
    assert started.stderr.startswith("agent started (pid ")
    pid = int(started.stderr.split("(pid ")[1].split(")")[0])
    try:
        folder = Path(env["ITS_AGENT_DIR"])
        assert (folder / wire.SOCKET_NAME).exists()
        second = cli(env, "agent")
        assert second.returncode == 1 and second.stderr.startswith("its-vault: error: an agent is already running")
        from its_desktop.client import AgentClient

        with AgentClient(str(folder / wire.SOCKET_NAME)) as client:
            status = client.status()
        assert status["pid"] == pid and status["mode"] == "headless" and status["locked"] is False
        assert os.path.samefile(status["vault"], env["ITS_VAULT_PATH"])
        ok(cli(env, "lock"))
        deadline = time.monotonic() + 15
        while _alive(pid):
            assert time.monotonic() < deadline, "the agent did not stop after lock"
            time.sleep(0.05)
        assert not (folder / wire.SOCKET_NAME).exists()
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_grant_commands_check_their_input_before_unlocking(env, tmp_path):
    make_vault(env)
    cases = [
        (("grant", "add", "--exe", str(tmp_path / "nope"), "--secret", "x"), 2, "--exe: no such file"),
        (("grant", "add", "--exe", sys.executable, "--script", str(tmp_path / "nope.py"), "--secret", "x"), 2,
         "--script: no such file"),
        (("grant", "add", "--exe", sys.executable, "--cwd", str(tmp_path / "nowhere"), "--secret", "x"), 2,
         "--cwd: no such folder"),
        (("grant", "add", "--exe", sys.executable, "--secret", "x", "--ttl", "soon"), 2, "invalid --ttl"),
        (("grant", "add", "--exe", sys.executable, "--secret", " x"), 2, "a secret pattern is a name"),
        (("grant", "rm", "gdeadbeef"), 4, "no grant with id 'gdeadbeef'"),
    ]
    for args, code, message in cases:
        result = cli(env, *args, unset=("ITS_MASTER_PASSWORD",) if code == 2 else ())
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.startswith("its-vault: error: ") and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
    warned = ok(cli(env, "grant", "add", "--exe", sys.executable, "--secret", "db/*"))
    assert "warning: no --script: any program python" in warned.stderr
    assert ok(cli(env, "grant", "list")).stdout.split()[1] == "db/*"


CONFIG_BOT = r'''
import json
from its_desktop.client import AgentError, get_alert_config, get_database_config, get_its_secret

def attempt(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except AgentError as error:
        return f"{type(error).__name__}: {error}"

db = attempt(get_database_config, env_fallback=True)
print(json.dumps({
    "db": dict(db) if isinstance(db, dict) else db, "db_repr": repr(db),
    "alerts": attempt(lambda: dict(get_alert_config(env_fallback=True))),
    "alerts_vault_only": attempt(lambda: dict(get_alert_config())),
    "key": attempt(get_its_secret, "brokers/ibkr/api_key"),
    "key_or_env": attempt(get_its_secret, "brokers/ibkr/api_key", env_fallback=True),
    "missing": attempt(get_its_secret, "brokers/none", "fallback"),
    "missing_or_env": attempt(get_its_secret, "brokers/none", env_fallback=True),
}))
'''


def test_the_config_helpers_read_through_the_agent_and_use_the_environment_only_when_asked(env, agent, tmp_path):
    bot = write_bot(tmp_path / "bots", "configured.py", CONFIG_BOT)
    hasher = Hasher()
    exe = os.path.realpath(sys.executable)
    grant = Grant.new("*", exe, hasher.of_file(exe), str(bot), hasher.of_file(str(bot)))
    make_vault(env, {**SECRETS, "database/main": (DB_PASSWORD, {"host": "db1", "port": "5433", "username": "bot",
                                                                "database": "trades"}),
                     "alerts/telegram": ("tg-token-uniq-5", {"chat_id": "42"})}, grants=[grant])
    bot_env = {**env, "BROKERS_IBKR_API_KEY": "from-env-1", "BROKERS_NONE": "from-env-2", "DB_HOST": "envhost",
               "DB_PASSWORD": "env-db-pass", "SLACK_WEBHOOK_URL": "https://hooks.example/env"}

    def run() -> dict:
        result = subprocess.run([sys.executable, bot.name], cwd=bot.parent, env=bot_env, capture_output=True,
                                text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    agent.start()
    served = run()
    assert served["db"] == {"host": "db1", "port": 5433, "user": "bot", "password": DB_PASSWORD, "dbname": "trades"}
    assert DB_PASSWORD not in served["db_repr"] and "'password': '***'" in served["db_repr"]
    assert served["alerts"]["telegram_bot_token"] == "tg-token-uniq-5" and served["alerts"]["telegram_chat_id"] == "42"
    assert served["alerts"]["slack_webhook_url"] == "https://hooks.example/env"  # not in the vault: asked for env
    assert served["alerts_vault_only"]["slack_webhook_url"] is None
    assert served["key"] == served["key_or_env"] == API_KEY
    assert served["missing"] == "fallback" and served["missing_or_env"] == "from-env-2"
    agent.stop()
    stopped = run()
    assert stopped["db"]["host"] == "envhost" and stopped["db"]["password"] == "env-db-pass"
    assert stopped["key"].startswith("AgentUnavailable: no agent is running")  # not asked: no silent fallback
    assert stopped["key_or_env"] == "from-env-1"
    assert stopped["alerts_vault_only"].startswith("AgentUnavailable")
