"""1Password's CSV export (File → Export → CSV), with the header row.

1Password 8 writes ``Title,Url,Username,Password,OTPAuth,Favorite,Archived,Tags,Notes``;
1Password 7 and older write ``title,website,username,password,notes,…`` and may add ``type``
or ``vault`` and custom columns. Headers are matched ignoring case and spaces, with these
spellings:

- title: Title, Name — the name (required)
- url: Url, URL, Website, Login URL — field ``url``
- username: Username, Login Username — field ``username``
- password: Password, Login Password — the value
- one-time code: OTPAuth, One-time password, OTP — an ``otpauth://`` URI, becomes ``NAME/totp``
- notes: Notes, notesPlain — the description (the value of a secure note)
- tags: Tags (comma-separated) — tags; type: Type, Category — the secret type (API
  Credential → api_key, Database → database, Secure Note → note, SSH Key → ssh_key, other
  kinds password); vault: Vault — the folder
- Archived ``true`` becomes the tag ``archived``; Favorite is ignored; any other column is a
  field named by its header.
"""

from __future__ import annotations

from ..core.errors import InvalidInput
from ..core.secrets import SecretType
from ..core.totp import OtpError
from .base import Entry, ImportIssue, Preview, entry_secrets, labels_to_tags, printable
from .otp import account_from_text
from .table import Row, read_table

KIND = "1password"
COLUMNS = {
    "title": ("Title", "Name"),
    "url": ("Url", "Website", "Login URL", "URLs"),
    "username": ("Username", "Login Username", "User name"),
    "password": ("Password", "Login Password"),
    "otp": ("OTPAuth", "One-time password", "OTP"),
    "notes": ("Notes", "notesPlain", "Note"),
    "tags": ("Tags",),
    "type": ("Type", "Category"),
    "vault": ("Vault",),
    "archived": ("Archived",),
    "favorite": ("Favorite",),
}
TYPES = {"apicredential": SecretType.API_KEY, "database": SecretType.DATABASE, "securenote": SecretType.NOTE,
         "sshkey": SecretType.SSH_KEY, "server": SecretType.PASSWORD}


def parse(data: bytes, source: str) -> Preview:
    table = read_table(data, source)
    columns = {role: table.column(*names) for role, names in COLUMNS.items()}
    if columns["title"] is None:
        raise InvalidInput(f"{source}: not a 1Password CSV export (its first line names no Title column; "
                           "for other layouts use 'import csv' with --map)")
    if not any(columns[role] for role in ("password", "otp", "notes")):
        raise InvalidInput(f"{source}: no Password, OTPAuth or Notes column to import")
    known = {header for header in columns.values() if header}
    secrets, issues = [], list(table.issues)
    for row in table.rows:
        label = printable(row.cells[columns["title"]])
        problem = None
        try:
            entry, problem = _entry(row, columns, [h for h in table.header if h and h not in known])
            secrets.extend(entry_secrets(entry, ImportIssue(row.line, "", label=label)))
        except InvalidInput as error:
            problem = problem or str(error)
        if problem:
            issues.append(ImportIssue(row.line, problem, label=label))
    return Preview(KIND, source, tuple(secrets), tuple(sorted(issues, key=lambda i: i.number)))


def _entry(row: Row, columns: dict[str, str | None], extra: list[str]) -> tuple[Entry, str | None]:
    def cell(role: str) -> str:
        header = columns[role]
        return row.cells[header] if header else ""

    kind = "".join(cell("type").lower().split())
    tags = labels_to_tags(t for t in cell("tags").replace(";", ",").split(",") if t.strip())
    if cell("archived").strip().lower() == "true":
        tags["archived"] = ""
    entry = Entry(folders=[cell("vault")] if cell("vault").strip() else [], title=cell("title"),
                  password=cell("password"), username=cell("username"), url=cell("url"), notes=cell("notes"),
                  fields={header: row.cells[header] for header in extra}, tags=tags,
                  type=TYPES.get(kind, SecretType.PASSWORD))
    problem = None
    if cell("otp").strip():
        try:
            entry.otp = account_from_text(cell("otp"))
        except OtpError as error:
            problem = f"one-time code not imported: {error}"
    return entry, problem

