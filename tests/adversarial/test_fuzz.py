"""Fuzzing the parsers that read what others wrote: the vault header (and body), ``.env``
files, ``otpauth://`` URIs, QR images, and the agent's wire protocol (its pure functions and a
live agent fed random frames). Only each parser's typed errors may come out.

Short in ``make test`` (a few hundred examples per target, derandomised so a run is repeatable);
``ITS_FUZZ_EXAMPLES=N`` (``make soak``) runs N per target with fresh random inputs. The
examples run are counted per target and printed at the end of the run ("fuzz examples run").
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from its_desktop.agent import protocol as wire
from its_desktop.core import dotenv, totp
from its_desktop.core.crypto import checksum
from its_desktop.core.errors import InvalidInput, VaultCorrupted
from its_desktop.core.vault import header as hdr
from its_desktop.core.vault.body import AuditAnchor, Body
from its_desktop.services import qr

from . import figures

LONG_EXAMPLES = int(os.environ.get("ITS_FUZZ_EXAMPLES", "0") or 0)
SHORT_EXAMPLES = 300
GOLDEN = Path(__file__).parents[1] / "data" / "golden" / "v1.its"


def fuzz(share: float = 1.0):
    """The settings of one target: ``share`` of the examples (for the slow ones, such as a
    round trip through a QR image or a socket)."""
    examples = LONG_EXAMPLES or SHORT_EXAMPLES
    return settings(max_examples=max(10, int(examples * share)), deadline=None, derandomize=not LONG_EXAMPLES,
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def ran(target: str) -> None:
    figures.add(f"fuzz:{target}")


# Text that includes what a careless decoder or a terminal lets through: lone surrogates
# (``surrogateescape`` input, JSON ``\ud800`` escapes), NUL, controls, BOMs, non-BMP.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)

# -- the vault header ------------------------------------------------------------------------------


def _file(header: bytes, body: bytes = b"\0" * hdr.MIN_SEALED_BODY, version: int = 1,
          length: int | None = None) -> bytes:
    """A vault file around ``header`` with a valid checksum: what reaches the header parser."""
    out = hdr.PREFIX.pack(hdr.MAGIC, version, len(header) if length is None else length) + header + body
    return out + checksum(out)


def _refused_or_sound(data: bytes) -> None:
    try:
        envelope = hdr.parse_file(data)
    except VaultCorrupted:
        return
    # It parsed: then it is exactly what we would write for that header.
    assert envelope.aad == hdr.body_aad(envelope.header.encode())


def _peek(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        hdr.peek_header(path)
    except VaultCorrupted:
        pass


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "vault.its"


@fuzz()
@given(st.one_of(st.binary(max_size=400),
                 st.builds(lambda version, length, rest: hdr.PREFIX.pack(hdr.MAGIC, version, length) + rest,
                           st.integers(0, 0xFFFF) | st.just(1), st.integers(0, 0xFFFFFFFF) | st.integers(0, 400),
                           st.binary(max_size=400))))
def test_header_parser_on_arbitrary_bytes(scratch, data):
    ran("vault header")
    _refused_or_sound(data)
    _refused_or_sound(data + checksum(data))  # the same, past the checksum
    _peek(scratch, data)


_MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 16), st.integers(1, 16)),
    st.tuples(st.just("copy"), st.integers(0, 1 << 16), st.integers(0, 1 << 16)),
)


def _mutate(data: bytes, mutations: list) -> bytearray:
    out = bytearray(data)
    for op, where, arg in mutations:
        where %= max(1, len(out))
        if op == "flip" and out:
            out[where] ^= arg
        elif op == "insert":
            out[where:where] = arg
        elif op == "delete":
            del out[where:where + arg]
        elif op == "copy" and out:
            start = arg % len(out)
            out[where:where] = out[start:start + 12]
    return out


@fuzz()
@given(st.lists(_MUTATION, min_size=1, max_size=4), st.booleans(), st.booleans())
def test_header_parser_on_mutated_real_files(scratch, mutations, fix_length, fix_checksum):
    """The golden v1 file, damaged: with the header length and checksum made right again (an
    attacker's file) the header parser itself is reached."""
    ran("vault header")
    data = _mutate(GOLDEN.read_bytes(), mutations)
    if fix_length and len(data) >= hdr.PREFIX.size:
        header_end = data.find(b"}}", hdr.PREFIX.size)  # the original header's end, moved or not
        if header_end > 0:
            data[10:14] = struct.pack(">I", header_end + 2 - hdr.PREFIX.size)
    if fix_checksum and len(data) > hdr.CHECKSUM_SIZE:
        data[-hdr.CHECKSUM_SIZE:] = checksum(bytes(data[:-hdr.CHECKSUM_SIZE]))
    _refused_or_sound(bytes(data))
    _peek(scratch, bytes(data))


_GOLDEN_HEADER = json.loads(hdr.parse_file(GOLDEN.read_bytes()).aad[hdr.PREFIX.size:])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-(1 << 70), 1 << 70)
    | st.floats(allow_nan=False) | any_text | st.sampled_from(["", "AAAA", "password", "recovery", "yubikey"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12)


def _paths(doc, prefix=()):
    """Every place in a JSON document, as a key path."""
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _paths(value, (*prefix, index))


_HEADER_PATHS = list(_paths(_GOLDEN_HEADER))


def _get(doc, path):
    for key in path:
        doc = doc[key]
    return doc


def _replaced(doc, path, value, delete: bool):
    if not path:
        return value
    doc = json.loads(json.dumps(doc))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@fuzz()
@given(st.sampled_from(_HEADER_PATHS), st.one_of(any_text, json_values), st.sampled_from([False, False, False, True]),
       st.sampled_from(["canonical", "unicode", "spaced"]))
def test_header_parser_on_structured_headers(scratch, path, value, delete, spelling):
    """One field of a real header replaced (any type, any text) or removed, written
    canonically or not, under a valid checksum."""
    ran("vault header")
    doc = _replaced(_GOLDEN_HEADER, path, value, delete and bool(path))
    if spelling == "canonical":
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    elif spelling == "unicode":
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    else:
        text = json.dumps(doc, indent=1)
    header = text.encode("utf-8", "surrogatepass")
    _refused_or_sound(_file(header))
    _peek(scratch, _file(header))


_STRING_FIELDS = [p for p in _HEADER_PATHS if isinstance(_get(_GOLDEN_HEADER, p), str)]


@fuzz(0.5)
@given(st.sampled_from(_STRING_FIELDS), any_text, st.booleans())
def test_header_parser_on_any_text_in_a_string_field(scratch, path, text, ascii_only):
    ran("vault header")
    doc = _replaced(_GOLDEN_HEADER, path, text, False)
    header = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only)
    _refused_or_sound(_file(header.encode("utf-8", "surrogatepass")))


