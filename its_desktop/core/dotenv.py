"""A strict parser for ``.env`` files, the format traders' bots read their keys from today.

Accepted: ``KEY=VALUE``, ``export KEY=VALUE``, blank lines and ``#`` comments, unquoted values
(an inline comment starts at `` #``), single quotes (literal), double quotes (``\\n``, ``\\t``,
``\\"``, ``\\\\`` escapes; may span lines, for PEM keys). ``${VAR}`` is kept literally. A later
duplicate key wins, as in a shell. Any malformed line fails the whole parse, with every bad line
listed, so an import never half-happens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import InvalidInput

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}
MAX_ERRORS_SHOWN = 5


@dataclass(frozen=True)
class EnvEntry:
    key: str
    value: str = field(repr=False)
    line: int


class DotenvError(InvalidInput):
    """Every malformed line, reported together; the message is one line."""

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        first_line, reason = problems[0]
        extra = len(problems) - 1
        more = f" (and {extra} more bad line{'s' if extra > 1 else ''})" if extra else ""
        super().__init__(f"{source}:{first_line}: {reason}{more}")
        self.problems = problems


def parse_dotenv(text: str, source: str = "<env>") -> list[EnvEntry]:
    entries: dict[str, EnvEntry] = {}
    problems: list[tuple[int, str]] = []
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    while i < len(lines):
        number, raw = i + 1, lines[i]
        i += 1
        stripped = raw.lstrip()  # trailing blanks may belong to a quoted value
        if not stripped.strip() or stripped.startswith("#"):
            continue
        if stripped.startswith("export ") or stripped.startswith("export\t"):
            stripped = stripped[len("export"):].lstrip()
        match = _KEY.match(stripped)
        rest = stripped[match.end():].lstrip() if match else ""
        if not match or not rest.startswith("="):
            problems.append((number, "expected KEY=VALUE"))
            continue
        key, rest = match.group(), rest[1:]
        try:
            value, consumed = _parse_value(rest, lines, i)
        except ValueError as exc:
            problems.append((number, f"{key}: {exc}"))
            continue
        i += consumed
        entries[key] = EnvEntry(key, value, number)
    if problems:
        raise DotenvError(source, problems)
    return list(entries.values())


def _parse_value(rest: str, lines: list[str], next_index: int) -> tuple[str, int]:
    """Returns the value and how many further lines a multi-line quote consumed."""
    comment = re.search(r"\s#", rest)
    if comment and not rest[:comment.start()].strip():
        return "", 0  # `KEY= # comment` is an empty value, as in a shell
    rest = rest.lstrip()
    if rest.startswith("'"):
        end = rest.find("'", 1)
        if end < 0:
            raise ValueError("unterminated single quote")
        _trailing_ok(rest[end + 1:])
        return rest[1:end], 0
    if rest.startswith('"'):
        text, consumed = rest[1:], 0
        while True:
            value, end = _unescape_until_quote(text)
            if end is not None:
                _trailing_ok(text[end + 1:])
                return value, consumed
            if next_index + consumed >= len(lines):
                raise ValueError("unterminated double quote")
            text += "\n" + lines[next_index + consumed]
            consumed += 1
    comment = re.search(r"\s#", rest)
    value = rest[:comment.start()] if comment else rest
    return value.strip(), 0


def _unescape_until_quote(text: str) -> tuple[str, int | None]:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
            i += 2
            continue
        if ch == '"':
            return "".join(out), i
        out.append(ch)
        i += 1
    return "".join(out), None


def _trailing_ok(tail: str) -> None:
    tail = tail.strip()
    if tail and not tail.startswith("#"):
        raise ValueError("unexpected text after the closing quote")


def guess_type(key: str) -> str:
    """A best guess at a secret's type from its variable name."""
    upper = key.upper()
    if any(word in upper for word in ("PASSWORD", "PASSWD", "PWD")):
        return "password"
    if any(word in upper for word in ("API_KEY", "APIKEY", "TOKEN", "SECRET", "_KEY")):
        return "api_key"
    if upper.endswith(("DATABASE_URL", "DSN")):
        return "database"
    return "generic"
