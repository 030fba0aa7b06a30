"""What a listing shows: shared by ``its-vault list`` and the agent's ``list`` with metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.vault.api import Vault


def listing_rows(vault: Vault, names: list[str] | None = None) -> list[dict]:
    """What ``its-vault list --json`` prints: each secret's metadata (never a value), its
    rotation status and when it was last read."""
    accessed = vault.last_access()
    now = vault.clock()
    wanted = None if names is None else set(names)
    rows = []
    for summary in vault.summaries():
        if wanted is not None and summary.name not in wanted:
            continue
        meta = summary.metadata()
        when = accessed.get(summary.name)
        meta["last_accessed"] = when.isoformat(timespec="seconds") if when else None
        meta["status"] = summary.status(now).value
        rows.append(meta)
    return rows