def test_a_deeply_nested_header_is_damage():
    """Found by fuzzing: json.loads raised RecursionError out of the header parser."""
    for header in (b"[" * 100_000, b'{"a":' * 100_000):
        with pytest.raises(VaultCorrupted):
            hdr.parse_file(_file(header))


def test_a_non_ascii_base64_field_is_damage():
    """Found by fuzzing: base64.b64decode raised ValueError for a non-ASCII string."""
    doc = json.loads(json.dumps(_GOLDEN_HEADER))
    doc["slots"][0]["salt"] = "é"
    with pytest.raises(VaultCorrupted):
        hdr.parse_file(_file(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()))


# -- the vault body (behind the AEAD: a buggy writer's output, not an attacker's) ------------------

_SOUND_BODY: list[bytes] = []


def _sound_body() -> bytes:
    """A real body: secrets with fields, tags and history, and an audit anchor."""
    if not _SOUND_BODY:
        from datetime import datetime, timezone

        from its_desktop.core.secrets import Secret, SecretType, SecretVersion

        now = datetime(2026, 1, 2, tzinfo=timezone.utc)
        body = Body(AuditAnchor(3, "ab" * 32), {"grants": []})
        for i, name in enumerate(("brokers/ibkr/api_key", "db/main", "notes/x")):
            body.put(Secret(name=name, value=f"value-{i}", type=SecretType.API_KEY, fields={"account": "U1"},
                            tags={"env": "prod"}, created=now, updated=now, value_updated=now, version=2,
                            history=(SecretVersion(1, f"old-{i}", {"account": "U0"}, now),)))
        _SOUND_BODY.append(body.encode())
    return _SOUND_BODY[0]


def _read_everything(plaintext: bytes) -> None:
    try:
        body = Body.decode(plaintext)
        body.summaries()
        for name in body.names():
            secret = body.get(name)
            if secret is not None:
                secret.summary()
                secret.record()
    except VaultCorrupted:
        pass


