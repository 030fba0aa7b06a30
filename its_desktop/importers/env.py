"""``.env`` files, through the strict parser of core/dotenv.py.

That parser refuses a file with any bad line (listing them all); for a preview we also want
the valid part, so the bad lines are blanked and the file parsed again until it passes. A
line swallowed by an unterminated quote then reads on its own, and is reported if it is not
``KEY=VALUE`` either: the report stays line by line and nothing is guessed.
"""

from __future__ import annotations

from ..core.dotenv import DotenvError, EnvEntry, guess_type, parse_dotenv
from ..core.errors import InvalidInput
from ..core.secrets import SecretType
from .base import ImportedSecret, ImportIssue, Preview, decode_text, secret_name

KIND = "env"


def parse(data: bytes, source: str) -> Preview:
    text = decode_text(data, source)
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    problems: dict[int, str] = {}
    entries: list[EnvEntry] = []
    for _ in range(len(lines) + 1):  # each round blanks at least one line
        try:
            entries = parse_dotenv("\n".join(lines), source)
            break
        except DotenvError as error:
            for number, reason in error.problems:
                problems.setdefault(number, reason)
                lines[number - 1] = ""
    secrets, issues = [], [ImportIssue(n, reason) for n, reason in sorted(problems.items())]
    for entry in entries:
        origin = ImportIssue(entry.line, "", label=entry.key)
        try:
            name = secret_name((), entry.key)
        except InvalidInput as error:
            issues.append(ImportIssue(entry.line, str(error)))
            continue
        secrets.append(ImportedSecret(name, entry.value, SecretType(guess_type(entry.key)), origin=origin))
    return Preview(KIND, source, tuple(secrets), tuple(sorted(issues, key=lambda i: i.number)))
