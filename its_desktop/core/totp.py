"""One-time codes: HOTP (RFC 4226), TOTP (RFC 6238), Steam Guard, and ``otpauth://`` URIs.

An account is stored as a vault secret of type ``totp``: the value is the base32 secret and
the fields say how to use it (``kind``, ``issuer``, ``account``, ``algorithm``, ``digits``, and
``period`` or, for HOTP, ``counter``). Everything here is pure: the time is always passed in,
and the only vault access (``next_code`` and ``issue_code``, which must advance an HOTP
counter) goes through the object they are handed.

URIs follow Google Authenticator's Key Uri Format
(github.com/google/google-authenticator/wiki/Key-Uri-Format), with two Steam spellings seen in
the wild (``encoder=steam`` as KeePassXC writes it, and Aegis's ``otpauth://steam/``). They are
parsed canonically and with limits, and no error message ever repeats any part of a URI: a
malformed one may have its secret anywhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import os
import re
import struct
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Protocol
from urllib.parse import quote, unquote

from .errors import InvalidInput
from .secrets import Secret, SecretType

ALGORITHMS: dict[str, Callable[..., Any]] = {
    "SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512,
}
MIN_DIGITS, MAX_DIGITS = 6, 8
MAX_PERIOD = 86_400  # a day: longer is not a one-time code any more
MAX_COUNTER = 2**64 - 1  # RFC 4226 §5.2: the counter is an 8-byte integer
MIN_SECRET_BYTES = 10  # 80 bits: what most services issue (RFC 4226 asks for 128, few comply)
MAX_SECRET_BYTES = 256
MAX_URI_LENGTH = 4096
MAX_LABEL_LENGTH = 256  # issuer and account name, each
DEFAULT_SECRET_BYTES = 20  # RFC 4226 §4 R6 recommends 160 bits

STEAM_ALPHABET = "23456789BCDFGHJKMNPQRTVWXY"
STEAM_DIGITS = 5
STEAM_PERIOD = 30

_B32 = re.compile(r"[A-Z2-7]*")
_DECIMAL = re.compile(r"[0-9]{1,20}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")  # and lone surrogates: no URI, QR or file can hold them
_KNOWN = ("secret", "issuer", "algorithm", "digits", "period", "counter", "encoder")


class OtpError(InvalidInput):
    """Base of the one-time-code errors: all are malformed input (exit 1 in the CLI)."""


class InvalidOtpUri(OtpError):
    """An ``otpauth://`` URI or a stored account that cannot be used as it is."""


class InvalidOtpSecret(InvalidOtpUri):
    """The shared secret is not base32 of a usable length (its text is never repeated)."""

    def __init__(self, message: str = "the one-time-code secret is not valid base32 "
                 f"of {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes") -> None:
        super().__init__(message)


class UnsupportedAlgorithm(InvalidOtpUri):
    def __init__(self) -> None:
        super().__init__(f"unsupported one-time-code algorithm (use {', '.join(ALGORITHMS)})")


class OtpKind(str, Enum):
    TOTP = "totp"
    HOTP = "hotp"
    STEAM = "steam"  # TOTP, SHA1, 30 s, 5 characters from STEAM_ALPHABET


# -- the algorithms ---------------------------------------------------------------------------


def _truncate(key: bytes, counter: int, algorithm: str) -> int:
    """RFC 4226 §5.3: HMAC of the 8-byte big-endian counter, then dynamic truncation to 31 bits."""
    if not 0 <= counter <= MAX_COUNTER:
        raise InvalidInput("a one-time-code counter must be 0 to 2^64-1")
    digest = hmac.new(key, struct.pack(">Q", counter), ALGORITHMS[algorithm]).digest()
    offset = digest[-1] & 0x0F
    return struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF


def hotp(key: bytes, counter: int, digits: int = 6, algorithm: str = "SHA1") -> str:
    """The RFC 4226 code for ``counter`` (zero-padded to ``digits``)."""
    return str(_truncate(key, counter, algorithm) % 10**digits).zfill(digits)


