"""Fuzzing the importers (``its_desktop.importers``: .env, KDBX, Bitwarden JSON, 1Password CSV,
CSV with a column mapping): each source's ``parse`` returns a ``Preview`` or raises one of the
vault's typed errors, whatever the file holds. Same settings and counting as test_fuzz.py.
"""

from __future__ import annotations

import csv
import io
import json
from importlib import import_module

from hypothesis import given
from hypothesis import strategies as st

from its_desktop import importers
from its_desktop.core.errors import InvalidInput, VaultError
from its_desktop.importers.base import Preview

from .test_fuzz import _MUTATION, _mutate, _paths, _replaced, any_text, env_text, fuzz, json_values, ran

KDBX_MAGIC = bytes.fromhex("03d9a29a67fb4bb5")


def _parse(kind: str, data: bytes, mapping=None) -> None:
    chosen = importers.source(kind)
    parser = import_module(f"its_desktop.importers.{chosen.module}")
    options: dict[str, object] = {}
    if chosen.needs_password:
        options["password"] = lambda: "not the password"
    if chosen.takes_mapping:
        options["mapping"] = mapping
    try:
        preview = parser.parse(data, "export", **options)
    except VaultError as error:
        assert "\n" not in str(error)
        return
    assert isinstance(preview, Preview) and preview.kind == kind
    for secret in preview.secrets:
        assert isinstance(secret.name, str) and isinstance(secret.value, str)


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


@fuzz()
@given(st.sampled_from(importers.KINDS), st.binary(max_size=300))
def test_every_importer_on_arbitrary_bytes(kind, data):
    ran("importers")
    _parse(kind, data)


@fuzz()
@given(env_text)
def test_env_importer(text):
    ran("importers")
    _parse("env", text.encode("utf-8", "surrogatepass"))


_BITWARDEN = {"encrypted": False, "folders": [{"id": "f1", "name": "Brokers"}],
              "items": [{"id": "i1", "folderId": "f1", "type": 1, "name": "IBKR", "notes": None,
                         "fields": [{"name": "account", "value": "U1", "type": 0}],
                         "login": {"username": "bob", "password": "pw", "totp": None, "uris": []}},
                        {"id": "i2", "type": 2, "name": "note", "notes": "text", "secureNote": {"type": 0}}]}
_BITWARDEN_PATHS = list(_paths(_BITWARDEN))


@fuzz()
@given(st.sampled_from(_BITWARDEN_PATHS), st.one_of(any_text, json_values), st.booleans())
def test_bitwarden_importer(path, value, delete):
    ran("importers")
    doc = _replaced(_BITWARDEN, path, value, delete)
    _parse("bitwarden", json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass"))


_ONEPASSWORD_HEADER = ["Title", "Url", "Username", "Password", "OTPAuth", "Notes", "Tags", "Type", "Vault", "Archived"]
cells = st.one_of(any_text, st.sampled_from(["", "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP", "otpauth://", "true",
                                             "Login", "API Credential", "a/b", "2027-06-30", "x=y"]))


@fuzz()
@given(st.lists(st.sampled_from(_ONEPASSWORD_HEADER) | any_text, max_size=10),
       st.lists(st.lists(cells, max_size=11), max_size=5), st.booleans())
def test_csv_importers(header, rows, use_real_header):
    ran("importers")
    data = _csv([_ONEPASSWORD_HEADER if use_real_header else header, *rows])
    _parse("1password", data)
    _parse("csv", data)


@fuzz(0.5)
@given(any_text | st.lists(st.sampled_from(["name=Title", "value=Password", "field:a=Url", "tag:env=Vault", "folder=Type",
                                            "expires=Notes", "x=y", "=", ",", "field:=A", "tag:", "name=Title"]),
                           max_size=6).map(",".join),
       st.lists(st.lists(cells, max_size=8), max_size=4))
def test_csv_importer_with_a_mapping(spec, rows):
    ran("importers")
    from its_desktop.importers.csvmap import parse_mapping

    try:
        mapping = parse_mapping(spec)
    except InvalidInput:
        return
    _parse("csv", _csv([_ONEPASSWORD_HEADER, *rows]), mapping)


@fuzz(0.3)
@given(st.one_of(st.binary(max_size=200).map(lambda b: KDBX_MAGIC + b),
                 st.tuples(st.binary(min_size=4, max_size=4), st.integers(0, 0xFFFF), st.binary(max_size=200))
                 .map(lambda t: KDBX_MAGIC + t[0] + t[1].to_bytes(2, "little") + b"\x04\x00" + t[2]),
                 st.lists(_MUTATION, min_size=1, max_size=3).map(
                     lambda m: bytes(_mutate(KDBX_MAGIC + bytes.fromhex("01000400") + b"\x00" * 64, m)))))
def test_kdbx_importer(data):
    ran("importers")
    _parse("kdbx", data)