@fuzz()
@given(st.one_of(st.binary(max_size=300), st.lists(_MUTATION, min_size=1, max_size=3)))
def test_body_decoder(data):
    ran("vault body")
    _read_everything(data if isinstance(data, bytes) else bytes(_mutate(_sound_body(), data)))


# -- .env ----------------------------------------------------------------------------------------------

_ENV_PIECES = st.sampled_from(["export ", "export\t", "KEY", "A_B.c-d", "1X", "=", " ", "\t", "#", " #", "'", '"', "\\",
                               "\\n", '\\"', "${X}", "\n", "\r\n", "\r", "\ufeff", "é", "\x00", "value", "\u2028"])
env_text = st.one_of(any_text, st.lists(st.one_of(_ENV_PIECES, any_text.map(lambda t: t[:4])),
                                        max_size=40).map("".join))


@fuzz()
@given(env_text)
def test_dotenv_parser(text):
    ran("dotenv")
    try:
        entries = dotenv.parse_dotenv(text, "bot.env")
    except dotenv.DotenvError as error:
        assert "\n" not in str(error) and error.problems
        return
    keys = [e.key for e in entries]
    assert len(keys) == len(set(keys))
    assert all(dotenv._KEY.fullmatch(k) for k in keys)
    for entry in entries:
        dotenv.guess_type(entry.key)


@fuzz(0.5)
@given(st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True),
                       st.text(st.characters(codec="utf-8"), max_size=30), max_size=6))