def time_step(at: float, period: int = 30) -> int:
    """RFC 6238 §4.2: T = floor((time - T0) / X) with T0 = 0."""
    if not math.isfinite(at) or at < 0:
        raise InvalidInput("a time for a one-time code must be a number of seconds since 1970")
    return int(at // period)


def totp(key: bytes, at: float, period: int = 30, digits: int = 6, algorithm: str = "SHA1") -> str:
    """The RFC 6238 code at Unix time ``at``."""
    return hotp(key, time_step(at, period), digits, algorithm)


def steam(key: bytes, at: float) -> str:
    """A Steam Guard code: the truncated TOTP value spelled in base 26, least significant first."""
    value = _truncate(key, time_step(at, STEAM_PERIOD), "SHA1")
    chars = []
    for _ in range(STEAM_DIGITS):
        value, index = divmod(value, len(STEAM_ALPHABET))
        chars.append(STEAM_ALPHABET[index])
    return "".join(chars)


def seconds_left(at: float, period: int = 30) -> int:
    """Whole seconds until the code at ``at`` changes (1..period), for a countdown."""
    return math.ceil(period - at % period)


def decode_secret(text: str) -> bytes:
    """Base32 as people and QR codes write it: any case, spaces or dashes, padding or not."""
    if len(text) > 4 * MAX_SECRET_BYTES:  # before any work on it
        raise InvalidOtpSecret()
    cleaned = re.sub(r"[\s-]", "", text).upper().rstrip("=")
    if not cleaned.isascii() or not _B32.fullmatch(cleaned) or not cleaned:
        raise InvalidOtpSecret()
    try:
        key = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except binascii.Error:  # a length no byte string encodes to (1, 3 or 6 characters over)
        raise InvalidOtpSecret() from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidOtpSecret()
    return key


def encode_secret(key: bytes) -> str:
    """Canonical base32: upper case, no padding (what authenticator apps expect)."""
    return base64.b32encode(key).decode("ascii").rstrip("=")


# -- accounts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OtpAccount:
    """One authenticator entry. Construction validates, so a held account is always usable."""

    key: bytes = field(repr=False)
    kind: OtpKind = OtpKind.TOTP
    issuer: str = ""
    account: str = ""
    algorithm: str = "SHA1"
    digits: int = 6
    period: int = 30  # TOTP and Steam
    counter: int = 0  # HOTP: the counter of the next code

    def __post_init__(self) -> None:
        if not MIN_SECRET_BYTES <= len(self.key) <= MAX_SECRET_BYTES:
            raise InvalidOtpSecret()
        if self.algorithm not in ALGORITHMS:
            raise UnsupportedAlgorithm()
        for what, text in (("issuer", self.issuer), ("account name", self.account)):
            if len(text) > MAX_LABEL_LENGTH or _CONTROL.search(text):
                raise InvalidOtpUri(f"the {what} must be at most {MAX_LABEL_LENGTH} printable characters")
        if ":" in self.issuer:
            raise InvalidOtpUri("the issuer cannot contain ':'")
        if self.kind is OtpKind.STEAM:
            if (self.algorithm, self.digits, self.period) != ("SHA1", STEAM_DIGITS, STEAM_PERIOD):
                raise InvalidOtpUri("a Steam account uses SHA1, 5 characters and 30-second codes")
            return
        if not MIN_DIGITS <= self.digits <= MAX_DIGITS:
            raise InvalidOtpUri(f"digits must be {MIN_DIGITS} to {MAX_DIGITS}")
        if not 1 <= self.period <= MAX_PERIOD:
            raise InvalidOtpUri(f"the period must be 1 to {MAX_PERIOD} seconds")
        if not 0 <= self.counter <= MAX_COUNTER:
            raise InvalidOtpUri("the HOTP counter must be 0 to 2^64-1")

    @property
    def secret(self) -> str:
        """The base32 secret, as stored in the vault and put in URIs."""
        return encode_secret(self.key)

    @property
    def label(self) -> str:
        """What a person sees: ``Issuer: account``."""
        return ": ".join(part for part in (self.issuer, self.account) if part) or "(unnamed)"

    @property
    def time_based(self) -> bool:
        return self.kind is not OtpKind.HOTP

    def code(self, at: float) -> str:
        """The code at Unix time ``at`` (TOTP and Steam); an HOTP code goes through ``next_code``."""
        if self.kind is OtpKind.STEAM:
            return steam(self.key, at)
        if self.kind is OtpKind.HOTP:
            raise InvalidInput("an HOTP account has no time-based code: ask for the next code")
        return totp(self.key, at, self.period, self.digits, self.algorithm)

    def hotp_code(self) -> str:
        """The code for the current counter (the caller stores ``counter + 1`` afterwards)."""
        return hotp(self.key, self.counter, self.digits, self.algorithm)

    def verify(self, code: str, at: float, window: int = 1) -> bool:
        """Whether ``code`` is the code at ``at`` give or take ``window`` steps (a phone's clock
        drifts and a person types slowly), compared in constant time."""
        if not self.time_based:
            raise InvalidInput("only time-based codes can be verified this way")
        typed = re.sub(r"\s", "", code).upper()
        matched = False
        for step in range(-window, window + 1):
            moment = at + step * self.period
            if moment >= 0:
                matched |= hmac.compare_digest(typed.encode(), self.code(moment).encode())
        return matched

    def uri(self) -> str:
        return build_uri(self)


def generate_account(issuer: str, account: str, *, algorithm: str = "SHA1", digits: int = 6, period: int = 30,
                     size: int = DEFAULT_SECRET_BYTES,
                     random: Callable[[int], bytes] = os.urandom) -> OtpAccount:
    """A fresh TOTP secret for a service of one's own (to be scanned by a phone)."""
    return OtpAccount(random(size), OtpKind.TOTP, issuer.strip(), account.strip(), algorithm, digits, period)


# -- otpauth:// URIs ----------------------------------------------------------------------------


def parse_uri(text: str) -> OtpAccount:
    """An ``otpauth://totp|hotp|steam/[Issuer:]account?secret=…`` URI as an account.

    Unknown parameters (``image``, ``color``…) are ignored, as Google Authenticator does;
    repeated ones are refused, since two values for one setting are ambiguous.
    """
    text = text.strip()
    if len(text) > MAX_URI_LENGTH:
        raise InvalidOtpUri(f"the otpauth URI is longer than {MAX_URI_LENGTH} characters")
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() != "otpauth":
        if scheme.lower() == "otpauth-migration":
            raise InvalidOtpUri("Google Authenticator export codes are not supported: export one account at a time")
        raise InvalidOtpUri("not an otpauth:// URI")
    rest, _, _fragment = rest.partition("#")
    location, _, query = rest.partition("?")
    kind_text, _, path = location.partition("/")
    try:
        kind = OtpKind(kind_text.lower())
    except ValueError:
        raise InvalidOtpUri("the otpauth URI type must be totp, hotp or steam") from None
    params = _query(query)
    if params.get("encoder", "").lower() == "steam":
        kind = OtpKind.STEAM
    label = _unquote(path)
    label_issuer, colon, account = label.partition(":")
    if not colon:
        label_issuer, account = "", label
    issuer = params.get("issuer", label_issuer).strip()  # the parameter wins (Key Uri Format)
    if "secret" not in params:
        raise InvalidOtpSecret("the otpauth URI has no secret")
    key = decode_secret(params["secret"])
    algorithm = params.get("algorithm", "SHA1").upper()
    if algorithm not in ALGORITHMS:
        raise UnsupportedAlgorithm()
    default_digits = STEAM_DIGITS if kind is OtpKind.STEAM else 6
    digits = _number(params, "digits", default_digits)
    period = _number(params, "period", STEAM_PERIOD if kind is OtpKind.STEAM else 30)
    counter = 0
    if kind is OtpKind.HOTP:
        if "counter" not in params:
            raise InvalidOtpUri("an HOTP URI needs a counter")
        counter = _number(params, "counter", 0)
    return OtpAccount(key, kind, issuer, account.strip(), algorithm, digits, period, counter)


def build_uri(account: OtpAccount) -> str:
    """The canonical URI: every setting spelled out, in one order, secret without padding."""
    name = quote(account.account, safe="@")
    # Issuer prefix with a literal colon; without an issuer, a colon inside the account name
    # would read as one, so the label then starts with an empty prefix.
    label = f"{quote(account.issuer, safe='@')}:{name}" if account.issuer or ":" in account.account else name
    kind = "hotp" if account.kind is OtpKind.HOTP else "totp"
    params = [("secret", account.secret)]
    if account.issuer:
        params.append(("issuer", account.issuer))
    params += [("algorithm", account.algorithm), ("digits", str(account.digits))]
    params.append(("counter", str(account.counter)) if kind == "hotp" else ("period", str(account.period)))
    if account.kind is OtpKind.STEAM:
        params.append(("encoder", "steam"))
    return f"otpauth://{kind}/{label}?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params)


def _unquote(text: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise InvalidOtpUri("the otpauth URI is not valid UTF-8 once decoded") from None


def _query(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        key = _unquote(key.replace("+", " ")).lower()
        if key in params:  # only a known name is repeated back: an unknown one may be the secret
            raise InvalidOtpUri(f"the otpauth URI repeats the parameter '{key}'" if key in _KNOWN
                                else "the otpauth URI repeats a parameter")
        params[key] = _unquote(value.replace("+", " "))
    return params


def _number(params: dict[str, str], key: str, default: int) -> int:
    """A plain decimal number (no sign, no spaces, at most 20 digits), else a typed error."""
    if key not in params:
        return default
    if not _DECIMAL.fullmatch(params[key]):
        raise InvalidOtpUri(f"the otpauth parameter '{key}' must be a whole number")
    return int(params[key])


# -- vault storage ------------------------------------------------------------------------------


def account_to_fields(account: OtpAccount) -> dict[str, str]:
    """The fields stored beside the base32 value (the value is ``account.secret``)."""
    fields = {"kind": account.kind.value, "issuer": account.issuer, "account": account.account,
              "algorithm": account.algorithm, "digits": str(account.digits)}
    if account.kind is OtpKind.HOTP:
        fields["counter"] = str(account.counter)
    else:
        fields["period"] = str(account.period)
    return fields


def account_from_secret(secret: Secret) -> OtpAccount:
    """The account a ``totp`` secret holds. Missing fields take the usual defaults, so a bare
    ``its-vault set NAME --type totp`` of a base32 secret is a 6-digit, 30-second SHA1 TOTP."""
    if secret.type is not SecretType.TOTP:
        raise InvalidInput(f"'{secret.name}' is not a one-time-code account (its type is {secret.type.value})")
    fields = secret.fields
    try:
        kind = OtpKind(fields.get("kind", "totp"))
    except ValueError:
        raise InvalidOtpUri(f"'{secret.name}' has an unknown one-time-code kind") from None
    steam_kind = kind is OtpKind.STEAM
    return OtpAccount(
        decode_secret(secret.value), kind, fields.get("issuer", ""), fields.get("account", ""),
        fields.get("algorithm", "SHA1").upper(),
        _number(fields, "digits", STEAM_DIGITS if steam_kind else 6),
        _number(fields, "period", STEAM_PERIOD if steam_kind else 30),
        _number(fields, "counter", 0),
    )


def suggest_name(account: OtpAccount) -> str:
    """A vault name for a new account: ``totp/Issuer/account`` with slashes and control
    characters made harmless (the vault name rules forbid empty segments)."""
    parts = [re.sub(r"[/\x00-\x1f\x7f]", "-", p).strip() for p in (account.issuer, account.account)]
    return "/".join(["totp", *(p for p in parts if p)]) if any(parts) else "totp/account"


class SecretStore(Protocol):
    """What ``next_code`` needs of a vault (``core.vault.api.Vault`` is one)."""

    def get(self, name: str) -> Secret: ...

    def set(self, name: str, value: str | None = None, *, fields: dict[str, str] | None = None) -> Secret: ...


def next_code(vault: SecretStore, name: str, at: float) -> str:
    """The code to type now for the account ``name`` (read from the vault, audited)."""
    return issue_code(vault, name, account_from_secret(vault.get(name)), at)


def issue_code(vault: SecretStore, name: str, account: OtpAccount, at: float) -> str:
    """The code of ``account`` (just read from ``name``) at ``at``. An HOTP code uses up its
    counter: the next counter is saved before the code is returned, so no code is handed out
    twice by this vault."""
    if account.kind is not OtpKind.HOTP:
        return account.code(at)
    code = account.hotp_code()
    vault.set(name, fields={"counter": str(account.counter + 1)})
    return code
