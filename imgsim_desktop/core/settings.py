"""User preferences, as a small JSON file in the data dir (so a --data-dir library keeps its own)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

SETTINGS_NAME = "settings.json"


@dataclass
class Settings:
    model: str = "efficientnet-lite0"
    device: str = "auto"  # auto | cpu | gpu
    threads: int = 0  # 0: all cores
    thumb_size: int = 160  # tile edge in logical pixels
    k: int = 50  # neighbours shown by "Find similar"

    @classmethod
    def load(cls, data_dir: Path) -> Settings:
        try:
            raw = json.loads((data_dir / SETTINGS_NAME).read_text())
        except (FileNotFoundError, json.JSONDecodeError, OSError):
            return cls()
        known = {f.name: f.type for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        settings = cls()
        for key, value in values.items():
            if isinstance(value, type(getattr(settings, key))):
                setattr(settings, key, value)
        return settings

    def save(self, data_dir: Path) -> None:
        target = data_dir / SETTINGS_NAME
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, target)
