"""The importers on files made the way their exporters make them: a KDBX 4 built with pykeepass
(groups, custom fields, an otp attribute, the legacy TOTP pair, expiry, an attachment, a
recycle bin), Bitwarden JSON and 1Password CSV as their documentation lays them out, CSV with a
column mapping, .env; then malformed variants of each, and the import itself (all or nothing,
skip or merge, one save, audited, no value anywhere but the vault).

The builders here are also used by tests/integration/test_import_cli.py and
tests/gui/test_import_dialog.py.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Callable

import pytest

from its_desktop.cli.main import build_parser
from its_desktop.core import totp
from its_desktop.core.errors import InvalidInput, VaultNotFound, WrongCredentials
from its_desktop.core.secrets import SecretType
from its_desktop.importers import KINDS, SOURCES, read_source
from its_desktop.importers.apply import Action, Duplicates, apply_import, plan_import, preview_plan
from its_desktop.importers.base import Entry, ImportedSecret, ImportRefused, Preview, secret_name, with_prefix
from its_desktop.importers.csvmap import parse_mapping

ROOT = Path(__file__).parents[2]
KDBX_PASSWORD = "kdbx password uniq-51c0de"
TOTP_SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
STEAM_SEED = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
# Values with a unique token each, so a leak into a message or a repr is unmistakable.
IBKR_KEY = "ibkr-api-key-uniq-3f9a1c"
ACCOUNT = "U7731-acct-uniq-88e2d0"
BINANCE_SECRET = "binance-secret-uniq-0c4d2e"
NOTE_TEXT = "recovery words uniq-6b1e93"
CARD_NUMBER = "4111111111111111"
CVV = "cvv-uniq-4419"
HIDDEN = "hidden-field-uniq-7d20aa"
OLD_VALUE = "old-value-uniq-2a6b90"
SECRETS = [KDBX_PASSWORD, TOTP_SEED, STEAM_SEED, IBKR_KEY, ACCOUNT, BINANCE_SECRET, NOTE_TEXT, CVV, HIDDEN, OLD_VALUE]
EXPIRY = datetime(2027, 6, 30, 12, 0, tzinfo=timezone.utc)


# -- builders: files as the exporting tools write them ------------------------------------------


@cache
def _kdbx_template() -> bytes:
    """An empty KDBX 4 from pykeepass, its Argon2 lowered to 8 MiB / 1 pass (made once: the
    library's blank database costs ~0.7 s to open)."""
    from pykeepass import PyKeePass
    from pykeepass.pykeepass import BLANK_DATABASE_LOCATION, BLANK_DATABASE_PASSWORD

    database = PyKeePass(BLANK_DATABASE_LOCATION, BLANK_DATABASE_PASSWORD)  # what create_database starts from
    kdf = database.kdbx.header.value.dynamic_header.kdf_parameters.data.dict
    kdf["I"].value, kdf["M"].value = 1, 8 * 1024 * 1024
    database.password = KDBX_PASSWORD
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "template.kdbx"
        database.save(str(path))
        return path.read_bytes()


def make_kdbx(path: Path, build: Callable | None = None, password: str = KDBX_PASSWORD) -> Path:
    """A KDBX 4 file written by pykeepass, filled by ``build(database)`` (default: ``desk``)."""
    from pykeepass import PyKeePass

    database = PyKeePass(io.BytesIO(_kdbx_template()), password=KDBX_PASSWORD)
    database.password = password
    (build or desk)(database)
    database.save(str(path))
    return path


def desk(database) -> None:
    """A trader's KeePassXC database: nested groups, custom fields (one protected), an otp URI,
    the legacy TOTP pair, an expiry, an attachment, tags, and an entry in the recycle bin."""
    brokers = database.add_group(database.root_group, "Brokers")
    ibkr = database.add_group(brokers, "IBKR")
    entry = database.add_entry(ibkr, "API", "alice", IBKR_KEY, url="https://ibkr.example", notes="paper account",
                               tags=["env=prod", "desk"],
                               otp=f"otpauth://totp/IBKR:alice?secret={TOTP_SEED}&issuer=IBKR&digits=8&period=60")
    entry.set_custom_property("account", ACCOUNT, protect=True)
    entry.set_custom_property("region", "eu")
    entry.add_attachment(database.add_binary(b"attachment uniq-19c3"), "contract.pdf")
    exchanges = database.add_group(database.root_group, "Exchanges")
    steam = database.add_entry(exchanges, "Binance", "bob", BINANCE_SECRET, expiry_time=EXPIRY)
    steam.set_custom_property("TOTP Seed", STEAM_SEED)
    steam.set_custom_property("TOTP Settings", "30;S")
    database.add_entry(database.root_group, "Top level", "", "", notes=NOTE_TEXT)
    old = database.add_entry(brokers, "Old broker", "carol", OLD_VALUE)
    database.trash_entry(old)


def bitwarden_export(**overrides) -> dict:
    """An unencrypted Bitwarden JSON export (bitwarden.com/help/export-your-data)."""
    document = {
        "encrypted": False,
        "folders": [{"id": "f-1", "name": "Brokers/IBKR"}, {"id": "f-2", "name": "Exchanges"}],
        "items": [
            {"id": "i-1", "organizationId": None, "folderId": "f-1", "type": 1, "reprompt": 1, "name": "API",
             "notes": "paper account", "favorite": False, "collectionIds": None,
             "fields": [{"name": "account", "value": ACCOUNT, "type": 0, "linkedId": None},
                        {"name": "pin", "value": HIDDEN, "type": 1, "linkedId": None},
                        {"name": "paper", "value": "true", "type": 2, "linkedId": None},
                        {"name": "linked", "value": None, "type": 3, "linkedId": 100}],
             "login": {"uris": [{"match": None, "uri": "https://ibkr.example"},
                                {"match": None, "uri": "https://api.ibkr.example"}],
                       "username": "alice", "password": IBKR_KEY, "totp": TOTP_SEED}},
            {"id": "i-2", "folderId": "f-2", "type": 1, "reprompt": 0, "name": "Binance", "notes": None,
             "login": {"uris": [], "username": "bob", "password": BINANCE_SECRET,
                       "totp": f"otpauth://totp/Binance:bob?secret={TOTP_SEED}&issuer=Binance"}},
            {"id": "i-3", "folderId": None, "type": 2, "reprompt": 0, "name": "Recovery words",
             "notes": NOTE_TEXT, "secureNote": {"type": 0}},
            {"id": "i-4", "folderId": None, "type": 3, "reprompt": 0, "name": "Desk card", "notes": None,
             "card": {"cardholderName": "Alice", "brand": "Visa", "number": CARD_NUMBER, "expMonth": "6",
                      "expYear": "2029", "code": CVV}},
            {"id": "i-5", "folderId": None, "type": 4, "reprompt": 0, "name": "Alice", "notes": None,
             "identity": {"title": "Ms", "firstName": "Alice", "lastName": None, "email": "alice@example.com"}},
            {"id": "i-6", "folderId": None, "type": 5, "reprompt": 0, "name": "Deploy key", "notes": None,
             "sshKey": {"privateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nuniq-5e5e\n", "publicKey": "ssh-ed25519 AAAA",
                        "keyFingerprint": "SHA256:abc"}},
            {"id": "i-7", "folderId": None, "type": 1, "reprompt": 0, "name": "Deleted", "notes": None,
             "deletedDate": "2026-01-01T00:00:00.000Z", "login": {"password": OLD_VALUE}},
        ],
    }
    document.update(overrides)
    return document


ONEPASSWORD_8 = [
    ["Title", "Url", "Username", "Password", "OTPAuth", "Favorite", "Archived", "Tags", "Notes"],
    ["IBKR API", "https://ibkr.example", "alice", IBKR_KEY,
     f"otpauth://totp/IBKR:alice?secret={TOTP_SEED}&issuer=IBKR", "true", "false", "brokers,env=prod",
     "paper account"],
    ["Binance", "https://binance.example", "bob", BINANCE_SECRET, "", "false", "true", "", ""],
    ["Recovery words", "", "", "", "", "false", "false", "", NOTE_TEXT],
]


def csv_text(rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def assert_no_value_in(text: str) -> None:
    for value in SECRETS:
        assert value not in text, f"a value leaked into: {text[:200]!r}"


def by_name(preview: Preview) -> dict[str, ImportedSecret]:
    return {s.name: s for s in preview.secrets}


def no_password() -> str:
    raise AssertionError("the password must not be asked for")


# -- the registry -------------------------------------------------------------------------------


def test_every_source_has_a_parser_a_cli_word_and_a_section_in_the_docs():
    import importlib

    guide = (ROOT / "docs" / "import.md").read_text(encoding="utf-8")
    assert KINDS == ("env", "kdbx", "bitwarden", "1password", "csv")  # the issue's command line
    for kind in KINDS:
        assert build_parser().parse_args(["import", kind, "FILE"]).kind == kind
    for source in SOURCES:
        assert callable(importlib.import_module(f"its_desktop.importers.{source.module}").parse)
        assert f"its-vault import {source.kind} " in guide, f"docs/import.md does not show 'import {source.kind}'"


# -- names -------------------------------------------------------------------------------------


def test_names_keep_the_case_and_make_folders_of_groups_only():
    assert secret_name(["Brokers", "IBKR"], "API key") == "Brokers/IBKR/API key"
    assert secret_name(["  Brokers ", ""], "a/b") == "Brokers/a-b"  # a slash in a title is no folder
    assert secret_name([], "tab\there\n") == "tab here"
    with pytest.raises(InvalidInput, match="no title"):
        secret_name(["Brokers"], "  ")
    long = Preview("env", "x.env", (ImportedSecret("K" * 250, "v"),))
    prefixed = with_prefix(long, "/imported/desk/")
    assert prefixed.secrets == () and "1 to 256 characters" in str(prefixed.issues[0])
    assert with_prefix(Preview("env", "x.env", (ImportedSecret("K", "v"),)), "/a/b/").secrets[0].name == "a/b/K"
    with pytest.raises(InvalidInput, match="invalid prefix"):
        with_prefix(long, "a//b")


def test_no_value_in_any_repr():
    secret = ImportedSecret("n", IBKR_KEY, fields={"account": ACCOUNT}, description=NOTE_TEXT)
    entry = Entry(["f"], "t", password=IBKR_KEY, username=ACCOUNT, notes=NOTE_TEXT, fields={"pin": HIDDEN})
    assert_no_value_in(repr(secret) + repr(entry) + repr(Preview("env", "x", (secret,))))


# -- KeePassXC / KeePass -----------------------------------------------------------------------


def test_kdbx_groups_fields_totp_expiry_recycle_bin_and_attachments(tmp_path):
    path = make_kdbx(tmp_path / "desk.kdbx")
    asked = []
    preview = read_source("kdbx", path, password=lambda: asked.append(1) or KDBX_PASSWORD)
    assert asked == [1]
    secrets = by_name(preview)
    assert sorted(secrets) == ["Brokers/IBKR/API", "Brokers/IBKR/API/totp", "Exchanges/Binance",
                               "Exchanges/Binance/totp", "Top level"]
    api = secrets["Brokers/IBKR/API"]
    assert (api.value, api.type, api.description) == (IBKR_KEY, SecretType.PASSWORD, "")
    assert api.fields["notes"] == "paper account"  # notes may hold recovery codes: a field, never listed
    assert api.fields == {"username": "alice", "url": "https://ibkr.example", "account": ACCOUNT, "region": "eu",
                          "notes": "paper account"}
    assert api.tags == {"source": "desk.kdbx", "env": "prod", "desk": ""}
    code = totp.account_from_secret(_as_secret(secrets["Brokers/IBKR/API/totp"]))
    assert (code.secret, code.issuer, code.digits, code.period) == (TOTP_SEED, "IBKR", 8, 60)
    binance = secrets["Exchanges/Binance"]
    assert binance.expires_at == EXPIRY and "TOTP Seed" not in binance.fields
    steam = totp.account_from_secret(_as_secret(secrets["Exchanges/Binance/totp"]))
    assert (steam.kind, steam.secret) == (totp.OtpKind.STEAM, STEAM_SEED)
    note = secrets["Top level"]
    assert (note.type, note.value, note.description) == (SecretType.NOTE, NOTE_TEXT, "")
    assert preview.issues == ()
    notes = [str(n) for n in preview.notes]
    assert any("'API': 1 attachment not imported" in n for n in notes)
    assert any("'Old broker': in the recycle bin" in n for n in notes)
    assert OLD_VALUE not in {s.value for s in preview.secrets}


def _as_secret(imported: ImportedSecret):
    from its_desktop.core.secrets import Secret

    return Secret(imported.name, imported.value, imported.type, dict(imported.fields))


def test_kdbx_custom_fields_are_what_get_field_reads(tmp_path, vault):
    preview = read_source("kdbx", make_kdbx(tmp_path / "desk.kdbx"), password=lambda: KDBX_PASSWORD,
                          prefix="keepass")
    apply_import(vault, preview)
    assert vault.value("keepass/Brokers/IBKR/API", "account") == ACCOUNT
    assert vault.value("keepass/Brokers/IBKR/API", "username") == "alice"


def test_kdbx_wrong_password_is_wrong_credentials(tmp_path):
    path = make_kdbx(tmp_path / "desk.kdbx")
    with pytest.raises(WrongCredentials) as caught:
        read_source("kdbx", path, password=lambda: "not it")
    assert "desk.kdbx" in str(caught.value)


def test_kdbx_foreign_truncated_and_missing_files_are_refused_before_the_password(tmp_path):
    whole = make_kdbx(tmp_path / "desk.kdbx").read_bytes()
    (tmp_path / "half.kdbx").write_bytes(whole[:len(whole) // 2])
    write(tmp_path / "bitwarden.kdbx", json.dumps(bitwarden_export()))
    (tmp_path / "empty.kdbx").write_bytes(b"")
    for name in ("bitwarden.kdbx", "empty.kdbx"):
        with pytest.raises(InvalidInput, match="not a KeePass database"):
            read_source("kdbx", tmp_path / name, password=no_password)
    with pytest.raises(InvalidInput, match="half.kdbx"):
        read_source("kdbx", tmp_path / "half.kdbx", password=lambda: KDBX_PASSWORD)
    with pytest.raises(VaultNotFound, match="no such file"):
        read_source("kdbx", tmp_path / "missing.kdbx", password=no_password)


def test_kdbx_with_a_hostile_kdf_cost_is_refused_before_any_derivation(tmp_path):
    data = make_kdbx(tmp_path / "desk.kdbx").read_bytes()
    # KDBX 4's VariantDictionary entry for "M" (UInt64): key length 1, "M", value length 8, value.
    marker = b"\x01\x00\x00\x00M\x08\x00\x00\x00"
    at = data.index(marker) + len(marker)
    hostile = data[:at] + (64 << 30).to_bytes(8, "little") + data[at + 8:]
    (tmp_path / "hostile.kdbx").write_bytes(hostile)
    with pytest.raises(InvalidInput, match="key derivation costs more"):
        read_source("kdbx", tmp_path / "hostile.kdbx", password=no_password)


def test_kdbx_bad_entries_are_reported_and_the_rest_kept(tmp_path):
    def build(database):
        database.add_entry(database.root_group, "Good", "u", IBKR_KEY)
        database.add_entry(database.root_group, "Bad otp", "u", BINANCE_SECRET, otp="otpauth://totp/x?secret=1")
        database.add_entry(database.root_group, "", "u", ACCOUNT)
        database.add_entry(database.root_group, "Empty", "", "")

    preview = read_source("kdbx", make_kdbx(tmp_path / "bad.kdbx", build), password=lambda: KDBX_PASSWORD)
    assert sorted(by_name(preview)) == ["Bad otp", "Good"]
    problems = [str(i) for i in preview.issues]
    assert problems == ["entry 2 'Bad otp': one-time code not imported: the one-time-code secret is not valid "
                        "base32 of 10 to 256 bytes",
                        "entry 3: no title to name it by",
                        "entry 4 'Empty': nothing to import (no password, notes, fields or one-time code)"]
    assert_no_value_in(" ".join(problems))


# -- Bitwarden ---------------------------------------------------------------------------------


def test_bitwarden_logins_notes_cards_identities_ssh_keys_and_folders(tmp_path):
    path = write(tmp_path / "bitwarden.json", json.dumps(bitwarden_export(), indent=2))
    preview = read_source("bitwarden", path)
    secrets = by_name(preview)
    assert sorted(secrets) == ["Alice", "Brokers/IBKR/API", "Brokers/IBKR/API/totp", "Deploy key", "Desk card",
                               "Exchanges/Binance", "Exchanges/Binance/totp", "Recovery words"]
    api = secrets["Brokers/IBKR/API"]
    assert (api.value, api.high_value, api.fields["notes"]) == (IBKR_KEY, True, "paper account")
    assert api.fields == {"username": "alice", "url": "https://ibkr.example", "url2": "https://api.ibkr.example",
                          "account": ACCOUNT, "pin": HIDDEN, "paper": "true", "notes": "paper account"}
    assert secrets["Brokers/IBKR/API/totp"].value == TOTP_SEED
    assert secrets["Exchanges/Binance/totp"].fields["issuer"] == "Binance"
    assert (secrets["Recovery words"].type, secrets["Recovery words"].value) == (SecretType.NOTE, NOTE_TEXT)
    card = secrets["Desk card"]
    assert card.value == CARD_NUMBER and card.fields["code"] == CVV and card.fields["exp_year"] == "2029"
    assert secrets["Alice"].fields == {"title": "Ms", "firstName": "Alice", "email": "alice@example.com"}
    assert secrets["Deploy key"].type is SecretType.SSH_KEY
    assert preview.issues == () and "in the trash" in str(preview.notes[0])


def test_bitwarden_organisation_export_uses_collections_as_folders(tmp_path):
    document = bitwarden_export(folders=[], collections=[{"id": "c-1", "organizationId": "o", "name": "Desk/Keys"}])
    document["items"] = [dict(document["items"][1], folderId=None, collectionIds=["c-1"])]
    preview = read_source("bitwarden", write(tmp_path / "org.json", json.dumps(document)))
    assert sorted(by_name(preview)) == ["Desk/Keys/Binance", "Desk/Keys/Binance/totp"]


@pytest.mark.parametrize("document, message", [
    ({"encrypted": True, "passwordProtected": True, "salt": "x", "kdfType": 0, "data": "2.abc|def|ghi"},
     "encrypted Bitwarden export"),
    ({"encrypted": True, "encKeyValidation_DO_NOT_EDIT": "2.x|y|z", "folders": [], "items": []},
     "encrypted Bitwarden export"),
    ({"folders": []}, "no list of items"),
    ([], "expected a JSON object"),
    ({"folders": "x", "items": []}, "folders of the export are malformed"),
])
def test_bitwarden_exports_it_cannot_read_are_refused_in_one_line(tmp_path, document, message):
    with pytest.raises(InvalidInput, match=message):
        read_source("bitwarden", write(tmp_path / "export.json", json.dumps(document)))


def test_bitwarden_truncated_json_names_the_line(tmp_path):
    text = json.dumps(bitwarden_export(), indent=2)
    with pytest.raises(InvalidInput, match=r"export.json: line \d+: not valid JSON") as caught:
        read_source("bitwarden", write(tmp_path / "export.json", text[:len(text) // 2]))
    assert_no_value_in(str(caught.value))


def test_bitwarden_bad_items_are_reported_by_number(tmp_path):
    document = bitwarden_export()
    document["items"][1]["login"] = "not an object"
    document["items"][2]["name"] = None
    document["items"][3]["type"] = 99
    document["items"][0]["login"]["totp"] = "not base32 !"
    document["items"].append("not even an object")
    preview = read_source("bitwarden", write(tmp_path / "export.json", json.dumps(document)))
    problems = [str(i) for i in preview.issues]
    assert problems == ["item 1 'API': one-time code not imported: the one-time-code secret is not valid base32 "
                        "of 10 to 256 bytes",
                        "item 2 'Binance': its 'login' part is missing or malformed",
                        "item 3: no title to name it by",
                        "item 4 'Desk card': an item type this app does not know",
                        "item 8: not an item object"]
    assert "Brokers/IBKR/API" in by_name(preview) and "Brokers/IBKR/API/totp" not in by_name(preview)


# -- 1Password ---------------------------------------------------------------------------------


def test_onepassword_8_export(tmp_path):
    preview = read_source("1password", write(tmp_path / "1password.csv", csv_text(ONEPASSWORD_8)))
    secrets = by_name(preview)
    assert sorted(secrets) == ["Binance", "IBKR API", "IBKR API/totp", "Recovery words"]
    api = secrets["IBKR API"]
    assert (api.value, api.description) == (IBKR_KEY, "")
    assert api.fields == {"username": "alice", "url": "https://ibkr.example", "notes": "paper account"}
    assert api.tags == {"source": "1password.csv", "brokers": "", "env": "prod"}
    assert secrets["Binance"].tags["archived"] == ""
    assert secrets["IBKR API/totp"].fields["issuer"] == "IBKR"
    assert (secrets["Recovery words"].type, secrets["Recovery words"].value) == (SecretType.NOTE, NOTE_TEXT)
    assert preview.issues == ()


def test_onepassword_7_layout_with_type_vault_and_custom_columns(tmp_path):
    rows = [["title", "website", "username", "password", "notes", "type", "vault", "account number"],
            ["IBKR", "https://ibkr.example", "alice", IBKR_KEY, "", "API Credential", "Desk", ACCOUNT],
            ["Main DB", "", "bot", BINANCE_SECRET, "", "Database", "Desk", ""]]
    preview = read_source("1password", write(tmp_path / "1p7.csv", csv_text(rows, delimiter=";")))
    secrets = by_name(preview)
    assert secrets["Desk/IBKR"].type is SecretType.API_KEY
    assert secrets["Desk/IBKR"].fields["account number"] == ACCOUNT
    assert secrets["Desk/Main DB"].type is SecretType.DATABASE


def test_onepassword_bad_rows_are_reported_line_by_line(tmp_path):
    text = csv_text(ONEPASSWORD_8[:2]) + f'Short row,{IBKR_KEY}\r\n' + csv_text(ONEPASSWORD_8[2:]) \
        + f'Broken,"https://x,alice,{BINANCE_SECRET},,false,false,,\r\n'
    preview = read_source("1password", write(tmp_path / "1password.csv", text))
    assert [str(i) for i in preview.issues] == ["line 3: 2 cells where the header has 9",
                                                "line 6: malformed CSV (unexpected end of data)"]
    assert sorted(by_name(preview)) == ["Binance", "IBKR API", "IBKR API/totp", "Recovery words"]
    assert_no_value_in(" ".join(map(str, preview.issues)))


def test_onepassword_without_its_header_is_refused(tmp_path):
    with pytest.raises(InvalidInput, match="no Title column"):
        read_source("1password", write(tmp_path / "x.csv", csv_text(ONEPASSWORD_8[1:])))
    with pytest.raises(InvalidInput, match="no Password, OTPAuth or Notes"):
        read_source("1password", write(tmp_path / "y.csv", "Title,Url\r\nx,y\r\n"))


# -- CSV with a mapping ------------------------------------------------------------------------


SHEET = [["Group", "Title", "Password", "Acct", "Env", "Kind", "Expiry", "Comment"],
         ["Brokers", "IBKR/api_key", IBKR_KEY, ACCOUNT, "prod", "api_key", "2027-06-30", "desk key"],
         ["Exchanges", "binance", BINANCE_SECRET, "", "", "", "", ""]]
SHEET_MAP = "name=Title,value=Password,folder=Group,type=Kind,expires=Expiry,description=Comment," \
            "field:account=Acct,tag:env=Env"


def test_csv_with_a_column_mapping(tmp_path):
    preview = read_source("csv", write(tmp_path / "sheet.csv", csv_text(SHEET)), mapping=parse_mapping(SHEET_MAP))
    secrets = by_name(preview)
    assert sorted(secrets) == ["Brokers/IBKR/api_key", "Exchanges/binance"]
    key = secrets["Brokers/IBKR/api_key"]
    assert (key.value, key.type, key.description) == (IBKR_KEY, SecretType.API_KEY, "desk key")
    assert key.fields == {"account": ACCOUNT} and key.tags == {"source": "sheet.csv", "env": "prod"}
    assert key.expires_at == datetime(2027, 6, 30, tzinfo=timezone.utc)
    assert secrets["Exchanges/binance"].type is SecretType.GENERIC  # guessed from the name


def test_csv_header_guess_without_a_mapping(tmp_path):
    rows = [["name", "value", "folder", "username", "tags", "Notes", "Description"],
            ["api_key", IBKR_KEY, "brokers/ibkr", "alice", "env=prod", "recovery: 1234", "paper desk"]]
    secret = read_source("csv", write(tmp_path / "keys.csv", csv_text(rows))).secrets[0]
    assert (secret.name, secret.value, secret.type) == ("brokers/ibkr/api_key", IBKR_KEY, SecretType.API_KEY)
    assert secret.fields == {"username": "alice", "notes": "recovery: 1234"} and secret.tags["env"] == "prod"
    assert secret.description == "paper desk"  # notes never land in the listed, searched description
    with pytest.raises(InvalidInput, match="give --map name=COLUMN,value=COLUMN"):
        read_source("csv", write(tmp_path / "odd.csv", "Acct,Secret Thing\r\nx,y\r\n"))


def test_csv_bad_rows_and_bad_maps(tmp_path):
    rows = [SHEET[0], ["Brokers", "no value", "", "", "", "", "", ""],
            ["Brokers", "bad type", IBKR_KEY, "", "", "wallet", "", ""],
            ["Brokers", "bad date", BINANCE_SECRET, "", "", "", "30/06/2027", ""], SHEET[2]]
    preview = read_source("csv", write(tmp_path / "sheet.csv", csv_text(rows)), mapping=parse_mapping(SHEET_MAP))
    assert [str(i) for i in preview.issues] == [
        "line 2 'no value': missing value",
        "line 3 'bad type': unknown type (use api_key, password, database, certificate, ssh_key, totp, note, generic)",
        "line 4 'bad date': the expiry is not a date (YYYY-MM-DD)"]
    assert [s.name for s in preview.secrets] == ["Exchanges/binance"]
    with pytest.raises(InvalidInput, match="column 'Nope'"):
        read_source("csv", write(tmp_path / "s.csv", csv_text(SHEET)), mapping=parse_mapping("name=Title,value=Nope"))
    for spec, message in (("name=Title", "holds the value"), ("name=Title,value=P,colour=C", "unknown target"),
                          ("name=A,name=B,value=C", "mapped twice"), ("name", "TARGET=COLUMN")):
        with pytest.raises(InvalidInput, match=message):
            parse_mapping(spec)


# -- .env --------------------------------------------------------------------------------------


def test_env_valid_part_and_every_bad_line(tmp_path):
    text = f"API_KEY={IBKR_KEY}\nthis is not a pair\nDB_PASSWORD='{BINANCE_SECRET}'\nPEM=\"unterminated\nTAIL=ok\n"
    preview = read_source("env", write(tmp_path / "bot.env", text), prefix="bots/alpha")
    assert [str(i) for i in preview.issues] == ["line 2: expected KEY=VALUE", "line 4: PEM: unterminated double quote"]
    secrets = by_name(preview)
    assert sorted(secrets) == ["bots/alpha/API_KEY", "bots/alpha/DB_PASSWORD", "bots/alpha/TAIL"]
    assert secrets["bots/alpha/DB_PASSWORD"].type is SecretType.PASSWORD
    assert secrets["bots/alpha/API_KEY"].tags == {"source": "bot.env"}


def test_text_sources_refuse_binary_and_huge_files(tmp_path, monkeypatch):
    (tmp_path / "latin1.env").write_bytes("KEY=caf\xe9\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match="not a UTF-8 text file"):
        read_source("env", tmp_path / "latin1.env")
    from its_desktop.importers import base

    monkeypatch.setattr(base, "MAX_SOURCE_BYTES", 10)
    with pytest.raises(InvalidInput, match="larger than"):
        read_source("csv", write(tmp_path / "big.csv", csv_text(SHEET)))


# -- applying ----------------------------------------------------------------------------------


def _preview(*secrets: ImportedSecret, issues=()) -> Preview:
    return Preview("csv", "sheet.csv", secrets, issues)


def test_problems_import_nothing_unless_the_valid_part_is_accepted(vault):
    from its_desktop.importers.base import ImportIssue

    preview = _preview(ImportedSecret("a", IBKR_KEY), issues=(ImportIssue(7, "missing value"),))
    generation = vault.generation
    with pytest.raises(ImportRefused, match="1 problem found, nothing imported .*--accept-partial imports the 1 valid"):
        apply_import(vault, preview)
    assert vault.names() == [] and vault.generation == generation
    with pytest.raises(ImportRefused, match="nothing in it could be imported"):
        apply_import(vault, _preview(issues=(ImportIssue(1, "bad"),)), accept_partial=True)
    plan = apply_import(vault, preview, accept_partial=True)
    assert vault.names() == ["a"] and plan.summary() == "1 created, 0 merged, 0 unchanged, 0 skipped; 1 problem left out"


def test_duplicates_are_skipped_or_merged_never_replaced(vault):
    vault.set("a", OLD_VALUE, fields={"account": "old", "keep": "k"}, tags={"desk": "fx"}, description="mine")
    incoming = ImportedSecret("a", IBKR_KEY, SecretType.PASSWORD, {"account": ACCOUNT}, {"env": "prod"},
                              description="theirs", expires_at=EXPIRY)
    plan = apply_import(vault, _preview(incoming, ImportedSecret("b", "bee"), ImportedSecret("b", "bee two")))
    assert [(i.name, i.action, i.why) for i in plan.items] == [
        ("a", Action.SKIP, "already in the vault"), ("b", Action.CREATE, ""), ("b", Action.SKIP, "twice in the file")]
    assert vault.peek("a").value == OLD_VALUE and vault.peek("b").value == "bee"

    plan = apply_import(vault, _preview(incoming, ImportedSecret("b", "bee")), Duplicates.MERGE)
    assert [i.action for i in plan.items] == [Action.MERGE, Action.UNCHANGED]
    merged = vault.peek("a")
    assert (merged.value, merged.version, merged.type) == (IBKR_KEY, 2, SecretType.GENERIC)
    assert merged.fields == {"account": ACCOUNT, "keep": "k"} and merged.tags == {"desk": "fx", "env": "prod"}
    assert (merged.description, merged.expires_at) == ("mine", EXPIRY)
    assert [(v.version, v.value, v.fields.get("account")) for v in merged.history] == [(1, OLD_VALUE, "old")]
    vault.restore("a", 1)
    assert vault.peek("a").value == OLD_VALUE


def test_a_name_twice_in_the_file_merges_into_two_versions(vault):
    plan = apply_import(vault, _preview(ImportedSecret("x", "one"), ImportedSecret("x", "two")), Duplicates.MERGE)
    assert [i.action for i in plan.items] == [Action.CREATE, Action.MERGE]
    assert [v.value for v in vault.peek("x").versions()] == ["one", "two"]


def test_one_save_audited_per_secret_and_no_value_in_the_audit(vault, tmp_path):
    path = make_kdbx(tmp_path / "desk.kdbx")
    preview = read_source("kdbx", path, password=lambda: KDBX_PASSWORD)
    vault.set("Top level", "x")  # deleted: its tombstone must not outlive the import
    vault.delete("Top level")
    generation = vault.generation
    plan = apply_import(vault, preview)
    assert vault.generation == generation + 1
    assert "Top level" not in vault.settings().get("tombstones", {})
    records = [r.event for r in vault.audit_records() if r.event.op == "import"]
    assert sorted(e.name for e in records if e.name) == sorted(i.name for i in plan.items)
    assert records[-1].name is None and records[-1].detail == f"kdbx:desk.kdbx: {plan.summary()}"
    assert_no_value_in(json.dumps([r.to_json() for r in vault.audit_records()]))


def test_the_preview_plan_matches_what_the_import_does(vault):
    vault.set("a", "x")
    preview = _preview(ImportedSecret("a", "y"), ImportedSecret("c", "z"))
    planned = preview_plan(vault, preview, Duplicates.MERGE)
    assert vault.peek("a").value == "x", "a preview changes nothing"
    assert apply_import(vault, preview, Duplicates.MERGE).items == planned.items


def test_plan_is_pure():
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    plan, written = plan_import([ImportedSecret("n", "v", SecretType.NOTE)], lambda name: None, Duplicates.SKIP, now)
    assert [i.action for i in plan.items] == [Action.CREATE]
    assert (written[0].name, written[0].created, written[0].type) == ("n", now, SecretType.NOTE)
