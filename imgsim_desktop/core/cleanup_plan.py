"""What a cleanup will remove, decided once for the CLI and the app, and checked again right before
each file goes.

A scan and its cleanup are minutes apart (in the app, the user's thinking time). In between a copy
can be overwritten with another photo, a keeper deleted, a file replaced after indexing. So every
removal carries what the scan saw of the file and of the group members that stay, and
``reason_to_skip`` compares that with the disk just before the move: a changed or vanished file,
or a copy whose keepers are all gone or changed, is skipped and reported, never moved.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from imgsim_desktop.core import best_shot, keeper
from imgsim_desktop.core.companions import partners
from imgsim_desktop.core.fingerprint import fingerprint
from imgsim_desktop.core.safe_move import sha256_of
from imgsim_desktop.storage.catalog import PhotoRow

COPY_TIERS = ("exact", "duplicate")  # tiers whose members are one picture: a removal needs a keeper left


@dataclass(frozen=True)
class Seen:
    """A file as the scan saw it."""

    path: str
    size: int
    mtime_ns: int
    fingerprint: str | None = None  # the catalog's sampled content hash, where it has one

    @classmethod
    def of(cls, row: PhotoRow, fingerprints: dict[str, str] | None = None) -> Seen:
        return cls(row.path, row.size, row.mtime_ns, (fingerprints or {}).get(row.path))


@dataclass(frozen=True)
class Removal:
    seen: Seen
    tier: str  # 'exact' | 'duplicate' | 'similar' | 'chosen' (picked by path, no group)
    keepers: tuple[Seen, ...] = ()  # the group's members that stay

    @property
    def path(self) -> str:
        return self.seen.path


def suggested(groups: Iterable, rows: dict[str, PhotoRow], rules: keeper.KeeperRules, tiers: Iterable[str]) -> set[str]:
    """The members the keeper rules (for similar shots: the best shot) offer for removal, in the groups of ``tiers``."""
    tiers = set(tiers)
    chosen: set[str] = set()
    for group in groups:
        members = [rows[m.path] for m in group.members if m.path in rows]
        if group.tier in tiers and len(members) > 1:
            _kept, remove, _why = keeper_of(group, members, rules)
            chosen |= {r.path for r in remove}
    return chosen


def keeper_of(group, members: list[PhotoRow], rules: keeper.KeeperRules) -> tuple[PhotoRow, list[PhotoRow], str | None]:
    """(the member the group keeps, the members offered for removal, why when it is a burst's best
    shot). Copies follow the keeper rules (and the RAW+JPEG pair rule); similar shots (different
    photos of one moment) keep their best frame, by the rules only when the frames were never
    measured. A protected member is kept whatever the rest says."""
    if group.tier == "similar" and not any(keeper.inside(m.path, rules.protected_folders) for m in members):
        pick = best_shot.best_shot(members)
        if pick is not None:
            return pick.row, [m for m in members if m is not pick.row], pick.reason
    kept, remove = keeper.choose(members, rules, partners(group.members))
    return kept, remove, None


def plan(groups: Iterable, rows: dict[str, PhotoRow], chosen: set[str], fingerprints: dict[str, str] | None = None) -> list[Removal]:
    """One Removal per chosen member, in group order; the group's other members are its keepers."""
    removals = []
    for group in groups:
        members = [rows[m.path] for m in group.members if m.path in rows]
        stay = tuple(Seen.of(r, fingerprints) for r in members if r.path not in chosen)
        removals += [Removal(Seen.of(r, fingerprints), group.tier, stay) for r in members if r.path in chosen]
    return removals


def chosen_paths(rows: Iterable[PhotoRow], fingerprints: dict[str, str] | None = None) -> list[Removal]:
    """Removals of photos picked one by one (no group, no keeper): each is checked only against itself."""
    return [Removal(Seen.of(r, fingerprints), "chosen") for r in rows]


def reason_to_skip(removal: Removal) -> str | None:
    """Why ``removal`` must not happen now, or None when the disk still shows what the scan saw."""
    problem = _changed(removal.seen, "it")
    if problem:
        return problem
    if removal.tier not in COPY_TIERS:
        return None
    if not removal.keepers:
        return "every photo of its group was chosen; one copy is always kept"
    intact = [k for k in removal.keepers if _changed(k, "") is None and not _same_inode(k.path, removal.path)]
    if not intact:
        names = ", ".join(os.path.basename(k.path) for k in removal.keepers[:3])
        return f"the copies it would leave ({names}) are gone or changed since the scan, so it is the last one"
    if removal.tier == "exact":
        try:
            mine = sha256_of(removal.path)
            if not any(sha256_of(k.path) == mine for k in intact):
                return "it is no longer identical to the copy that stays"
        except OSError as exc:
            return f"cannot be read to confirm it is still identical ({exc.strerror or exc})"
    return None


def _same_inode(a: str, b: str) -> bool:
    """One file under two names (a folder added twice, through a link and by its real path; a
    hard link): no keeper of itself."""
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _changed(seen: Seen, what: str) -> str | None:
    subject = f"{what} " if what else ""
    try:
        st = os.lstat(seen.path)
    except FileNotFoundError:
        return f"{subject}is gone since the scan"
    except OSError as exc:
        return f"{subject}cannot be read ({exc.strerror or exc})"
    if not stat.S_ISREG(st.st_mode):
        return f"{subject}is no longer a plain file"
    if st.st_size != seen.size or st.st_mtime_ns != seen.mtime_ns:
        return f"{subject}changed since the scan (size or date differs); scan again"
    if seen.fingerprint:
        try:
            if fingerprint(seen.path, st.st_size) != seen.fingerprint:
                return f"{subject}has other content than when it was indexed; scan again"
        except OSError as exc:
            return f"{subject}cannot be read ({exc.strerror or exc})"
    return None
