"""Bitwarden's unencrypted JSON export (bitwarden.com/help/export-your-data, the ``.json``
format; the ``.json (Encrypted)`` one is refused with a sentence that says what to do).

``{"encrypted": false, "folders": [{"id", "name"}], "collections": [...], "items": [{"type",
"name", "folderId", "collectionIds", "notes", "reprompt", "fields": [{"name", "value", "type"}],
"login": {"username", "password", "totp", "uris": [{"uri"}]}, "card": {...}, "sshKey": {...}}]}``

Item types: 1 login (password as the value, username/URIs as fields, TOTP as ``NAME/totp``),
2 secure note (the notes as a note), 3 card (the number as the value, the rest as fields),
4 identity (every filled-in property as a field), 5 SSH key (the private key, type ssh_key).
Folders are paths (Bitwarden nests ``Brokers/IBKR`` by name); an organisation export has
collections instead, and an item's first collection is its folder. Custom fields become fields,
hidden ones too; linked fields (a pointer to the username or password) are skipped. "Master
password re-prompt" marks the secret high-value: revealing it asks for the password again.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.errors import InvalidInput
from ..core.secrets import SecretType
from ..core.totp import OtpError
from .base import Entry, ImportIssue, Preview, add_field, decode_text, entry_secrets, folder_path, printable
from .otp import account_from_text

KIND = "bitwarden"
LOGIN, NOTE, CARD, IDENTITY, SSH_KEY = 1, 2, 3, 4, 5
LINKED_FIELD = 3
CARD_FIELDS = (("cardholderName", "cardholder"), ("brand", "brand"), ("expMonth", "exp_month"),
               ("expYear", "exp_year"), ("code", "code"))
SSH_FIELDS = (("publicKey", "public_key"), ("keyFingerprint", "fingerprint"))


def parse(data: bytes, source: str) -> Preview:
    document = _load(decode_text(data, source), source)
    folders = _names(document.get("folders"), source, "folders")
    collections = _names(document.get("collections"), source, "collections")
    items = document.get("items")
    if not isinstance(items, list):
        raise InvalidInput(f"{source}: not a Bitwarden export (no list of items)")
    secrets, issues, notes = [], [], []
    for number, item in enumerate(items, start=1):
        label = printable(item["name"]) if isinstance(item, dict) and isinstance(item.get("name"), str) else ""
        problem = None
        try:
            if not isinstance(item, dict):
                raise InvalidInput("not an item object")
            if item.get("deletedDate"):
                notes.append(ImportIssue(number, "in the trash, left out", "item", label))
                continue
            entry, problem = _entry(item, folders, collections)
            secrets.extend(entry_secrets(entry, ImportIssue(number, "", "item", label)))
        except InvalidInput as error:
            problem = problem or str(error)
        if problem:
            issues.append(ImportIssue(number, problem, "item", label))
    return Preview(KIND, source, tuple(secrets), tuple(issues), tuple(notes))


def _load(text: str, source: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:  # its message names the spot, never the content
        raise InvalidInput(f"{source}: line {error.lineno}: not valid JSON ({error.msg}); "
                           "is the export complete?") from None
    except RecursionError:
        raise InvalidInput(f"{source}: nested too deeply to be a Bitwarden export") from None
    if not isinstance(document, dict):
        raise InvalidInput(f"{source}: not a Bitwarden export (expected a JSON object)")
    if document.get("encrypted") is True or "encKeyValidation_DO_NOT_EDIT" in document:
        raise InvalidInput(f"{source} is an encrypted Bitwarden export: export again choosing the "
                           "'.json' format (not '.json (Encrypted)'), import it, then delete it")
    return document


def _names(rows: Any, source: str, what: str) -> dict[str, str]:
    if rows is None:
        return {}
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InvalidInput(f"{source}: the {what} of the export are malformed")
    return {str(r.get("id")): str(r.get("name") or "") for r in rows}


def _entry(item: dict[str, Any], folders: dict[str, str], collections: dict[str, str]) -> tuple[Entry, str | None]:
    kind = item.get("type")
    title = _text(item, "name")
    folder = folders.get(str(item.get("folderId")), "") if item.get("folderId") else ""
    if not folder and isinstance(item.get("collectionIds"), list) and item["collectionIds"]:
        folder = collections.get(str(item["collectionIds"][0]), "")
    entry = Entry(folder_path(folder), title, notes=_text(item, "notes"), high_value=item.get("reprompt") == 1)
    problem = None
    if kind == LOGIN:
        login = _object(item, "login")
        entry.password = _text(login, "password")
        entry.username = _text(login, "username")
        uris = login.get("uris") or []
        if not isinstance(uris, list):
            raise InvalidInput("its URIs are malformed")
        links = [str(u["uri"]) for u in uris if isinstance(u, dict) and u.get("uri")]
        entry.url = links[0] if links else ""
        for n, link in enumerate(links[1:], start=2):
            add_field(entry.fields, f"url{n}", link)
        if login.get("totp"):
            try:
                entry.otp = account_from_text(str(login["totp"]))
            except OtpError as error:
                problem = f"one-time code not imported: {error}"
    elif kind == NOTE:
        entry.type = SecretType.NOTE
    elif kind == CARD:
        card = _object(item, "card")
        entry.password, entry.type = _text(card, "number"), SecretType.GENERIC
        for theirs, ours in CARD_FIELDS:
            add_field(entry.fields, ours, _text(card, theirs))
    elif kind == IDENTITY:
        identity = _object(item, "identity")
        entry.type = SecretType.GENERIC
        for key, value in identity.items():
            if isinstance(value, (str, int)):
                add_field(entry.fields, key, str(value))
    elif kind == SSH_KEY:
        key = _object(item, "sshKey")
        entry.password, entry.type = _text(key, "privateKey"), SecretType.SSH_KEY
        for theirs, ours in SSH_FIELDS:
            add_field(entry.fields, ours, _text(key, theirs))
    else:
        raise InvalidInput("an item type this app does not know")
    _custom_fields(item, entry)
    return entry, problem


def _custom_fields(item: dict[str, Any], entry: Entry) -> None:
    custom = item.get("fields") or []
    if not isinstance(custom, list):
        raise InvalidInput("its custom fields are malformed")
    for n, row in enumerate(custom, start=1):
        if not isinstance(row, dict):
            raise InvalidInput(f"custom field {n} is malformed")
        if row.get("type") == LINKED_FIELD or row.get("value") is None:
            continue
        add_field(entry.fields, str(row.get("name") or f"field {n}"), str(row["value"]))


def _object(item: dict[str, Any], key: str) -> dict[str, Any]:
    value = item.get(key)
    if not isinstance(value, dict):
        raise InvalidInput(f"its '{key}' part is missing or malformed")
    return value


def _text(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"its '{key}' is not text")
    return value
