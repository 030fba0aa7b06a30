"""Any CSV file with a header row, through a column mapping, for the spreadsheets people keep
keys in and for exporters without an importer of their own.

``--map name=Title,value=Password,folder=Group,type=Type,description=Notes,expires=Expiry,
field:account=Acct,tag:env=Env``: columns by their header (ignoring case and spaces); ``name``
and ``value`` are required; with a map, only mapped columns are read. Without a map the header
is guessed: name from Name/Title/Key/Label, value from Value/Password/Secret/Token, folder from
Folder/Group/Path, type from Type, description from Description, expiry from
Expires/Expiry/Expiration, tags from Tags (``env=prod, desk``), a Notes/Note column becomes the
field ``notes`` (as in the password-manager importers: notes often hold recovery codes, and
descriptions are listed and searched), and every other column is a field named by its header.

A slash in the name makes folders (``brokers/ibkr/api_key``), under the folder column's path.
A row without a value, with an unknown type or an expiry that is not a date is a problem of its
line. Without a type, the type is guessed from the name as for ``.env`` keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from ..core.dotenv import guess_type
from ..core.errors import InvalidInput
from ..core.secrets import SecretType
from .base import ImportedSecret, ImportIssue, Preview, add_field, folder_path, labels_to_tags, printable, secret_name
from .table import Row, Table, read_table

KIND = "csv"
ROLES = ("name", "value", "folder", "type", "description", "expires", "tags")
GUESSES = {
    "name": ("Name", "Title", "Key", "Label"),
    "value": ("Value", "Password", "Secret", "Token"),
    "folder": ("Folder", "Group", "Path"),
    "type": ("Type",),
    "description": ("Description",),
    "expires": ("Expires", "Expires at", "Expiry", "Expiration"),
    "tags": ("Tags",),
}

NOTES_HEADERS = ("notes", "note")


@dataclass(frozen=True)
class ColumnMap:
    """Which column holds what (columns named by their header)."""

    roles: tuple[tuple[str, str], ...]  # (role, column)
    fields: tuple[tuple[str, str], ...] = ()  # (field name, column)
    tags: tuple[tuple[str, str], ...] = ()  # (tag key, column)

    def column(self, role: str) -> str | None:
        return dict(self.roles).get(role)


def parse_mapping(spec: str) -> ColumnMap:
    """``name=Title,value=Password,field:account=Acct,tag:env=Env,folder=Group``."""
    roles: dict[str, str] = {}
    fields, tags = [], []
    for part in (p.strip() for p in spec.split(",")):
        target, sep, column = part.partition("=")
        target, column = target.strip(), column.strip()
        if not part or not sep or not target or not column:
            raise InvalidInput(f"--map: expected TARGET=COLUMN, got '{printable(part, 40)}'")
        kind, colon, key = target.partition(":")
        if colon and kind in ("field", "tag") and key.strip():
            (fields if kind == "field" else tags).append((key.strip(), column))
        elif target in ROLES and not colon:
            if target in roles:
                raise InvalidInput(f"--map: '{target}' is mapped twice")
            roles[target] = column
        else:
            raise InvalidInput(f"--map: unknown target '{printable(target, 40)}' (use {', '.join(ROLES)}, "
                               "field:NAME or tag:KEY)")
    for required in ("name", "value"):
        if required not in roles:
            raise InvalidInput(f"--map: say which column holds the {required} ({required}=COLUMN)")
    return ColumnMap(tuple(roles.items()), tuple(fields), tuple(tags))


def parse(data: bytes, source: str, mapping: ColumnMap | None = None) -> Preview:
    table = read_table(data, source)
    mapping = _resolve(mapping, table, source) if mapping else _guess(table, source)
    secrets, issues = [], list(table.issues)
    for row in table.rows:
        label = printable(row.cells[mapping.column("name") or ""])
        try:
            secrets.append(_secret(row, mapping, ImportIssue(row.line, "", label=label)))
        except InvalidInput as error:
            issues.append(ImportIssue(row.line, str(error), label=label))
    return Preview(KIND, source, tuple(secrets), tuple(sorted(issues, key=lambda i: i.number)))


def _resolve(mapping: ColumnMap, table: Table, source: str) -> ColumnMap:
    """The map with each column spelled as the header spells it."""

    def find(column: str) -> str:
        header = table.column(column)
        if header is None:  # the header's other names are not repeated: a headerless file's first row is data
            raise InvalidInput(f"{source}: --map names a column '{printable(column, 40)}' its header line does not have")
        return header

    return ColumnMap(tuple((role, find(column)) for role, column in mapping.roles),
                     tuple((key, find(column)) for key, column in mapping.fields),
                     tuple((key, find(column)) for key, column in mapping.tags))


def _guess(table: Table, source: str) -> ColumnMap:
    roles = {role: table.column(*names) for role, names in GUESSES.items()}
    if roles["name"] is None or roles["value"] is None:
        raise InvalidInput(f"{source}: cannot tell which columns hold the name and the value: "
                           "give --map name=COLUMN,value=COLUMN")
    used = set(roles.values())
    fields = tuple((_field_name(header), header) for header in table.header if header and header not in used)
    return ColumnMap(tuple((role, column) for role, column in roles.items() if column), fields)


def _field_name(header: str) -> str:
    return "notes" if header.strip().lower() in NOTES_HEADERS else header


def _secret(row: Row, mapping: ColumnMap, origin: ImportIssue) -> ImportedSecret:
    def cell(role: str) -> str:
        column = mapping.column(role)
        return row.cells[column] if column else ""

    parts = folder_path(cell("name"))
    if not parts:
        raise InvalidInput("missing name")
    name = secret_name([*folder_path(cell("folder")), *parts[:-1]], parts[-1])
    value = cell("value")
    if not value:
        raise InvalidInput("missing value")
    fields: dict[str, str] = {}
    for key, column in mapping.fields:
        add_field(fields, key, row.cells[column])
    tags = labels_to_tags(t for t in cell("tags").replace(";", ",").split(",") if t.strip())
    tags.update((key, row.cells[column].strip()) for key, column in mapping.tags if row.cells[column].strip())
    return ImportedSecret(name, value, _type(cell("type"), parts[-1]), fields, tags, cell("description"),
                          _expiry(cell("expires")), origin=origin)


def _type(text: str, leaf: str) -> SecretType:
    text = "_".join(text.strip().lower().split())
    if not text:
        return SecretType(guess_type(leaf))
    try:
        return SecretType(text)
    except ValueError:
        raise InvalidInput(f"unknown type (use {', '.join(t.value for t in SecretType)})") from None


def _expiry(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("the expiry is not a date (YYYY-MM-DD)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
