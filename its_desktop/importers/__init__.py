"""Importers: other password managers' exports and secret files, read into a ``Preview`` that
the user sees before anything is saved (``importers.apply`` saves). Used by the CLI
(``its-vault import``) and the GUI (File → Import…). docs/import.md is the user's guide.

The sources are an explicit tuple (STYLE 7): each has a CLI word, a label for the GUI, a file
filter, and what it needs (a password, a column mapping). Parser modules load on use, so the
CLI's other commands never load pykeepass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .base import Preview
    from .csvmap import ColumnMap

PASSWORD_ENV = "ITS_IMPORT_PASSWORD"  # the KDBX password, for scripts (else a prompt)


@dataclass(frozen=True)
class Source:
    kind: str  # the CLI word: its-vault import KIND FILE
    module: str  # importers.MODULE.parse(data, file name[, password][, mapping]) -> Preview
    label: str
    file_filter: str  # for the GUI's file chooser
    needs_password: bool = False
    takes_mapping: bool = False


SOURCES: tuple[Source, ...] = (
    Source("env", "env", ".env file (KEY=VALUE)", "Environment files (*.env .env*);;All files (*)"),
    Source("kdbx", "kdbx", "KeePassXC / KeePass database (KDBX)", "KeePass databases (*.kdbx);;All files (*)",
           needs_password=True),
    Source("bitwarden", "bitwarden", "Bitwarden export (unencrypted JSON)", "JSON files (*.json);;All files (*)"),
    Source("1password", "onepassword", "1Password export (CSV)", "CSV files (*.csv);;All files (*)"),
    Source("csv", "csvmap", "CSV file with a column mapping", "CSV files (*.csv *.tsv *.txt);;All files (*)",
           takes_mapping=True),
)
KINDS: tuple[str, ...] = tuple(s.kind for s in SOURCES)


def source(kind: str) -> Source:
    for candidate in SOURCES:
        if candidate.kind == kind:
            return candidate
    from ..core.errors import InvalidInput

    raise InvalidInput(f"unknown import source '{kind}' (choose from {', '.join(KINDS)})")


def read_source(kind: str, path: Path, *, prefix: str | None = None, password: Callable[[], str] | None = None,
                mapping: ColumnMap | None = None) -> Preview:
    """Parse ``path`` as ``kind`` (nothing is saved): names under ``prefix``, every secret
    tagged ``source=FILE``. ``password`` is called only for a source that needs one, once the
    file is known to be of that kind."""
    from importlib import import_module

    from .base import normalise_prefix, read_bytes, tag_source, with_prefix

    chosen = source(kind)
    normalise_prefix(prefix)  # a bad prefix is refused before the file is read or a password asked
    parser = import_module(f"{__name__}.{chosen.module}")
    options: dict[str, object] = {}
    if chosen.needs_password:
        options["password"] = password or _no_password
    if chosen.takes_mapping:
        options["mapping"] = mapping
    preview = parser.parse(read_bytes(path), path.name, **options)
    return with_prefix(tag_source(preview), prefix)


def _no_password() -> str:
    from ..core.errors import InvalidInput

    raise InvalidInput(f"a password is needed for this file (set {PASSWORD_ENV})")
