"""Why two photos are in one group, in the user's words: "cropped to 62 % of its area, mirrored,
re-encoded as WebP", and where the copy lies in the keeper's picture (to draw it).

The duplicate check places every member in its group's anchor (``members[0]``); the keeper is
chosen later by rules, so each reason is first turned into "this member relative to the keeper":
member -> keeper = inverse(keeper -> anchor) . (member -> anchor), in working-frame pixels. The
words describe the edit that turns the keeper into the copy (keeper -> member), since that is how
a user thinks of a copy: the original, cropped / resized / re-saved.

No Qt here: the CLI's ``--json`` and the compare view read the same Relation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from imgsim_desktop.core.duplicates import Group, Member, Placement
from imgsim_desktop.core.file_format import file_format
from imgsim_desktop.core.overlap import in_box
from imgsim_desktop.core.verify import WORK_SIDE
from imgsim_desktop.storage.records import PhotoRow

# Below these a difference is measurement noise of the fitted transform, not an edit worth naming.
WHOLE = 0.98  # an overlap share at least this is "the whole picture"
SAME_SCALE = 0.02  # linear scale within 2 % of 1: not resized
STRETCHED = 1.05  # one axis scaled 5 % more than the other: proportions changed
ROTATED_DEG = 1.0  # a residual turn under a degree is noise
BRIGHTER = 8.0  # grey levels (of 255) at mid grey
CONTRAST = 0.08  # gain away from 1
FILE_SIZE = 0.10  # file size differences under 10 % are not worth a word


@dataclass(frozen=True)
class Relation:
    """One member seen from the keeper. Geometry fields are None when there is no placement to
    read them from (similar shots, exact copies, a duplicate check that placed nothing)."""

    kind: str  # "keeper" (this is the keeper), "exact", "duplicate" or "similar"
    exact: bool = False
    mirrored: bool = False
    quarter_turns: int = 0  # nearest quarter turns clockwise, keeper -> copy: 0..3
    rotation: float = 0.0  # degrees clockwise, keeper -> copy, in (-180, 180]
    area_share: float | None = None  # of the keeper's picture, the share the copy covers
    keeper_inside_copy: float | None = None  # of the copy's picture, the share the keeper covers
    scale: float | None = None  # linear, copy px per keeper px (real pixels when sizes were given)
    stretch: float = 1.0  # larger over smaller axis scale: 1 keeps the proportions
    tone: tuple[float, float] = (1.0, 0.0)  # copy ~= gain * keeper + offset (grey levels 0..255)
    region: tuple[tuple[float, float], ...] | None = None  # copy's picture corners in the keeper's frame, 0..1
    bordered: bool = False  # the copy has a border added around its picture (the keeper has none)

    @property
    def brightness(self) -> float:
        """Grey levels the copy is brighter by at mid grey (negative: darker)."""
        gain, offset = self.tone
        return gain * 128.0 + offset - 128.0

    @property
    def geometry(self) -> bool:
        return self.region is not None


# --- the numbers -------------------------------------------------------------------------------


def relation(
    member: Member,
    keeper_member: Member,
    *,
    member_size: tuple[int, int] | None = None,
    keeper_size: tuple[int, int] | None = None,
    tier: str = "duplicate",
    exact: bool | None = None,
) -> Relation:
    """How ``member`` relates to ``keeper_member`` (both of one group).

    ``member_size`` / ``keeper_size`` are the photos' real displayed sizes: with both, ``scale``
    is in real pixels ("resized to 50 %"); without, it compares working frames. ``exact`` overrides
    the guess from the members' flags (a caller that knows the file sizes can tell better)."""
    if member.path == keeper_member.path:
        return Relation("keeper", scale=1.0, area_share=1.0, keeper_inside_copy=1.0)
    if exact is None:
        exact = tier == "exact" or (member.exact and keeper_member.exact and _same_place(member.placement, keeper_member.placement))
    if exact:
        return Relation("exact", exact=True, scale=1.0, area_share=1.0, keeper_inside_copy=1.0, region=_unit_square())
    if tier == "similar" or member.placement is None or keeper_member.placement is None:
        return Relation("similar" if tier == "similar" else "duplicate")
    try:
        return _measured(member.placement, keeper_member.placement, member_size, keeper_size)
    except np.linalg.LinAlgError:  # a degenerate fit places nothing: say what the sizes say, draw nothing
        return Relation("duplicate")