def test_dotenv_double_quoted_values_round_trip(values):
    ran("dotenv")
    escaped = {k: v.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") for k, v in values.items()}
    text = "".join(f'{k}="{v}"\n' for k, v in escaped.items())
    assert {e.key: e.value for e in dotenv.parse_dotenv(text)} == {
        k: v.replace("\r\n", "\n").replace("\r", "\n") for k, v in values.items()}


# -- otpauth:// URIs ------------------------------------------------------------------------------------

_B32_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DP"
_URI_PIECES = st.sampled_from(["%", "%ZZ", "%ff", "%C3%A9", "%ED%A0%80", "%00", "%3A", "+", "@", "/", ":", " ", "&",
                               "=", "#", "?", "é", "\x00", "\ud800", "\udcff"])
uri_text = st.lists(st.one_of(_URI_PIECES, st.text(max_size=6)), max_size=6).map("".join)
uri_param = st.tuples(
    st.sampled_from(["secret", "issuer", "algorithm", "digits", "period", "counter", "encoder", "image", "SECRET",
                     "", "se%63ret"]),
    st.one_of(st.sampled_from([_B32_SECRET, _B32_SECRET.lower(), "JBSW Y3DP-EHPK 3PXP==", "steam", "SHA1", "sha256",
                               "md5", "6", "8", "5", "0", "30", "86401", "18446744073709551616", "99999999999999999999",
                               "-1", "1e3", "٣", ""]), uri_text))
uris = st.builds(
    lambda scheme, kind, label, secret, params, sep, fragment: f"{scheme}{kind}/{label}?"
    + sep.join(f"{k}={v}" for k, v in [("secret", secret), *params]) + fragment,
    st.sampled_from(["otpauth://"] * 4 + ["OTPAUTH://", "otpauth-migration://", "otpauth:/", "http://", " otpauth://", ""]),
    st.sampled_from(["totp", "hotp", "steam"] * 2 + ["TOTP", "x", ""]),
    uri_text, st.sampled_from([_B32_SECRET] * 3 + [_B32_SECRET.lower(), "JBSW Y3DP-EHPK 3PXP==", "", "A", "%4A" * 16]),
    st.lists(uri_param, max_size=6), st.sampled_from(["&"] * 3 + [";", "&&"]),
    st.sampled_from(["", "#frag", "#secret=X"]))


def _check_uri(text: str) -> None:
    try:
        account = totp.parse_uri(text)
    except totp.OtpError as error:
        message = str(error)
        assert "\n" not in message
        assert _B32_SECRET not in message and _B32_SECRET.lower() not in message
        return
    # A parsed account is usable: its URI, its code, its storage fields, and the way back.
    again = totp.parse_uri(totp.build_uri(account))
    assert again == account
    totp.account_to_fields(account)
    totp.suggest_name(account)
    if account.time_based:
        account.code(1_700_000_000)
    else:
        account.hotp_code()


@fuzz()
@given(st.one_of(any_text, uris))
def test_otpauth_uri_parser(text):
    ran("otpauth")
    _check_uri(text)


@fuzz(0.5)
@given(any_text)
def test_otp_secret_decoder(text):
    ran("otpauth")
    try:
        key = totp.decode_secret(text)
    except totp.InvalidOtpSecret:
        return
    assert totp.MIN_SECRET_BYTES <= len(key) <= totp.MAX_SECRET_BYTES


labels = st.text(st.characters(codec="utf-8", exclude_categories=("Cc",)), max_size=20).map(str.strip)


@fuzz(0.5)
@given(st.binary(min_size=10, max_size=64), st.sampled_from(list(totp.OtpKind)), labels.filter(lambda s: ":" not in s),
       labels, st.sampled_from(list(totp.ALGORITHMS)), st.integers(6, 8), st.integers(1, totp.MAX_PERIOD),
       st.integers(0, totp.MAX_COUNTER))
def test_otpauth_uris_round_trip(key, kind, issuer, account, algorithm, digits, period, counter):
    ran("otpauth")
    if kind is totp.OtpKind.STEAM:
        algorithm, digits, period = "SHA1", totp.STEAM_DIGITS, totp.STEAM_PERIOD
    if kind is totp.OtpKind.HOTP:
        period = 30  # an HOTP URI has no period: the account keeps the default
    else:
        counter = 0
    original = totp.OtpAccount(key, kind, issuer, account, algorithm, digits, period, counter)
    assert totp.parse_uri(totp.build_uri(original)) == original


def test_a_label_that_is_not_unicode_is_refused():
    """Found by fuzzing: a lone surrogate (``surrogateescape`` input) in the label was accepted,
    and the account's URI (its QR code, its export) then raised UnicodeEncodeError."""
    with pytest.raises(totp.InvalidOtpUri):
        totp.parse_uri(f"otpauth://totp/ACME:bob\udcff?secret={_B32_SECRET}")
    with pytest.raises(totp.InvalidOtpUri):
        totp.parse_uri(f"otpauth://totp/bob?secret={_B32_SECRET}&issuer=\ud800")


# -- QR payloads ------------------------------------------------------------------------------------------


def _decoded_or_refused(decode, *args) -> list[str] | None:
    try:
        texts = decode(*args)
    except qr.QrError:
        return None
    assert texts and all(isinstance(t, str) and len(t) <= qr.MAX_TEXT for t in texts)
    return texts


_SEED_IMAGES: dict[str, bytes] = {}


def _seed_image(kind: str) -> bytes:
    """A real QR image in one of the formats people drop on the app."""
    if kind not in _SEED_IMAGES:
        from PIL import Image

        png = qr.encode_png("otpauth://totp/ACME:bob?secret=" + _B32_SECRET, scale=2)
        if kind == "PNG":
            _SEED_IMAGES[kind] = png
        else:
            image = Image.open(io.BytesIO(png))
            image = image.convert("P" if kind == "GIF" else "L" if kind in ("JPEG", "TIFF") else "RGB")
            out = io.BytesIO()
            image.save(out, format=kind)
            _SEED_IMAGES[kind] = out.getvalue()
    return _SEED_IMAGES[kind]


@fuzz(0.5)
@given(st.one_of(st.binary(max_size=300),
                 st.tuples(st.sampled_from(["PNG", "GIF", "BMP", "JPEG", "TIFF", "PPM"]),
                           st.lists(_MUTATION, min_size=1, max_size=3))))
def test_qr_reader_on_damaged_images(data):
    ran("qr")
    if not isinstance(data, bytes):
        kind, mutations = data
        data = bytes(_mutate(_seed_image(kind), mutations))
    _decoded_or_refused(qr.decode_image_bytes, data)


@fuzz(0.3)
@given(st.binary(max_size=2000), st.integers(-2, 64), st.integers(-2, 64), st.sampled_from(["gray", "rgb", "rgba", "x"]),
       st.none() | st.integers(-4, 300))
def test_qr_reader_on_raw_pixels(data, width, height, pixel_format, stride):
    ran("qr")
    _decoded_or_refused(qr.decode_pixels, data, width, height, pixel_format, stride)


@fuzz(0.2)
@given(st.one_of(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=300),
                 st.text(st.characters(codec="utf-8"), min_size=1, max_size=80), any_text.filter(bool)))
