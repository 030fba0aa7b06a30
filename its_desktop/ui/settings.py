"""The app's per-machine settings (not secret, so not in the vault): a small JSON file in the
user's config folder."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass
class AppSettings:
    auto_lock_minutes: int = 5  # 0: never on idle
    lock_on_screen_lock: bool = True
    lock_on_sleep: bool = True
    clipboard_seconds: int = 10
    quick_unlock_hours: float = 8.0  # 0: always the full unlock
    theme: str = "system"  # system | light | dark
    rotate_due_automatically: bool = True  # the scheduler runs due automatic rotators while unlocked

    @staticmethod
    def path() -> Path:
        env = os.environ.get("ITS_SETTINGS_PATH")
        if env:
            return Path(env)
        from platformdirs import user_config_dir

        return Path(user_config_dir("its-desktop", appauthor=False)) / "settings.json"

    @classmethod
    def load(cls, path: Path | None = None) -> AppSettings:
        try:
            raw = json.loads((path or cls.path()).read_text())
        except (OSError, ValueError):
            return cls()
        known = {f.name: f.type for f in fields(cls)}
        values = {}
        for name, value in raw.items() if isinstance(raw, dict) else ():
            default = getattr(cls(), name, None)
            if name in known and isinstance(value, type(default)):
                values[name] = value
        return cls(**values)

    def save(self, path: Path | None = None) -> None:
        path = path or self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, path)
