"""One-time codes (core.totp) and the QR codes that carry them (services.qr).

The algorithms are checked against the RFCs' own test vectors and against pyotp; the otpauth
parser against real-world URIs, malformed ones (each must fail with a typed error that never
repeats the secret), and a fuzzer.
"""

from __future__ import annotations

import base64
import io
import stat
import struct
import zlib
from datetime import datetime, timezone

import pyotp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from its_desktop.core import totp
from its_desktop.core.errors import InvalidInput
from its_desktop.core.secrets import Secret, SecretType
from its_desktop.core.totp import (
    InvalidOtpSecret,
    InvalidOtpUri,
    OtpAccount,
    OtpError,
    OtpKind,
    UnsupportedAlgorithm,
)
from its_desktop.services import qr

# RFC 6238 Appendix B seeds: the ASCII digits repeated to the hash's size.
SEED = {"SHA1": b"12345678901234567890", "SHA256": b"12345678901234567890123456789012",
        "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234"}
SECRET = "JBSWY3DPEHPK3PXPUNIQ7QZA"  # a distinctive base32 secret: its leak would be plain to see


# -- the algorithms ---------------------------------------------------------------------------


def test_hotp_matches_rfc4226_appendix_d():
    expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
    assert [totp.hotp(SEED["SHA1"], counter) for counter in range(10)] == expected


@pytest.mark.parametrize(("at", "sha1", "sha256", "sha512"), [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
])
def test_totp_matches_rfc6238_appendix_b(at, sha1, sha256, sha512):
    for algorithm, code in (("SHA1", sha1), ("SHA256", sha256), ("SHA512", sha512)):
        assert totp.totp(SEED[algorithm], at, period=30, digits=8, algorithm=algorithm) == code
        account = OtpAccount(SEED[algorithm], algorithm=algorithm, digits=8)
        assert account.code(at) == code


def test_steam_codes_match_the_steam_app():
    # Pairs recorded from the Steam mobile app by KeePassXC's authors (tests/TestTotp.cpp).
    key = totp.decode_secret("63BEDWCQZKTQWPESARIERL5DTTQFCJTK")
    assert totp.steam(key, 1511200518) == "FR8RV"
    assert totp.steam(key, 1511200714) == "9P3VP"
    account = OtpAccount(key, OtpKind.STEAM, "Steam", "gabe", digits=5)
    assert account.code(1511200518) == "FR8RV"


@settings(max_examples=200, deadline=None)
@given(key=st.binary(min_size=14, max_size=64), at=st.integers(0, 2**33), digits=st.integers(6, 8),
       period=st.integers(1, 120), algorithm=st.sampled_from(["SHA1", "SHA256", "SHA512"]))
def test_totp_agrees_with_pyotp(key, at, digits, period, algorithm):
    """(pyotp wants 112-bit secrets and periods up to 120 s; we take what services issue.)"""
    secret = base64.b32encode(key).decode()
    reference = pyotp.TOTP(secret, digits=digits, interval=period, digest=algorithm.lower())
    assert totp.totp(key, at, period, digits, algorithm) == reference.at(at)
    assert totp.hotp(key, at, digits, algorithm) == pyotp.HOTP(secret, digits=digits, digest=algorithm.lower()).at(at)


def test_seconds_left_counts_down_to_the_next_step():
    assert [totp.seconds_left(t, 30) for t in (0, 1, 29, 29.5, 30)] == [30, 29, 1, 1, 30]
    assert totp.seconds_left(100, 60) == 20


def test_times_and_counters_out_of_range_are_typed_errors():
    for bad in (-1, float("nan"), float("inf"), 1e40):
        with pytest.raises(InvalidInput):
            totp.totp(SEED["SHA1"], bad)
    with pytest.raises(InvalidInput):
        totp.hotp(SEED["SHA1"], 2**64)


def test_verify_accepts_one_step_of_drift_and_nothing_else():
    account = OtpAccount(SEED["SHA1"], digits=8)
    assert account.verify("94287082", 59)
    assert account.verify("9428 7082", 59 + 30)  # typed with a space, a step late
    assert not account.verify("94287082", 59 + 60)
    assert not account.verify("94287083", 59)
    assert not account.verify("", 59)


# -- secrets --------------------------------------------------------------------------------------


def test_base32_secrets_are_read_as_people_write_them():
    key = totp.decode_secret(SECRET)
    for spelling in (SECRET.lower(), SECRET + "=" * 0, "JBSW Y3DP EHPK 3PXP UNIQ 7QZA", "jbsw-y3dp-ehpk-3pxp-uniq-7qza"):
        assert totp.decode_secret(spelling) == key
    padded = base64.b32encode(b"0123456789a").decode()  # 11 bytes: padding on the wire
    assert padded.endswith("=") and totp.decode_secret(padded) == totp.decode_secret(padded.rstrip("="))
    assert totp.encode_secret(key) == SECRET