def test_qr_payloads_round_trip_or_are_refused(text):
    """Any text we draw is read back as itself (ASCII: an otpauth URI is ASCII), or refused
    with a typed error when it cannot be drawn."""
    ran("qr")
    try:
        png = qr.encode_png(text, scale=1)
    except qr.QrError:
        assert any("\ud800" <= ch <= "\udfff" for ch in text)  # the only text it cannot draw
        return
    texts = _decoded_or_refused(qr.decode_image_bytes, png)
    if text.isascii() and text.isprintable():
        assert texts == [text]


@pytest.mark.parametrize("text", ["a" * 2332, "€" * 800, "\ud800"])
def test_text_a_qr_code_cannot_hold_is_refused(text):
    """Found by fuzzing: segno's DataOverflowError (and a UnicodeEncodeError) came out of
    encode_png for text under its 4,096-character limit."""
    with pytest.raises(qr.QrError):
        qr.encode_png(text, scale=1)


# -- the agent protocol -------------------------------------------------------------------------------------

json_objects = st.dictionaries(any_text, json_values, max_size=6)


@fuzz()
@given(st.one_of(st.binary(max_size=300), any_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
                 json_objects.map(lambda d: json.dumps(d).encode()),
                 st.integers(1, 3000).map(lambda n: b"[" * n)))
def test_agent_payload_decoder(payload):
    ran("agent protocol")
    try:
        message = wire.decode_payload(payload)
    except wire.AgentBadRequest:
        return
    assert isinstance(message, dict)


@fuzz()
@given(st.binary(max_size=80), st.integers(0, 1 << 20))
def test_agent_frame_splitter(data, limit):
    ran("agent protocol")
    buffer = bytearray(data)
    try:
        payload = wire.take_frame(buffer, limit)
    except wire.AgentTooLarge:
        assert int.from_bytes(data[:4], "big") > limit and buffer == data
        return
    if payload is None:
        assert buffer == data
    else:
        assert data == len(payload).to_bytes(4, "big") + payload + bytes(buffer)


finite_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4), max_leaves=12)


