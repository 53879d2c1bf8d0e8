"""The best frame of a burst ("Similar shots"): sharp first, then well exposed, then the largest,
from what the indexer measured (core/photo_quality.py), with the reason in a person's words.

Only a suggestion: similar shots are different photos, so nothing in such a group is ticked for
removal until the user asks ("Select suggested") and confirms.
"""

from __future__ import annotations

from dataclasses import dataclass

from imgsim_desktop.core.keeper import SHARPNESS_TIE
from imgsim_desktop.storage.records import PhotoRow

# A frame with this much more of its pixels crushed to black or blown to white than the best
# exposed sharp frame has lost detail the other kept.
EXPOSURE_MARGIN = 0.05


@dataclass(frozen=True)
class Pick:
    row: PhotoRow
    reason: str  # "sharpest; the others are blurred"


def best_shot(members: list[PhotoRow]) -> Pick | None:
    """The frame to keep, or None when a frame was never measured (indexed before catalog v9)."""
    if len(members) < 2 or any(m.sharpness is None or m.clipped is None for m in members):
        return None
    top = max(m.sharpness for m in members)
    sharp = [m for m in members if m.sharpness >= SHARPNESS_TIE * top]
    least = min(m.clipped for m in sharp)
    exposed = [m for m in sharp if m.clipped <= least + EXPOSURE_MARGIN]
    best = max(exposed, key=lambda m: ((m.width or 0) * (m.height or 0), m.sharpness))
    reasons = []
    blurred = len(members) - len(sharp)
    if blurred:
        reasons.append("sharpest; the other is blurred" if len(members) == 2 else
                       "sharpest; the others are blurred" if len(sharp) == 1 else f"sharp; {blurred} of the others are blurred")  # fmt: skip
    if len(exposed) < len(sharp):
        reasons.append("best exposed (the others lose detail in shadows or highlights)")
    if not reasons:
        largest = len({(m.width or 0) * (m.height or 0) for m in exposed}) > 1
        reasons.append("the largest of equally sharp frames" if largest else "the sharpest of equally good frames")
    return Pick(best, "; ".join(reasons))
