"""ITS Desktop: an encrypted vault for traders' API keys, passwords and TOTP seeds.

The public Python API (``Vault``, ``get_its_secret``...) is imported lazily so that
``import its_desktop`` stays cheap for the command line.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "Vault": "its_desktop.core.vault.api",
    "get_its_secret": "its_desktop.integration",
    "get_database_config": "its_desktop.integration",
    "get_alert_config": "its_desktop.integration",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(module), name)