@pytest.mark.parametrize("bad", ["", "   ", "JBSWY3DP", "JBSWY3DPEHPK3PX1", "JBSWY3DPEHPK3PX8", "A" * 17,
                                 "JBSWY3DPEHPK3PXPſ", "A" * 2000, "JBSWY3DP\x00EHPK3PXP"])
def test_bad_secrets_are_refused_without_being_repeated(bad):
    with pytest.raises(InvalidOtpSecret) as caught:
        totp.decode_secret(bad)
    assert bad.strip() == "" or bad not in str(caught.value)


# -- otpauth:// URIs ------------------------------------------------------------------------------


def test_google_key_uri_example_and_canonical_form():
    uri = ("otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ"
           "&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30")
    account = totp.parse_uri(uri)
    assert (account.kind, account.issuer, account.account) == (OtpKind.TOTP, "ACME Co", "john.doe@email.com")
    assert (account.algorithm, account.digits, account.period) == ("SHA1", 6, 30)
    assert account.secret == "HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ"
    assert totp.build_uri(account) == uri  # already canonical
    assert "HXDM" not in repr(account)


def test_minimal_uris_take_the_defaults_and_the_issuer_parameter_wins():
    account = totp.parse_uri(f"otpauth://totp/alice@example.com?secret={SECRET.lower()}")
    assert (account.issuer, account.account, account.digits, account.period) == ("", "alice@example.com", 6, 30)
    account = totp.parse_uri(f"OTPAUTH://TOTP/Old%20Name:alice?secret={SECRET}&issuer=New+Name&image=x.png")
    assert account.issuer == "New Name" and account.account == "alice"
    assert totp.parse_uri(f"otpauth://totp/Label%3Aalice?secret={SECRET}").issuer == "Label"


def test_hotp_and_steam_uris():
    account = totp.parse_uri(f"otpauth://hotp/Bank:ada?secret={SECRET}&counter=42&digits=8&algorithm=sha256")
    assert (account.kind, account.counter, account.digits, account.algorithm) == (OtpKind.HOTP, 42, 8, "SHA256")
    assert account.hotp_code() == totp.hotp(account.key, 42, 8, "SHA256")
    with pytest.raises(InvalidInput):
        account.code(0)  # an HOTP account has no time-based code
    keepassxc = ("otpauth://totp/test:test@example.com?secret=63BEDWCQZKTQWPESARIERL5DTTQFCJTK&issuer=Valve"
                 "&algorithm=SHA1&digits=5&period=30&encoder=steam")
    aegis = "otpauth://steam/Steam:gabe?secret=63BEDWCQZKTQWPESARIERL5DTTQFCJTK&issuer=Steam"
    for uri in (keepassxc, aegis):
        steam = totp.parse_uri(uri)
        assert steam.kind is OtpKind.STEAM and steam.digits == 5 and steam.code(1511200518) == "FR8RV"
        assert totp.parse_uri(steam.uri()) == steam


accounts = st.builds(
    OtpAccount,
    key=st.binary(min_size=10, max_size=64),
    kind=st.sampled_from([OtpKind.TOTP, OtpKind.HOTP]),
    issuer=st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=":"), max_size=20)
    .map(str.strip),
    account=st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20).map(str.strip),
    algorithm=st.sampled_from(["SHA1", "SHA256", "SHA512"]),
    digits=st.integers(6, 8), period=st.integers(1, 86400), counter=st.integers(0, 2**64 - 1),
)


@settings(max_examples=300, deadline=None)
@given(account=accounts)
def test_build_then_parse_gives_the_same_account(account):
    uri = totp.build_uri(account)
    again = totp.parse_uri(uri)
    if account.kind is OtpKind.HOTP:
        assert again == OtpAccount(**{**account.__dict__, "period": 30})  # HOTP URIs carry no period
    else:
        assert again == OtpAccount(**{**account.__dict__, "counter": 0})
    assert totp.build_uri(again) == uri


