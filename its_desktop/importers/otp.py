"""The forms a password manager stores a one-time-code account in, read into the vault's own
``OtpAccount`` (core/totp.py parses and validates; nothing is re-implemented here).

- an ``otpauth://`` URI: KeePassXC's ``otp`` attribute, Bitwarden's ``login.totp``, 1Password's
  ``OTPAuth`` column;
- KeeOtp's query form in the ``otp`` attribute: ``key=BASE32&size=6&step=30&otpHashMode=SHA1``;
- KeePassXC's legacy attributes: ``TOTP Seed`` and ``TOTP Settings`` (``step;digits`` or
  ``step;S`` for Steam);
- KeePass 2.47+'s own: ``TimeOtp-Secret-Base32`` (or ``-Hex``, ``-Base64``, plain
  ``TimeOtp-Secret``), ``TimeOtp-Length``, ``TimeOtp-Period``, ``TimeOtp-Algorithm``
  (``HMAC-SHA-256``…);
- Bitwarden's ``steam://SECRET`` and a bare base32 secret (a 6-digit, 30-second SHA1 TOTP).

Errors are core/totp.py's, which never repeat any part of the text.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qs

from ..core import totp
from ..core.totp import InvalidOtpSecret, InvalidOtpUri, OtpAccount, OtpKind

LEGACY_SEED = "TOTP Seed"
LEGACY_SETTINGS = "TOTP Settings"
KEEPASS_PREFIX = "TimeOtp-"
KEEPASS_SECRET = "TimeOtp-Secret-Base32"
OTP_ATTRIBUTE = "otp"


def account_from_text(text: str) -> OtpAccount:
    """A URI, ``steam://SECRET``, KeeOtp's query form, or a bare base32 secret."""
    text = text.strip()
    lowered = text.lower()
    if lowered.startswith("otpauth"):
        return totp.parse_uri(text)
    if lowered.startswith("steam://"):
        return _steam(text[len("steam://"):])
    if "key=" in lowered:
        return _keeotp(text)
    return OtpAccount(totp.decode_secret(text))


def _steam(secret: str) -> OtpAccount:
    return OtpAccount(totp.decode_secret(secret), OtpKind.STEAM, digits=totp.STEAM_DIGITS,
                      period=totp.STEAM_PERIOD)


def _keeotp(text: str) -> OtpAccount:
    query = {k.lower(): v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
    algorithm = query.get("otphashmode", "SHA1").upper().replace("-", "")
    return OtpAccount(totp.decode_secret(query.get("key", "")), algorithm=algorithm,
                      digits=_whole(query.get("size"), 6), period=_whole(query.get("step"), 30))


def account_from_keepass(attributes: dict[str, str]) -> OtpAccount | None:
    """The account an entry's string attributes describe, or None: the ``otp`` attribute
    first, then the legacy KeePassXC pair, then KeePass's ``TimeOtp-*`` set."""
    if attributes.get(OTP_ATTRIBUTE):
        return account_from_text(attributes[OTP_ATTRIBUTE])
    if attributes.get(LEGACY_SEED):
        step, _, digits = (attributes.get(LEGACY_SETTINGS) or "30;6").partition(";")
        if digits.strip() == "S":
            return _steam(attributes[LEGACY_SEED])
        return OtpAccount(totp.decode_secret(attributes[LEGACY_SEED]), digits=_whole(digits, 6),
                          period=_whole(step, 30))
    key = _keepass_key(attributes)
    if key is None:
        return None
    algorithm = (attributes.get("TimeOtp-Algorithm") or "HMAC-SHA-1").upper()
    algorithm = algorithm.removeprefix("HMAC-").replace("-", "")
    return OtpAccount(key, algorithm=algorithm, digits=_whole(attributes.get("TimeOtp-Length"), 6),
                      period=_whole(attributes.get("TimeOtp-Period"), 30))


def _keepass_key(attributes: dict[str, str]) -> bytes | None:
    """KeePass stores the key in one of four encodings, whichever the user typed it in."""
    if attributes.get(KEEPASS_SECRET):
        return totp.decode_secret(attributes[KEEPASS_SECRET])
    try:
        if attributes.get("TimeOtp-Secret-Hex"):
            return bytes.fromhex(attributes["TimeOtp-Secret-Hex"])
        if attributes.get("TimeOtp-Secret-Base64"):
            return base64.b64decode(attributes["TimeOtp-Secret-Base64"], validate=True)
    except (ValueError, binascii.Error):
        raise InvalidOtpSecret("the one-time-code secret is not valid hex or base64") from None
    if attributes.get("TimeOtp-Secret"):
        return attributes["TimeOtp-Secret"].encode("utf-8")
    return None


def is_otp_attribute(key: str) -> bool:
    """Attributes that hold the account (never copied into plain fields: they are its secret)."""
    return key in (OTP_ATTRIBUTE, LEGACY_SEED, LEGACY_SETTINGS) or key.startswith(KEEPASS_PREFIX)


def _whole(text: str | None, default: int) -> int:
    text = (text or "").strip()
    if not text:
        return default
    if not text.isdigit() or len(text) > 6:
        raise InvalidOtpUri("a one-time-code setting is not a whole number")
    return int(text)
