"""Moves, renames and copies keep their embeddings: new paths are matched to catalogued content.

A file at a new path is compared only with catalogued files of the same byte size (an indexed
lookup), so the common case costs no reads at all. Where sizes collide, the file is fingerprinted
(core/fingerprint.py) and matched:

- to a row whose file is gone: a move or rename. The row takes the new path and keeps its id and
  vector ids, so a built Annoy index stays valid and nothing is decoded again.
- to a row whose file still exists: a copy. The new row gets copies of that row's embeddings.

- to a parked row (catalog v10): a photo a cleanup moved or trashed out of the library, come back
  (Undo). It gets its own row and embeddings again, so nothing is decoded again.

Rows written before fingerprints existed (catalog v4) match a move by size + mtime, which a
rename or a move on the same disk preserves; they are never used as the source of a copy.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from imgsim_desktop.core.fingerprint import fingerprint_or_none
from imgsim_desktop.core.scanner import FileStat
from imgsim_desktop.storage.catalog import Catalog, ContentRecord, Relink


@dataclass
class RelinkOutcome:
    moved: int
    copied: int
    todo: list[FileStat]  # what still needs decoding and embedding
    gone: list[str]  # catalogued paths that really disappeared (not moved)


def find_relinks(catalog: Catalog, candidates: list[FileStat], gone: list[str], hints: dict[str, str] | None = None) -> list[tuple[Relink, str]]:
    """Which ``candidates`` (files to be indexed) hold content already in the catalog, as
    (relink, source path) pairs.

    ``gone`` lists catalogued paths that no longer exist; ``hints`` maps a destination to the
    source a move event named, which wins when several gone files have the same content.
    """
    hints = hints or {}
    gone_set = set(gone)
    by_size: dict[int, list[ContentRecord]] = defaultdict(list)
    for row in catalog.files_with_sizes(f.size for f in candidates):
        by_size[row.size].append(row)
    parked: dict[int, list[ContentRecord]] = defaultdict(list)
    for row in catalog.parked_with_sizes(f.size for f in candidates):
        parked[row.size].append(row)
    used: set[int] = set()
    used_parked: set[int] = set()
    out: list[tuple[Relink, str]] = []
    for f in candidates:
        options = [r for r in by_size.get(f.size, ()) if r.path != f.path and r.id not in used]
        returning = [r for r in parked.get(f.size, ()) if r.id not in used_parked]
        if not options and not returning:
            continue
        fp = fingerprint_or_none(f.path, f.size)
        if fp is None:
            continue
        moves = [r for r in options if r.path in gone_set and (r.fingerprint == fp if r.fingerprint else r.mtime_ns == f.mtime_ns)]
        if moves:
            source = min(moves, key=lambda r: r.path != hints.get(f.path))
            used.add(source.id)
            out.append((Relink(source.id, f.path, f.size, f.mtime_ns, fp), source.path))
            continue
        back = [r for r in returning if r.fingerprint == fp]
        if back:  # its own parked row; the one parked from this very path first
            source = min(back, key=lambda r: (r.path != f.path, -r.id))
            used_parked.add(source.id)
            out.append((Relink(source.id, f.path, f.size, f.mtime_ns, fp, parked=True), source.path))
            continue
        copies = [r for r in options if r.path not in gone_set and r.fingerprint == fp and r.error is None]
        if copies:
            out.append((Relink(copies[0].id, f.path, f.size, f.mtime_ns, fp, copy=True), copies[0].path))
    return out


def relink_known_content(catalog: Catalog, model: str, todo: list[FileStat], gone: list[str], hints: dict[str, str] | None = None) -> RelinkOutcome:
    """Apply find_relinks and say what is left to embed and to remove.

    A relinked file whose source had no embedding for ``model`` (indexed with another backbone)
    stays in ``todo``: it keeps its path update but still needs this model's vector.
    """
    matches = find_relinks(catalog, todo, gone, hints) if todo else []
    if not matches:
        return RelinkOutcome(0, 0, todo, gone)
    applied = catalog.relink([r for r, _ in matches])
    done = [(r, source) for r, source in matches if r.dest in applied]
    states = catalog.file_states(model, [r.dest for r, _ in done])
    settled = {path for path, (row, has_vector) in states.items() if has_vector or row.error is not None}
    moved_away = {source for r, source in done if not r.copy and not r.parked}
    return RelinkOutcome(
        moved=sum(not r.copy for r, _ in done),  # a parked photo come back counts as moved (back)
        copied=sum(r.copy for r, _ in done),
        todo=[f for f in todo if f.path not in settled],
        gone=[p for p in gone if p not in moved_away],
    )