MALFORMED = {
    "not otpauth": f"https://example.com/?secret={SECRET}",
    "no scheme": f"totp/x?secret={SECRET}",
    "migration": f"otpauth-migration://offline?data={SECRET}",
    "type": f"otpauth://motp/x?secret={SECRET}",
    "no secret": "otpauth://totp/x?issuer=a",
    "empty secret": "otpauth://totp/x?secret=",
    "not base32": f"otpauth://totp/x?secret={SECRET[:-1]}1",
    "impossible length": f"otpauth://totp/x?secret={SECRET}A",
    "too short": "otpauth://totp/x?secret=JBSWY3DPEHPK3PX",
    "too long": "otpauth://totp/x?secret=" + "A" * 500,
    "algorithm": f"otpauth://totp/x?secret={SECRET}&algorithm=MD5",
    "algorithm holding the secret": f"otpauth://totp/x?secret={SECRET}&algorithm={SECRET}",
    "digits low": f"otpauth://totp/x?secret={SECRET}&digits=5",
    "digits high": f"otpauth://totp/x?secret={SECRET}&digits=9",
    "digits word": f"otpauth://totp/x?secret={SECRET}&digits=six",
    "digits holding the secret": f"otpauth://totp/x?secret={SECRET}&digits={SECRET}",
    "digits signed": f"otpauth://totp/x?secret={SECRET}&digits=+6",
    "period zero": f"otpauth://totp/x?secret={SECRET}&period=0",
    "period negative": f"otpauth://totp/x?secret={SECRET}&period=-30",
    "period huge": f"otpauth://totp/x?secret={SECRET}&period=999999999999999999999999",
    "hotp without counter": f"otpauth://hotp/x?secret={SECRET}",
    "counter too big": f"otpauth://hotp/x?secret={SECRET}&counter={2**64}",
    "repeated secret": f"otpauth://totp/x?secret={SECRET}&secret={SECRET}",
    "repeated unknown": f"otpauth://totp/x?secret=AAAAAAAAAAAAAAAA&{SECRET}&{SECRET}",
    "uri too long": f"otpauth://totp/{'x' * 5000}?secret={SECRET}",
    "bad utf-8": f"otpauth://totp/%FF%FE?secret={SECRET}",
    "control character": f"otpauth://totp/a%0Ab?secret={SECRET}",
    "colon in issuer": f"otpauth://totp/x?secret={SECRET}&issuer=a:b",
    "steam with six digits": f"otpauth://totp/x?secret={SECRET}&encoder=steam&digits=6",
    "steam sha256": f"otpauth://steam/x?secret={SECRET}&algorithm=SHA256",
}