def _measured(mine: Placement, keeper: Placement, member_size, keeper_size) -> Relation:
    to_keeper = np.linalg.inv(_matrix(keeper)) @ _matrix(mine)  # member px -> keeper px
    # Pictures, not frames: a border added around either one is no part of what was copied.
    (kw, kh) = keeper.frame
    kx0, ky0, kx1, ky1 = keeper.picture or (0.0, 0.0, *keeper.frame)
    mx0, my0, mx1, my1 = mine.picture or (0.0, 0.0, *mine.frame)
    corners = to_keeper @ np.array([[mx0, mx1, mx1, mx0], [my0, my0, my1, my1], [1, 1, 1, 1]], dtype=float)
    polygon = [(float(x), float(y)) for x, y in corners[:2].T]
    inside, area = in_box(polygon, (kx0, ky0, kx1, ky1))
    area_share = min(1.0, inside / max((kx1 - kx0) * (ky1 - ky0), 1e-9))
    keeper_inside = min(1.0, inside / max(area, 1e-9))

    # The edit a user thinks of runs keeper -> copy; in real pixels each frame scales by its own factor.
    edit = np.linalg.inv(to_keeper)[:2, :2]
    real = _real_factor(member_size, mine.frame) / _real_factor(keeper_size, keeper.frame)
    mirrored = float(np.linalg.det(edit)) < 0
    turn = edit @ np.diag([-1.0, 1.0]) if mirrored else edit  # a mirror first (left-right), then the turn
    rotation = math.degrees(math.atan2(turn[1, 0], turn[0, 0]))  # y points down: positive is clockwise
    rotation = 180.0 if rotation <= -180.0 + 1e-9 else rotation
    big, small = np.linalg.svd(edit, compute_uv=False)
    return Relation(
        kind="duplicate",
        mirrored=mirrored,
        quarter_turns=round(rotation / 90.0) % 4,
        rotation=rotation,
        area_share=area_share,
        keeper_inside_copy=keeper_inside,
        scale=math.sqrt(big * small) * real,
        stretch=float(big / max(small, 1e-12)),
        tone=_tone(mine.tone, keeper.tone),
        region=tuple((x / kw, y / kh) for x, y in polygon),
        bordered=mine.picture is not None and keeper.picture is None,
    )


def _matrix(p: Placement) -> np.ndarray:
    a, b, c, d, e, f = p.to_anchor
    return np.array([[a, b, c], [d, e, f], [0.0, 0.0, 1.0]])


def _same_place(a: Placement | None, b: Placement | None) -> bool:
    """Two byte-identical files decode to one picture, so the check places them alike; two exact
    members placed apart are copies of different files of the group."""
    if a is None or b is None:
        return True
    ma, mb = _matrix(a), _matrix(b)
    # A few hundredths in the linear part, a couple of pixels in the shift: the fit's own noise.
    return a.frame == b.frame and np.allclose(ma[:2, :2], mb[:2, :2], atol=0.02) and np.allclose(ma[:2, 2], mb[:2, 2], atol=2.0)


def _real_factor(size: tuple[int, int] | None, frame: tuple[int, int]) -> float:
    """Real pixels per working-frame pixel; the longer side, as the frame was scaled by it."""
    return max(size) / max(frame) if size and all(size) else 1.0


def _tone(mine: tuple[float, float], keeper: tuple[float, float]) -> tuple[float, float]:
    """anchor ~= g_m * member + o_m and anchor ~= g_k * keeper + o_k give copy ~= gain * keeper + offset."""
    (gm, om), (gk, ok) = mine, keeper
    gm = gm if abs(gm) > 1e-6 else 1.0
    return gk / gm, (ok - om) / gm


def _unit_square() -> tuple[tuple[float, float], ...]:
    return ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))


# --- the words ---------------------------------------------------------------------------------


