"""User preferences, as a small JSON file in the data dir (so a --data-dir library keeps its own)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from imgsim_desktop.core.keeper import RULES, KeeperRules

SETTINGS_NAME = "settings.json"


@dataclass
class Settings:
    model: str = "efficientnet-lite0"
    device: str = "auto"  # auto | cpu | gpu
    threads: int = 0  # 0: all cores
    thumb_size: int = 160  # tile edge in logical pixels
    k: int = 50  # neighbours shown by "Find similar"
    dup_sensitivity: float = 0.5  # see core.duplicates.thresholds
    keep_rule: str = "format"  # the first keeper rule after preferred folders (as the CLI's default)
    preferred_folders: list = field(default_factory=list)  # copies here are kept first
    protected_folders: list = field(default_factory=list)  # never selected, never touched

    def keeper_rules(self) -> KeeperRules:
        order = ["folder", self.keep_rule] if self.keep_rule in RULES else ["folder"]
        order += [r for r in ("format", "resolution", "size", "oldest") if r not in order]
        return KeeperRules(order=order, preferred_folders=list(self.preferred_folders), protected_folders=list(self.protected_folders))

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
