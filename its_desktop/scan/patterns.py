"""Well-known credential shapes, found even when they are not in the vault.

Only high-precision shapes: each has a fixed, distinctive prefix or a keyword right next to
it, so a hit is almost always a real credential. A finding carries the kind, never the text.
Each pattern names literal needles; the (slower) regular expression runs only on a file that
contains one, so most files cost a few ``bytes.find`` calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Pattern:
    id: str
    description: str
    regex: re.Pattern[bytes]
    needles: tuple[bytes, ...]


PATTERNS: tuple[Pattern, ...] = (
    Pattern("aws-access-key-id", "AWS access key id",
            re.compile(rb"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
            (b"AKIA", b"ASIA", b"ABIA", b"ACCA")),
    Pattern("aws-secret-access-key", "AWS secret access key",
            re.compile(rb"(?i:aws_?secret_?access_?key|secret_?access_?key)[\"']?\s*[:=]\s*[\"']?"
                       rb"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
            (b"ecret_access_key", b"ECRET_ACCESS_KEY", b"ecretAccessKey", b"ecretaccesskey")),
    Pattern("private-key", "private key",
            re.compile(rb"-----BEGIN (?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"),
            (b"KEY-----",)),
    Pattern("github-token", "GitHub token",
            re.compile(rb"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{82})"
                       rb"(?![A-Za-z0-9_])"),
            (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_")),
    Pattern("slack-token", "Slack token",
            re.compile(rb"(?<![A-Za-z0-9])xox[abposr]-[0-9]{6,}-[A-Za-z0-9-]{10,}"),
            (b"xox",)),
    Pattern("slack-webhook", "Slack webhook URL",
            re.compile(rb"https://hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,}"),
            (b"hooks.slack.com",)),
    Pattern("stripe-secret-key", "Stripe secret key",
            re.compile(rb"(?<![A-Za-z0-9_])[sr]k_live_[A-Za-z0-9]{20,}"),
            (b"sk_live_", b"rk_live_")),
    Pattern("google-api-key", "Google API key",
            re.compile(rb"(?<![A-Za-z0-9_\-])AIza[0-9A-Za-z_\-]{35}(?![A-Za-z0-9_\-])"),
            (b"AIza",)),
)


@dataclass(frozen=True)
class PatternMatch:
    offset: int
    length: int
    pattern: Pattern


_NEEDLES = tuple(needle for pattern in PATTERNS for needle in pattern.needles)


def any_needle(text: bytes) -> bool:
    """Whether a pattern could match: each needle lies within one whitespace-free token."""
    return any(needle in text for needle in _NEEDLES)


def find_patterns(data: bytes, patterns: tuple[Pattern, ...] = PATTERNS) -> list[PatternMatch]:
    found = []
    for pattern in patterns:
        if not any(needle in data for needle in pattern.needles):
            continue
        for match in pattern.regex.finditer(data):
            group = 1 if match.re.groups else 0
            found.append(PatternMatch(match.start(group), match.end(group) - match.start(group), pattern))
    return found