def describe(
    rel: Relation, member_row: PhotoRow | None, keeper_row: PhotoRow | None, *, copy: str = "This photo", original: str = "the keeper"
) -> str:
    """One sentence: "{copy} is {original} cropped to 62 % of its area and re-encoded as WebP."."""
    if rel.kind == "keeper":
        return "suggested keeper"
    return f"{copy} is {phrase(rel, member_row, keeper_row, original=original)}."


def phrase(rel: Relation, member_row: PhotoRow | None, keeper_row: PhotoRow | None, *, original: str = "the keeper") -> str:
    """The sentence without its subject: "the keeper cropped to 62 % of its area", for short listings."""
    if rel.kind == "keeper":
        return "suggested keeper"
    if rel.kind == "exact":
        return f"a byte-identical copy of {original}"
    if rel.kind == "similar":
        return f"another shot of the same moment as {original}"
    edits = _geometry_edits(rel, original) if rel.geometry else _size_edits(member_row, keeper_row)
    edits += _tone_edits(rel)
    edits.append(_encoding(member_row, keeper_row, changed=bool(edits)))
    if rel.geometry:
        return f"{original} {_and(edits)}"
    return f"the same photo as {original}, {_and(edits)}"


def _geometry_edits(rel: Relation, original: str) -> list[str]:
    edits = []
    share, inside = rel.area_share, rel.keeper_inside_copy
    if share < WHOLE and inside >= WHOLE:
        edits.append(f"cropped to {_percent(share)} of its area")
    elif share >= WHOLE and inside < WHOLE:
        edits.append(f"with a wider frame ({original} fills {_percent(inside)} of it)")
    elif share < WHOLE and inside < WHOLE:
        edits.append(f"reframed to keep {_percent(share)} of its area")
    edits += _turns(rel)
    if rel.bordered:
        edits.append("given a border")
    if rel.stretch >= STRETCHED:
        edits.append("stretched out of proportion")
    if rel.scale is not None:
        edits += _resized(rel.scale)
    return edits


def _turns(rel: Relation) -> list[str]:
    residual = rel.rotation - 90.0 * round(rel.rotation / 90.0)
    if abs(residual) >= ROTATED_DEG:
        way = "clockwise" if rel.rotation > 0 else "anticlockwise"
        return (["mirrored"] if rel.mirrored else []) + [f"rotated {abs(rel.rotation):.0f}° {way}"]
    if rel.mirrored and rel.quarter_turns == 2:
        return ["flipped upside down"]  # a top-to-bottom mirror: mirrored and half a turn
    turned = {1: "rotated a quarter turn clockwise", 2: "turned upside down", 3: "rotated a quarter turn anticlockwise"}
    return (["mirrored"] if rel.mirrored else []) + ([turned[rel.quarter_turns]] if rel.quarter_turns else [])


def _resized(scale: float) -> list[str]:
    if abs(scale - 1.0) < SAME_SCALE:
        return []
    return [f"{'resized' if scale < 1 else 'enlarged'} to {_percent(scale)}"]


def _size_edits(member_row: PhotoRow | None, keeper_row: PhotoRow | None) -> list[str]:
    """Without a placement only the sizes speak, and only when the shapes agree (else a crop)."""
    if not (member_row and keeper_row and member_row.width and member_row.height and keeper_row.width and keeper_row.height):
        return []
    mw, mh, kw, kh = member_row.width, member_row.height, keeper_row.width, keeper_row.height
    if abs(math.log((mw / mh) / (kw / kh))) > 0.01:
        return []
    return _resized(max(mw, mh) / max(kw, kh))


def _tone_edits(rel: Relation) -> list[str]:
    edits = []
    if abs(rel.brightness) >= BRIGHTER:
        edits.append("made brighter" if rel.brightness > 0 else "made darker")
    gain = rel.tone[0]
    if abs(gain - 1.0) >= CONTRAST:
        edits.append("given more contrast" if gain > 1 else "given less contrast")
    return edits