@fuzz(0.5)
@given(st.dictionaries(any_text, finite_json, max_size=6))
def test_agent_frames_round_trip(message):
    ran("agent protocol")
    frame = wire.encode_frame(message)
    assert frame[4:].isascii() and int.from_bytes(frame[:4], "big") == len(frame) - 4
    try:
        json.dumps(message, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # half a surrogate pair somewhere: not Unicode, refused
        with pytest.raises(wire.AgentBadRequest):
            wire.decode_payload(frame[4:])
        return
    assert wire.decode_payload(frame[4:]) == json.loads(json.dumps(message))


@fuzz(0.5)
@given(json_objects)
def test_agent_error_replies(reply):
    ran("agent protocol")
    error = wire.error_from_reply(reply)
    assert isinstance(error, wire.AgentError) and "\n" not in str(error) and str(error)


# -- a live agent, fed random frames -----------------------------------------------------------------------


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def live_agent(tmp_path_factory):
    """An agent serving a vault with a grant for this process on ``brokers/*``; every error it
    logs (an exception in a request or its audit) is collected."""
    from its_desktop.agent.grants import Grant, add_to_settings
    from its_desktop.agent.peer import Hasher, Peer, identify
    from its_desktop.agent.server import AgentServer
    from its_desktop.core.vault.api import Vault
    from tests.conftest import FAST_KDF, PASSWORD

    folder = tmp_path_factory.mktemp("agent")
    vault = Vault.create(folder / "vault.its", PASSWORD, kdf=FAST_KDF)
    vault.set("brokers/ibkr/api_key", "IBKR-KEY", fields={"account": "U1"})
    me = identify(Peer(os.getpid(), os.getuid(), os.getgid()), Hasher())
    grant = Grant.for_client(me, "brokers/*", "always")
    vault.change_settings(lambda s: add_to_settings(s, grant))
    errors = _Errors()
    logger = logging.getLogger("its_desktop")
    logger.addHandler(errors)
    server = AgentServer(lambda: vault, folder=str(folder / "a"), frame_timeout=2.0)
    server.start()
    try:
        yield server, errors
    finally:
        server.stop()
        logger.removeHandler(errors)
        vault.lock()


def _exchange(path: str, data: bytes) -> list[dict]:
    replies: list[dict] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it hung up first (a frame too large): what it said is still to be read
        buffer = bytearray()
        try:
            while chunk := sock.recv(65536):
                buffer += chunk
        except ConnectionResetError:
            pass
    while (payload := wire.take_frame(buffer, wire.MAX_REPLY)) is not None:
        replies.append(json.loads(payload))
    assert not buffer, "a reply frame was cut short"
    return replies


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


request_values = st.one_of(json_values, st.sampled_from(["brokers/ibkr/api_key", "brokers/x", "brokers/", "account",
                                                         "\ud800", "brokers/\udcff", "a" * 1025, "*", "../"]))
requests = st.fixed_dictionaries(
    {"v": st.sampled_from([1] * 6 + [2, "1", None, 1.0, True]),
     "op": st.sampled_from(["get", "list"] * 4 + ["hello", "status", "x", ""]) | json_values},
    optional={
              "id": request_values, "name": request_values, "field": request_values, "with_fields": request_values,
              "prefix": request_values, "meta": request_values, "complete": request_values,
              "prompt": request_values})
frames = st.one_of(
    requests.map(lambda r: _frame(json.dumps(r).encode())),
    st.binary(max_size=200).map(_frame),
    st.binary(max_size=200),
    st.tuples(requests, st.integers(0, 400)).map(lambda t: _frame(json.dumps(t[0]).encode())[:t[1]]),
    st.integers(wire.MAX_REQUEST + 1, 1 << 32 - 1).map(lambda n: n.to_bytes(4, "big") + b"{"),
)
_REPLY_FIELDS = {"v", "ok", "error", "message", "id", "versions", "name", "names", "value", "version", "server", "mode",
                 "max_request", "locked", "pid", "vault", "fields", "expired", "rows"}


@fuzz(0.5)
@given(st.lists(frames, min_size=1, max_size=5))
def test_a_live_agent_answers_random_frames_with_typed_errors(live_agent, sent):
    ran("live agent")
    server, errors = live_agent
    for reply in _exchange(server.socket_path, b"".join(sent)):
        assert set(reply) <= _REPLY_FIELDS and isinstance(reply["ok"], bool)
        if not reply["ok"]:
            assert reply["error"] in {wire.BAD_REQUEST, wire.TOO_LARGE, wire.UNSUPPORTED_VERSION, wire.NOT_FOUND,
                                      wire.DENIED}, reply
    (hello,) = _exchange(server.socket_path, _frame(b'{"v":1,"op":"hello","id":7}'))
    assert hello["ok"] and hello["id"] == 7 and server.running
    assert server.flush_audit()
    assert not errors.records, [r.getMessage() + "\n" + str(r.exc_info and r.exc_info[1]) for r in errors.records]


def test_a_name_that_is_not_unicode_cannot_stop_the_agents_audit(live_agent):
    """Found by fuzzing: a ``get`` of the JSON name "\\ud800" was denied, and its audit record
    then killed the agent's audit writer (UnicodeEncodeError): no later request was audited."""
    server, errors = live_agent
    for request in (b'{"v":1,"op":"get","name":"\\ud800"}', b'{"v":1,"op":"list","prefix":"brokers/\\udcff"}',
                    b'{"v":1,"op":"get","name":"brokers/ibkr/api_key","field":"\\uDFFF","id":1}'):
        (reply,) = _exchange(server.socket_path, _frame(request))
        assert reply["error"] == wire.BAD_REQUEST
    (reply,) = _exchange(server.socket_path, _frame(b'{"v":1,"op":"get","name":"brokers/\\ud83d\\ude00"}'))
    assert reply["error"] == wire.NOT_FOUND and reply["name"] == "brokers/\U0001f600"  # a pair is fine
    assert server.flush_audit() and not errors.records


def test_the_atheris_targets_run_without_atheris():
    """The soak's coverage-guided harness runs the same parsers; here, on a few seeds, without
    atheris (which only the soak installs)."""
    from . import atheris_targets

    seeds = [b"", b"\x01", GOLDEN.read_bytes(), GOLDEN.read_bytes()[:-1], b"KEY=1\nexport B='x'\n",
             f"otpauth://totp/ACME:bob?secret={_B32_SECRET}".encode(), _frame(b'{"v":1,"op":"hello"}') * 2,
             (1 << 20).to_bytes(4, "big")]
    for target in atheris_targets.TARGETS.values():
        for seed in seeds:
            target(seed)
