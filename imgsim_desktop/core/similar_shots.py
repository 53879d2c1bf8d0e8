"""The "similar shots" tier: photos of one moment (a burst, a retake), not of one place.

Joining every alike pair (single linkage) chains photos through intermediaries: A looks like B,
B like C, ... and 32 photos of one building, by different people over the years, became one
"group" to pick the best from. Here a group grows greedily, most alike pair first, and a photo
joins only if it is alike to *every* member already there (complete linkage), so no two members
of a group are strangers. Dates taken restrict further: two dated photos share a group only if
taken within MOMENT_SECONDS of each other, by the same camera when both cameras are known.

No size cap is needed: every member must be among the candidate pairs of every other, and the
candidates are each photo's few nearest neighbours (duplicates.NEIGHBOURS), which bounds a group
to about twice that. (So a very long burst can come out as a few groups; none mixes moments.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

# A burst is seconds long and a retake (re-pose the group, step aside, try again) minutes; after
# ten minutes light and people have moved on, so it is another moment. Any window in minutes
# already splits the same view shot on different days, which is what matters most.
MOMENT_SECONDS = 10 * 60
_EPOCH = datetime(1970, 1, 1)


def seconds(taken_at: str | None) -> float | None:
    """EXIF date taken (ISO 8601, camera local time) as seconds on a naive clock. No time zone is
    applied: two photos' local times compare directly, and a DST change cannot move one by an hour."""
    if not taken_at:
        return None
    try:
        moment = datetime.fromisoformat(taken_at)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (moment - _EPOCH).total_seconds()


# Frames of one sequence (a burst, a bracket, a time-lapse): each is its own exposure, so never the
# same photo, and the duplicate check need not look at its pixels. Within a minute only: a copy whose
# capture time was shifted (a time zone or clock fix on one of the two) moves by minutes or hours.
SEQUENCE_SECONDS = 60.0


def frames_apart(taken_x: str | None, camera_x: str | None, taken_y: str | None, camera_y: str | None) -> bool:
    """Two exposures of one camera, told apart by its own sub-second capture times? Both need a
    fraction in taken_at (only the shutter's DateTimeOriginal + SubSecTimeOriginal give one: see
    decode), one camera, and times apart by less than SEQUENCE_SECONDS. A copy keeps its original's
    time (or loses it): an edit, crop or re-save is never "apart"."""
    if not (taken_x and taken_y and "." in taken_x and "." in taken_y and camera_x and camera_y):
        return False
    if camera_x.strip().casefold() != camera_y.strip().casefold():
        return False
    tx, ty = seconds(taken_x), seconds(taken_y)
    return tx is not None and ty is not None and 0 < abs(tx - ty) < SEQUENCE_SECONDS


def moments(taken: dict[int, tuple[str | None, str | None]]) -> tuple[dict[int, float | None], dict[int, str | None]]:
    """(when, camera) per vector id from Catalog.taken_for_vectors' (taken_at, camera)."""
    when = {v: seconds(t) for v, (t, _) in taken.items()}
    camera = {v: c for v, (_, c) in taken.items()}
    return when, camera


def _same_moment(x: int, y: int, when: dict[int, float | None], camera: dict[int, str | None]) -> bool:
    tx, ty = when.get(x), when.get(y)
    if tx is not None and ty is not None and abs(tx - ty) > MOMENT_SECONDS:
        return False
    cx, cy = camera.get(x), camera.get(y)
    return not (cx and cy and cx.strip().casefold() != cy.strip().casefold())


def group_similar(
    a: Sequence[int],
    b: Sequence[int],
    cos: Sequence[float],
    threshold: float,
    when: dict[int, float | None],
    camera: dict[int, str | None],
    apart: dict[int, set[int]],
    excluded: set[int],
) -> list[list[int]]:
    """Groups (two or more vector ids each) of similar shots from candidate pairs ``a[i]``-``b[i]``
    sorted most alike first. Within a group every pair is a candidate with cosine >= ``threshold``,
    of one moment (see _same_moment), and not rejected (``apart``); ``excluded`` photos (already
    duplicates, or unreadable) are in none."""
    alike: dict[int, set[int]] = {}
    order: list[tuple[int, int]] = []
    for x, y, c in zip(_ints(a), _ints(b), cos):
        if c < threshold or x == y or x in excluded or y in excluded:
            continue
        if y in apart.get(x, ()) or not _same_moment(x, y, when, camera):
            continue
        alike.setdefault(x, set()).add(y)
        alike.setdefault(y, set()).add(x)
        order.append((x, y))

    group_of: dict[int, int] = {}  # vector id -> index into groups
    groups: list[set[int]] = []
    for x, y in order:
        gx, gy = group_of.get(x), group_of.get(y)
        if gx is None and gy is None:
            group_of[x] = group_of[y] = len(groups)
            groups.append({x, y})
        elif gx is None or gy is None:
            new, g = (x, gy) if gx is None else (y, gx)
            if groups[g] <= alike[new]:  # alike to every member: joins
                groups[g].add(new)
                group_of[new] = g
        elif gx != gy and all(groups[gy] <= alike[m] for m in groups[gx]):
            # Two groups, every cross pair alike: one group (still complete linkage).
            for m in groups[gy]:
                group_of[m] = gx
            groups[gx] |= groups[gy]
            groups[gy] = set()
    return [sorted(g) for g in groups if len(g) > 1]


def _ints(values) -> list[int]:
    return values.tolist() if hasattr(values, "tolist") else [int(v) for v in values]