def _encoding(member_row: PhotoRow | None, keeper_row: PhotoRow | None, changed: bool) -> str:
    """Bytes differ, pixels may not: "re-encoded" after an edit or in another format, else "saved again".
    Formats are the files' contents (a JPEG renamed .png is no conversion), the scan has read them."""
    mine, theirs = (file_format(r.path, r.size, r.mtime_ns) if r else None for r in (member_row, keeper_row))
    converted = mine is not None and theirs is not None and mine.ext != theirs.ext
    words = f"re-encoded as {mine.name}" if converted else "re-encoded" if changed else "saved again"
    if member_row and keeper_row and member_row.size and keeper_row.size:
        ratio = member_row.size / keeper_row.size
        if ratio <= 1 - FILE_SIZE:
            words += f" ({_percent(1 - ratio)} smaller file)"  # no article: "a 81 %" reads wrong
        elif ratio >= 2:
            words += f" (a file {ratio:.1f} times as large)"
        elif ratio >= 1 + FILE_SIZE:
            words += f" ({_percent(ratio - 1)} larger file)"
    return words


def _percent(share: float) -> str:
    """62 %, 6.5 %, less than 1 %: whole numbers where they are precise enough to read."""
    p = share * 100
    if p < 1:
        return "less than 1 %"
    return f"{p:.1f} %" if p < 10 and abs(p - round(p)) >= 0.05 else f"{round(p)} %"


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# --- for a whole group -------------------------------------------------------------------------


def in_group(group: Group, member_path: str, keeper_path: str, rows: dict[str, PhotoRow]) -> Relation:
    """``relation`` for two members of ``group``, with what only the group and the catalog know:
    real sizes, the tier, and placements of exact copies, who may carry none (a byte-identical file
    lies where its twin does)."""
    by_path = {m.path: m for m in group.members}
    member, keeper = by_path[member_path], by_path[keeper_path]
    mine, theirs = rows.get(member_path), rows.get(keeper_path)
    exact = None
    if group.tier == "exact":
        exact = True
    elif member.exact and keeper.exact and mine and theirs:
        exact = mine.size == theirs.size and _same_place(member.placement, keeper.placement)
    member, keeper = (_placed(m, group, rows) for m in (member, keeper))
    return relation(member, keeper, member_size=_size(mine), keeper_size=_size(theirs), tier=group.tier, exact=exact)


def _placed(member: Member, group: Group, rows: dict[str, PhotoRow]) -> Member:
    if member.placement is not None or group.tier != "duplicate":
        return member
    if member is group.members[0]:  # the anchor: the identity, in a frame its real size gives
        frame = _frame(rows.get(member.path))
        return Member(member.path, member.score, member.exact, Placement((1, 0, 0, 0, 1, 0), frame)) if frame else member
    if member.exact:
        row = rows.get(member.path)
        for twin in group.members:
            twin_row = rows.get(twin.path)
            if twin.exact and twin.placement is not None and row and twin_row and twin_row.size == row.size:
                return Member(member.path, member.score, member.exact, twin.placement)
    return member


def _size(row: PhotoRow | None) -> tuple[int, int] | None:
    return (row.width, row.height) if row and row.width and row.height else None


def _frame(row: PhotoRow | None) -> tuple[int, int] | None:
    size = _size(row)
    if size is None:
        return None
    scale = WORK_SIDE / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def facts(rel: Relation) -> dict:
    """The JSON form: the numbers ``describe`` reads, rounded to what they can tell."""
    out = {"kind": rel.kind, "exact": rel.exact}
    if rel.kind == "duplicate" and rel.geometry:
        out |= {
            "area_share": round(rel.area_share, 3),
            "keeper_inside_copy": round(rel.keeper_inside_copy, 3),
            "scale": round(rel.scale, 3),
            "rotation": round(rel.rotation, 1),
            "quarter_turns": rel.quarter_turns,
            "mirrored": rel.mirrored,
            "stretch": round(rel.stretch, 3),
            "tone": {"gain": round(rel.tone[0], 3), "offset": round(rel.tone[1], 1), "brightness": round(rel.brightness, 1)},
            "region": [[round(x, 4), round(y, 4)] for x, y in rel.region],
        }
    return out
