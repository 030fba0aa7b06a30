"""The agent's pure parts: frames and their limits, error codes, where the socket lives, peer
identification from a command line, grants and patterns, ``its://`` references and the
streaming masker (property-tested against masking the whole stream at once)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from its_desktop.agent import protocol as wire
from its_desktop.agent.grants import (
    Grant,
    Policy,
    add_to_settings,
    grant_command,
    load_grants,
    parse_ttl,
    pattern_covers_prefix,
    pattern_matches,
    prune_expired,
    remove_from_settings,
    suggest_pattern,
)
from its_desktop.agent.peer import ClientIdentity, Hasher, interpreter_family, script_of, text_hash
from its_desktop.agent.run import MASK, Masker, parse_reference, variants
from its_desktop.core.errors import InvalidInput, SecretNotFound, VaultError, VaultLocked

# -- frames ----------------------------------------------------------------------------------------


def test_a_frame_is_a_big_endian_length_and_compact_ascii_json():
    data = wire.encode_frame({"v": 1, "op": "get", "name": "clé/秘密", "id": 3, "prompt": False, "x": None})
    payload = b'{"v":1,"op":"get","name":"cl\\u00e9/\\u79d8\\u5bc6","id":3,"prompt":false,"x":null}'
    assert data == len(payload).to_bytes(4, "big") + payload
    assert wire.decode_payload(payload) == {"v": 1, "op": "get", "name": "clé/秘密", "id": 3, "prompt": False,
                                            "x": None}
    with pytest.raises(TypeError):
        wire.encode_frame({"value": b"bytes are not JSON"})


def test_take_frame_waits_for_whole_frames_and_refuses_oversized_ones():
    buffer = bytearray()
    first, second = wire.encode_frame({"a": 1}), wire.encode_frame({"b": "2"})
    for byte in first[:-1]:
        buffer.append(byte)
        assert wire.take_frame(buffer, wire.MAX_REQUEST) is None
    buffer += first[-1:] + second + second[:3]
    assert wire.take_frame(buffer, wire.MAX_REQUEST) == b'{"a":1}'
    assert wire.take_frame(buffer, wire.MAX_REQUEST) == b'{"b":"2"}'
    assert wire.take_frame(buffer, wire.MAX_REQUEST) is None and buffer == bytearray(second[:3])
    assert wire.take_frame(bytearray(4), 10) == b""
    exact = bytearray((10).to_bytes(4, "big") + b"x" * 10)
    assert wire.take_frame(exact, 10) == b"x" * 10
    with pytest.raises(wire.AgentTooLarge, match="frame of 11 bytes exceeds the limit of 10"):
        wire.take_frame(bytearray((11).to_bytes(4, "big")), 10)


@pytest.mark.parametrize("payload", [b"", b"[1]", b'"text"', b"nul", b'{"a":NaN}', b'{"a":Infinity}', b'{"a":1}x',
                                     b'{"a":1}{"b":2}', b"\xff\xfe", b"[" * 100000, b'{"a":"\x01"}', b"{'a': 1}",
                                     b'{"a":' + b"9" * 5000 + b"}"])
def test_decode_refuses_anything_but_one_json_object(payload):
    with pytest.raises(wire.AgentBadRequest, match="not one JSON object"):
        wire.decode_payload(payload)


@given(st.binary(max_size=300))
@settings(max_examples=400, deadline=None)
def test_decode_either_returns_an_object_or_refuses_it(payload):
    try:
        assert isinstance(wire.decode_payload(payload), dict)
    except wire.AgentBadRequest:
        pass


@given(st.dictionaries(st.text(max_size=20), st.recursive(
    st.none() | st.booleans() | st.integers(-2**62, 2**62) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12), max_size=6))
@settings(max_examples=200, deadline=None)
def test_what_is_encoded_decodes_to_the_same(message):
    buffer = bytearray(wire.encode_frame(message))
    assert wire.decode_payload(wire.take_frame(buffer, wire.MAX_REPLY)) == message
    assert buffer == bytearray()


def test_error_replies_become_typed_errors_with_one_line():
    cases = {"denied": wire.AccessDenied, "locked": wire.AgentLocked, "not_found": wire.AgentSecretNotFound,
             "bad_request": wire.AgentBadRequest, "too_large": wire.AgentTooLarge,
             "unsupported_version": wire.AgentUnsupportedVersion, "timeout": wire.AgentTimeout, "busy": wire.AgentBusy,
             "martian": wire.AgentError, 7: wire.AgentError}
    for code, cls in cases.items():
        error = wire.error_from_reply({"ok": False, "error": code, "message": "first\nsecond"})
        assert type(error) is cls and str(error) == "first second" and isinstance(error, VaultError)
    missing = wire.error_from_reply({"ok": False, "error": "not_found", "message": "no secret named 'a/b'",
                                     "name": "a/b"})
    assert isinstance(missing, SecretNotFound) and missing.name == "a/b"  # the CLI's exit 4
    assert isinstance(wire.error_from_reply({"error": "locked"}), VaultLocked)
    assert str(wire.error_from_reply({"error": "denied"})) == "the agent refused the request (denied)"
    assert wire.error_reply("denied", "no", 5, versions=[1]) == {
        "v": 1, "ok": False, "error": "denied", "message": "no", "id": 5, "versions": [1]}


# -- where the socket lives ------------------------------------------------------------------------


def test_agent_dir_prefers_the_override_then_the_runtime_folder_then_tmp(monkeypatch, tmp_path):
    monkeypatch.setenv("ITS_AGENT_DIR", str(tmp_path / "mine"))
    assert wire.agent_dir() == str(tmp_path / "mine") and wire.socket_path() == str(tmp_path / "mine" / "agent.sock")
    monkeypatch.delenv("ITS_AGENT_DIR")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert wire.agent_dir() == str(tmp_path / "its-desktop")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "missing"))
    assert wire.agent_dir() == f"/tmp/its-desktop-{os.getuid()}"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert wire.agent_dir() == f"/tmp/its-desktop-{os.getuid()}"


def test_private_dir_is_made_0700_tightened_and_refused_when_not_ours(tmp_path):
    made = Path(wire.private_dir(str(tmp_path / "a" / "agent")))
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    made.chmod(0o755)
    wire.private_dir(str(made))
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    (tmp_path / "link").symlink_to(made)
    with pytest.raises(wire.AgentError, match="is not a folder"):
        wire.private_dir(str(tmp_path / "link"))
    if os.getuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, 65534, 65534)
        with pytest.raises(wire.AgentError, match="belongs to another user"):
            wire.private_dir(str(theirs))


def test_the_client_imports_nothing_heavy():
    """A bot pays for what it imports: no json/re, socket, typing, dataclasses or crypto."""
    code = ("import sys; import its_desktop.client; "
            "print(','.join(m for m in ('json', 're', 'socket', 'typing', 'dataclasses', 'enum', 'threading', "
            "'cryptography', 'its_desktop.core.vault', 'its_desktop.agent.server') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == ""


def test_env_names_are_where_bots_kept_them():
    """One mapping for both helper sets (client and integration share envconfig)."""
    import re

    from its_desktop.client import env_name
    from its_desktop.integration import env_name as foundation

    assert env_name is foundation
    for name in ("brokers/ibkr/api_key", "a--b//c", "__x__", "ünï/cødé", "db.main-2", "", "///"):
        assert env_name(name) == re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper(), name
    assert env_name("brokers/ibkr/api_key") == "BROKERS_IBKR_API_KEY"


# -- peers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("exe", "argv", "expected"), [
    ("/usr/bin/python3.11", ["python3", "bot.py", "--live"], ("/srv/bots/bot.py", "python3 bot.py")),
    ("/usr/bin/python3.11", ["python", "-u", "-W", "ignore", "-X", "dev", "bot.py"],
     ("/srv/bots/bot.py", "python bot.py")),
    ("/usr/bin/python3.11", ["python", "-Wignore", "-Bu", "--", "bot.py"], ("/srv/bots/bot.py", "python bot.py")),
    ("/usr/bin/python3.11", ["python", "-c", "print(1)", "bot.py"], ("-c", "python -c …")),
    ("/usr/bin/python3.11", ["python", "-Ic", "print(1)"], ("-c", "python -c …")),
    ("/usr/bin/python3.11", ["python", "-m", "pkg.main", "x"], ("-m pkg.main", "python -m pkg.main")),
    ("/usr/bin/python3.11", ["python", "-mpkg.main"], ("-m pkg.main", "python -m pkg.main")),
    ("/usr/bin/python3.11", ["python"], (None, "python")),
    ("/usr/bin/python3.11", ["python", "-"], (None, "python")),
    ("/usr/bin/node", ["node", "--require", "dotenv/config", "app.js"], ("/srv/bots/app.js", "node app.js")),
    ("/usr/bin/node", ["node", "-e", "1"], ("-e", "node -e …")),
    ("/usr/bin/bash", ["bash", "-ec", "echo"], ("-c", "bash -c …")),
    ("/usr/bin/bash", ["/bin/sh", "run.sh"], ("/srv/bots/run.sh", "sh run.sh")),
    ("/usr/bin/perl", ["perl", "-I", "lib", "bot.pl"], ("/srv/bots/bot.pl", "perl bot.pl")),
    ("/usr/bin/ruby3.1", ["ruby", "-e", "1"], ("-e", "ruby -e …")),
    ("/opt/bots/trader", ["./trader", "--live"], (None, "trader")),
    ("/opt/bots/python-trader", ["python-trader", "x.py"], (None, "python-trader")),
])
def test_the_script_an_interpreter_runs_is_found(exe, argv, expected):
    script, _, command = script_of(exe, argv, "/srv/bots", Hasher())
    assert (script, command) == expected


def test_scripts_and_inline_code_are_fingerprinted(tmp_path):
    bot = tmp_path / "bot.py"
    bot.write_text("print('v1')\n")
    hasher = Hasher()
    script, digest, _ = script_of("/usr/bin/python3", ["python3", "bot.py"], str(tmp_path), hasher)
    assert script == str(bot) and digest == hasher.of_file(str(bot)) and len(digest) == 64
    bot.write_text("print('v2, same length')\n")
    assert script_of("/usr/bin/python3", ["python3", "bot.py"], str(tmp_path), hasher)[1] != digest
    assert script_of("/usr/bin/python3", ["python3", "-c", "x=1"], "/", hasher)[1] == text_hash("x=1")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__main__.py").write_text("")
    assert script_of("/usr/bin/python3", ["python3", "-m", "pkg"], str(tmp_path), hasher)[1] == text_hash("")
    assert script_of("/usr/bin/python3", ["python3", "-m", "elsewhere"], str(tmp_path), hasher)[1] is None
    assert hasher.of_file(str(tmp_path / "missing")) is None
    assert interpreter_family("/usr/bin/python3.12") == "python" and interpreter_family("/usr/bin/ls") is None


# -- grants --------------------------------------------------------------------------------------------


def client(**changes) -> ClientIdentity:
    base = dict(pid=10, uid=1000, exe="/usr/bin/python3.11", exe_hash="e" * 64, script="/srv/bot.py",
                script_hash="s" * 64, cwd="/srv", command="python bot.py", session=(5, 99), started=1)
    return ClientIdentity(**{**base, **changes})


def test_ttl_forms():
    assert parse_ttl("once") == ("once", None) and parse_ttl(" Always ") == ("always", None)
    assert parse_ttl("8h") == ("8h", 28800.0) and parse_ttl("90s") == ("90s", 90.0) and parse_ttl("7d")[1] == 604800
    for bad in ("", "h", "8", "-1h", "1.5h", "0s", "400d", "8 h", "forever"):
        with pytest.raises(InvalidInput, match="invalid --ttl"):
            parse_ttl(bad)


def test_patterns():
    assert pattern_matches("brokers/ibkr/*", "brokers/ibkr/api_key")
    assert pattern_matches("brokers/*", "brokers/ibkr/api_key")  # '*' crosses folders
    assert not pattern_matches("brokers/ibkr/*", "brokers/ibkr")
    assert pattern_matches("db/main", "db/main") and not pattern_matches("db/main", "db/main2")
    assert pattern_matches("*", "anything/at/all")
    assert pattern_covers_prefix("brokers/*", "brokers/ibkr/") and pattern_covers_prefix("*", "")
    assert not pattern_covers_prefix("brokers/ibkr/*", "brokers/") and not pattern_covers_prefix("b*/x*", "b")
    assert suggest_pattern("brokers/ibkr/api_key") == "brokers/ibkr/*" and suggest_pattern("token") == "token"


def test_a_grant_fits_only_the_program_it_names():
    grant = Grant.for_client(client(), "brokers/*", "always", now=1000.0)
    assert grant.allows(client(pid=99, started=7, session=(1, 1)), "brokers/x", 2000.0)  # another run of it
    for other in (client(exe_hash="f" * 64), client(exe="/usr/bin/python3.12"), client(script="/srv/evil.py"),
                  client(script_hash="t" * 64), client(cwd="/tmp"), client(exe_hash=None)):
        assert not grant.allows(other, "brokers/x", 2000.0)
    assert not grant.allows(client(), "db/main", 2000.0)
    broad = Grant.new("db/*", "/usr/bin/python3.11", "e" * 64)  # from the command line: no script, any folder
    assert broad.allows(client(script="-c", script_hash="c" * 64, cwd="/"), "db/x", 0.0)
    timed = Grant.for_client(client(), "x", "8h", now=1000.0)
    assert timed.allows(client(), "x", 1000.0 + 28799) and not timed.allows(client(), "x", 1000.0 + 28800)
    once = Grant.for_client(client(), "x", "once")
    assert once.session == (5, 99) and once.allows(client(pid=11), "x", 0.0)
    assert not once.allows(client(session=(6, 99)), "x", 0.0)


def test_grants_round_trip_through_the_settings_and_bad_entries_grant_nothing():
    settings: dict = {"agent_grants": [{"id": "gbroken"}, "junk", {"id": "g2", "pattern": " x", "exe": "/e"}]}
    grant = Grant.new("brokers/*", "/usr/bin/python3.11", "e" * 64, "/srv/bot.py", "s" * 64, "/srv", "8h", now=0.0)
    add_to_settings(settings, grant)
    (loaded,) = load_grants(json.loads(json.dumps(settings)))
    assert loaded == grant and loaded.expired(8 * 3600) and not loaded.expired(8 * 3600 - 1)
    assert prune_expired(settings, now=8 * 3600) == 1
    assert settings["agent_grants"] == [{"id": "gbroken"}, {"id": "g2", "pattern": " x", "exe": "/e"}]  # no "junk"
    assert remove_from_settings(settings, "gbroken") and not remove_from_settings(settings, "gbroken")


def test_a_stored_once_grant_is_taken_by_its_first_client_for_its_session():
    stored = Grant.new("x/*", "/usr/bin/python3.11", "e" * 64, ttl="once")
    policy = Policy()
    policy.load([stored])
    epoch = policy.epoch
    taken = policy.find(client(), "x/a", 0.0)
    assert taken is not None and taken.id == stored.id and taken.session == (5, 99)
    assert policy.to_remove == [stored.id] and policy.epoch > epoch
    assert policy.find(client(pid=12), "x/b", 0.0) is not None  # the same session
    assert policy.find(client(session=(8, 1)), "x/a", 0.0) is None  # another session: it is gone
    policy.load([stored])  # the vault still holds it until the removal is saved
    assert policy.find(client(session=(8, 1)), "x/a", 0.0) is None
    policy.revoke_sessions()
    assert policy.find(client(), "x/a", 0.0) is None


def test_the_grant_command_a_denial_suggests_is_shell_safe():
    line = grant_command(client(cwd="/srv/my bots", script="/srv/my bots/b'ot.py"), "brokers/*")
    assert line == ("its-vault grant add --exe /usr/bin/python3.11 --script '/srv/my bots/b'\"'\"'ot.py' "
                    "--cwd '/srv/my bots' --secret 'brokers/*'")
    assert "--script" not in grant_command(client(script="-c"), "x")


# -- references and masking ---------------------------------------------------------------------------


def test_references():
    assert parse_reference("its://brokers/ibkr/api_key") == parse_reference("its://brokers/ibkr/api_key")
    ref = parse_reference("its://brokers/ibkr/api_key#account")
    assert (ref.name, ref.field, str(ref)) == ("brokers/ibkr/api_key", "account", "its://brokers/ibkr/api_key#account")
    assert parse_reference("plain") is None and parse_reference("op://vault/item") is None
    for bad in ("its://", "its://a//b", "its://a/b#", "its:// a"):
        with pytest.raises(InvalidInput):
            parse_reference(bad)


def test_masked_forms_of_a_value():
    assert variants("abc") == set()  # too short to mask without hiding everything
    forms = variants('s3cr"t/é+k')
    assert {'s3cr"t/é+k'.encode(), b's3cr\\"t/\\u00e9+k', b"s3cr%22t%2F%C3%A9%2Bk"} <= forms


def masked_at_once(values: list[str], data: bytes) -> bytes:
    needles = sorted({n for v in values for n in variants(v)}, key=lambda n: (-len(n), n))
    return re.sub(b"|".join(map(re.escape, needles)), MASK, data) if needles else data


SECRET_VALUES = st.lists(st.text(alphabet="abcXYZ0-/é", min_size=4, max_size=12), min_size=1, max_size=3)


@given(SECRET_VALUES, st.data())
@settings(max_examples=300, deadline=None)
def test_streamed_masking_equals_masking_the_whole_stream(values, data):
    pieces = data.draw(st.lists(st.sampled_from(values) | st.text(alphabet="abc XZ-\n", max_size=6), max_size=12))
    stream = "".join(pieces).encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    masker, out, start = Masker(values), b"", 0
    for cut in [*cuts, len(stream)]:
        out += masker.feed(stream[start:cut])
        start = cut
    out += masker.finish()
    assert out == masked_at_once(values, stream)


def test_masking_holds_back_only_what_could_still_become_a_value():
    masker = Masker(["SECRET-42"])
    assert masker.feed(b"progress 10%\nvalue: SEC") == b"progress 10%\nvalue: "
    assert masker.feed(b"RET") == b""
    assert masker.feed(b"-42 done") == b"*** done"
    assert masker.feed(b" SECOND") == b" SECOND"
    assert masker.feed(b" SE") == b" " and masker.finish() == b"SE"
    assert Masker([]).feed(b"anything") == b"anything"


# -- the audit writer ----------------------------------------------------------------------------------


def test_audit_records_are_batched_and_survive_a_lock_as_pending_records(vault):
    import time

    from its_desktop.agent.server import PENDING_MAX, AuditWriter
    from its_desktop.core.audit import Actor
    from its_desktop.core.vault.api import Vault
    from tests.conftest import PASSWORD

    actor = Actor("agent", 4242, "/usr/bin/python3.11")
    writer = AuditWriter(quiet=0.01, max_age=5)
    writer.start()
    start = time.time()
    for i in range(250):
        writer.event((start + i / 1000, time.monotonic(), vault, vault.path, "read", "brokers/x", "ok", actor, "via agent"))
    assert writer.flush(10)
    chained = [r.event for r in vault.audit_records() if r.event.actor == actor]
    assert len(chained) == 250 and chained[0].time.timestamp() == pytest.approx(start, abs=0.001)
    path = vault.path
    vault.lock()
    for i in range(PENDING_MAX + 50):
        writer.event((time.time(), time.monotonic(), vault, path, "read", "brokers/y", "ok", actor, "via agent"))
    writer.stop()
    with Vault.open(path, PASSWORD) as reopened:
        events = [r.event for r in reopened.audit_records()]
        assert reopened.verify_audit() == len(events)
    late = [e for e in events if e.actor == actor][250:]
    assert len(late) == PENDING_MAX - 1  # folded into the chain at the next unlock
    summary = next(e for e in events if e.op == "agent-request" and e.outcome == "not-chained")
    assert summary.detail.startswith("51 more agent requests from ")


def test_a_process_that_cannot_be_identified_is_refused_clearly(vault, tmp_path, monkeypatch):
    from its_desktop.agent import peer, server
    from its_desktop.client import AccessDenied, AgentClient

    def unreadable(found, hasher):
        raise peer.Unidentifiable(found.pid)

    monkeypatch.setattr(server, "identify", unreadable)
    agent = server.AgentServer(lambda: vault, folder=str(tmp_path / "agent"))
    agent.start()
    try:
        with AgentClient(agent.socket_path) as client, pytest.raises(AccessDenied) as denied:
            client.get("brokers/x")
        assert str(denied.value) == (f"access denied: cannot identify process {os.getpid()} (its /proc entry is not "
                                     "readable: is it marked non-dumpable?)")
    finally:
        agent.stop()
    assert [r.event.outcome for r in vault.audit_records() if r.event.op == "agent-connect"] == ["denied"]