@pytest.mark.parametrize("uri", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_uris_fail_with_typed_errors_that_do_not_echo_the_secret(uri):
    with pytest.raises(InvalidOtpUri) as caught:
        totp.parse_uri(uri)
    message = str(caught.value)
    assert isinstance(caught.value, InvalidInput)
    assert SECRET not in message and SECRET[:8] not in message and "\n" not in message
    assert uri not in message


def test_unknown_algorithm_has_its_own_type():
    with pytest.raises(UnsupportedAlgorithm):
        totp.parse_uri(MALFORMED["algorithm"])


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_arbitrary_text_parses_or_fails_typed(text):
    try:
        totp.parse_uri(text)
    except OtpError as exc:
        assert "\n" not in str(exc)


URI_PIECES = st.sampled_from(["otpauth://", "totp", "hotp", "steam", "/", ":", "?", "&", "=", "#", "%", "%3A",
                              "%FF", "secret=", SECRET, "issuer=", "algorithm=", "SHA1", "SHA512", "MD5",
                              "digits=", "period=", "counter=", "encoder=steam", "6", "8", "0", "-1",
                              "99999999999999999999999", "+", " ", "\x00", "é"])


@settings(max_examples=1000, deadline=None)
@given(st.lists(URI_PIECES, max_size=25))
def test_fuzz_uri_shaped_text_fails_only_with_typed_errors_and_never_echoes_the_secret(pieces):
    text = "".join(pieces)
    try:
        account = totp.parse_uri(text)
    except OtpError as exc:
        assert SECRET not in str(exc) and "\n" not in str(exc)
    else:
        assert totp.parse_uri(account.uri()) == account


# -- storage in the vault -------------------------------------------------------------------------


def test_accounts_round_trip_through_vault_fields():
    for uri in (f"otpauth://totp/Acme:bob?secret={SECRET}&issuer=Acme&algorithm=SHA512&digits=7&period=45",
                f"otpauth://hotp/Bank:ada?secret={SECRET}&counter=9",
                f"otpauth://totp/Steam:gabe?secret={SECRET}&issuer=Steam&encoder=steam"):
        account = totp.parse_uri(uri)
        fields = totp.account_to_fields(account)
        assert fields["kind"] == account.kind.value and SECRET not in str(fields)
        secret = Secret("totp/x", account.secret, SecretType.TOTP, fields)
        assert totp.account_from_secret(secret) == account


def test_a_bare_totp_secret_is_a_default_totp_account_and_other_types_are_refused():
    account = totp.account_from_secret(Secret("totp/bare", SECRET.lower(), SecretType.TOTP))
    assert (account.kind, account.digits, account.period, account.algorithm) == (OtpKind.TOTP, 6, 30, "SHA1")
    with pytest.raises(InvalidInput, match="not a one-time-code account"):
        totp.account_from_secret(Secret("keys/api", SECRET, SecretType.API_KEY))
    with pytest.raises(InvalidOtpUri):
        totp.account_from_secret(Secret("totp/odd", SECRET, SecretType.TOTP, {"digits": "12"}))
    with pytest.raises(InvalidOtpUri):
        totp.account_from_secret(Secret("totp/odd", SECRET, SecretType.TOTP, {"kind": "motp"}))


def test_next_code_advances_an_hotp_counter_in_the_vault(vault):
    hotp_account = totp.parse_uri(f"otpauth://hotp/Bank:ada?secret={SECRET}&counter=5")
    time_account = totp.parse_uri(f"otpauth://totp/Acme:bob?secret={SECRET}")
    vault.set("totp/bank", hotp_account.secret, type="totp", fields=totp.account_to_fields(hotp_account))
    vault.set("totp/acme", time_account.secret, type="totp", fields=totp.account_to_fields(time_account))
    codes = [totp.next_code(vault, "totp/bank", 0) for _ in range(3)]
    assert codes == [totp.hotp(hotp_account.key, c) for c in (5, 6, 7)]
    assert vault.peek("totp/bank").fields["counter"] == "8"
    at = datetime(2030, 1, 1, tzinfo=timezone.utc).timestamp()
    assert totp.next_code(vault, "totp/acme", at) == pyotp.TOTP(SECRET).at(at)
    assert vault.peek("totp/acme").version == 1  # a time-based code changes nothing


def test_generated_accounts_use_the_injected_randomness():
    account = totp.generate_account(" My service ", " ops@desk ", algorithm="SHA256", digits=8, period=60,
                                    random=lambda n: bytes(range(n)))
    assert account.key == bytes(range(20)) and (account.issuer, account.account) == ("My service", "ops@desk")
    assert totp.suggest_name(account) == "totp/My service/ops@desk"
    assert totp.suggest_name(OtpAccount(account.key, issuer="a/b")) == "totp/a-b"


# -- QR codes (services.qr) -----------------------------------------------------------------------


def test_qr_png_round_trips_from_bytes_file_and_pixels(tmp_path):
    from PIL import Image

    uri = totp.parse_uri(f"otpauth://totp/Acme:bob?secret={SECRET}&issuer=Acme").uri()
    png = qr.encode_png(uri)
    assert png.startswith(b"\x89PNG") and qr.decode_image_bytes(png) == [uri]
    path = qr.write_png(uri, tmp_path / "code.png")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and qr.decode_file(path) == [uri]
    image = Image.open(io.BytesIO(png))
    for mode, fmt in (("RGBA", "rgba"), ("RGB", "rgb"), ("L", "gray")):
        pixels = image.convert(mode)
        assert qr.decode_pixels(pixels.tobytes(), pixels.width, pixels.height, fmt) == [uri]
    jpeg = io.BytesIO()
    image.convert("RGB").save(jpeg, "JPEG", quality=90)
    assert qr.decode_image_bytes(jpeg.getvalue()) == [uri]


def test_qr_errors_are_typed_and_one_line(tmp_path):
    from PIL import Image

    blank = io.BytesIO()
    Image.new("L", (64, 64), 255).save(blank, "PNG")
    with pytest.raises(qr.NoQrCode) as caught:
        qr.decode_image_bytes(blank.getvalue())
    assert str(caught.value) == "no QR code found in the image"
    with pytest.raises(qr.UnreadableImage):
        qr.decode_image_bytes(b"not an image " + SECRET.encode())
    with pytest.raises(qr.UnreadableImage, match="cannot read"):
        qr.decode_file(tmp_path / "missing.png")
    with pytest.raises(qr.UnreadableImage):
        qr.decode_pixels(b"\x00" * 10, 100, 100, "gray")  # fewer bytes than the size says
    for side in (8_000, 20_000):  # 64 and 400 megapixels announced by a 60-byte file
        with pytest.raises(qr.UnreadableImage, match="megapixels"):
            qr.decode_image_bytes(_png_header(side, side))


def _png_header(width: int, height: int) -> bytes:
    """A PNG that announces a size and holds no pixels: refused before any pixel is decoded."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_pick_one_refuses_to_guess():
    uri = f"otpauth://totp/x?secret={SECRET}"
    assert qr.pick_one(["hello"], "otpauth://") == "hello"  # the only code: the parser says what is wrong
    assert qr.pick_one(["https://example.com", uri], "otpauth://") == uri
    with pytest.raises(qr.QrError, match="2 QR codes"):
        qr.pick_one([uri, uri + "A"], "otpauth://")
