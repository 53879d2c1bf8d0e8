"""User preferences, as a small JSON file in the data dir (so a --data-dir library keeps its own)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from imgsim_desktop.core.companions import PAIR_RULES
from imgsim_desktop.core.keeper import BEST, DEFAULT_ORDER, RULES, KeeperRules
from imgsim_desktop.paths import Layout

SETTINGS_NAME = Layout.SETTINGS


@dataclass
class Settings:
    model: str = "efficientnet-lite0"
    device: str = "auto"  # auto | cpu | gpu
    threads: int = 0  # 0: all cores
    thumb_size: int = 160  # tile edge in logical pixels
    k: int = 50  # neighbours shown by "Find similar"
    dup_sensitivity: float = 0.5  # see core.duplicates.thresholds
    keep_rule: str = BEST  # the first keeper rule after preferred folders; "best": the measured default order
    pair_rule: str = "both"  # a RAW+JPEG pair: keep both, the RAW only, the JPEG only (core.companions.PAIR_RULES)
    keep_metadata: bool = False  # cleanup writes what removed copies carry and their keeper lacks into its XMP sidecar
    preferred_folders: list = field(default_factory=list)  # copies here are kept first
    protected_folders: list = field(default_factory=list)  # never selected, never touched
    sort: int = 0  # the grid's order: newest first, oldest first, name, folder
    window: list = field(default_factory=list)  # [width, height] at the last close; empty: the default
    splitters: dict = field(default_factory=dict)  # {"main": [sidebar, pages], "duplicates": [groups, compare]}: pixels as the user left them
    notices: list = field(default_factory=list, repr=False, compare=False)  # what load() had to ignore; not saved

    def keeper_rules(self) -> KeeperRules:
        order = ["folder", self.keep_rule] if self.keep_rule in RULES else ["folder"]
        order += [r for r in DEFAULT_ORDER if r not in order]
        return KeeperRules(order=order, preferred_folders=list(self.preferred_folders), protected_folders=list(self.protected_folders),
                           pair_rule=self.pair_rule)  # fmt: skip

    @classmethod
    def load(cls, data_dir: Path) -> Settings:
        """The saved settings; anything unreadable or out of range falls back to its default, and
        ``notices`` says what was ignored (the app shows it once)."""
        settings = cls()
        path = data_dir / SETTINGS_NAME
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return settings
        except (json.JSONDecodeError, OSError, UnicodeDecodeError) as exc:
            settings.notices.append(f"{path} could not be read ({exc}); using the default settings{_kept(path)}")
            return settings
        if not isinstance(raw, dict):
            settings.notices.append(f"{path} does not hold settings (a JSON object); using the default settings{_kept(path)}")
            return settings
        for key, value in raw.items():
            check = _CHECKS.get(key)
            if check is None:
                continue  # from a newer or older version: ignored
            if check(value):
                setattr(settings, key, list(value) if isinstance(value, list) else value)
            else:
                settings.notices.append(f"setting {key} = {json.dumps(value)} is not valid; using {json.dumps(getattr(settings, key))}")
        return settings

    def save(self, data_dir: Path) -> None:
        target = data_dir / SETTINGS_NAME
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: v for k, v in asdict(self).items() if k != "notices"}, indent=2))
        os.replace(tmp, target)


def _kept(path: Path) -> str:
    """Copy a settings file the app cannot use beside it before the next save replaces it (a hand
    edit with one typo was lost that way); says where, or nothing if it could not be copied."""
    keep = path.with_name(path.name + ".unusable")
    try:
        shutil.copyfile(path, keep)
    except OSError:
        return ""
    return f" (the file is kept as {keep})"


def _whole(low: int, high: int):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _sizes(v) -> bool:
    """A splitter's pane sizes: 2 to 4 whole pixels, one of them shown."""
    return isinstance(v, list) and 2 <= len(v) <= 4 and all(_whole(0, 16384)(n) for n in v) and any(v)


# What a saved value may be: the ranges the settings dialog and the zoom slider offer.
_CHECKS = {
    "model": lambda v: isinstance(v, str) and bool(v),
    "device": lambda v: v in ("auto", "cpu", "gpu"),
    "threads": _whole(0, 256),
    "thumb_size": _whole(80, 320),
    "k": _whole(1, 500),
    "dup_sensitivity": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0,
    "keep_rule": lambda v: v in RULES or v == BEST,
    "pair_rule": lambda v: v in PAIR_RULES,
    "keep_metadata": lambda v: isinstance(v, bool),
    "sort": _whole(0, 3),
    "window": lambda v: v == [] or (isinstance(v, list) and len(v) == 2 and all(isinstance(n, int) and 400 <= n <= 16384 for n in v)),
    "splitters": lambda v: isinstance(v, dict) and all(isinstance(k, str) and _sizes(s) for k, s in v.items()),
    "preferred_folders": lambda v: isinstance(v, list) and all(isinstance(p, str) for p in v),
    "protected_folders": lambda v: isinstance(v, list) and all(isinstance(p, str) for p in v),
}
