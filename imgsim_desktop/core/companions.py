"""The files that belong to a photo and travel with it when cleanup moves or trashes it.

Found by name in the photo's own folder, letter case ignored:

  xmp    'IMG_1.xmp' (Lightroom, Capture One: the photo's stem) and 'IMG_1.CR2.xmp' (darktable,
         digiKam: the whole name), with darktable's versions 'IMG_1_01.CR2.xmp'
  pp3    RawTherapee's 'IMG_1.CR2.pp3', 'IMG_1.jpg.pp3' (the whole name)
  aae    Apple Photos' edit file 'IMG_1.AAE' (the stem)
  live   a Live Photo's video 'IMG_1.MOV' beside 'IMG_1.HEIC' or 'IMG_1.JPG'
  raw    the RAW file of a RAW+JPEG pair: 'IMG_1.CR2' beside 'IMG_1.JPG' (or HEIC), taken at the
         same moment (dates taken within PAIR_SECONDS where both are known, else file dates)
  jpeg   the other way round: the JPEG/HEIC beside a RAW photo

A file named by the stem ('IMG_1.xmp') belongs to every photo of that stem in the folder
('IMG_1.JPG' and 'IMG_1.CR2'): it is each one's companion, and leaves with the last of them
(``travelling``). A companion never leaves without a photo it belongs to.

Apple's 'IMG_O1234.AAE' naming is not handled: no documentation of it was found.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

RAW_EXTENSIONS = frozenset(
    ".cr2 .cr3 .crw .nef .nrw .arw .srf .sr2 .dng .raf .orf .rw2 .rwl .pef .ptx .srw .kdc .dcr .k25 .mrw .mos .mef "
    ".erf .3fr .fff .iiq .x3f .gpr".split()
)
JPEG_LIKE = frozenset(".jpg .jpeg .jpe .jfif .heic .heif".split())  # the developed half of a RAW+JPEG pair
LIVE_PHOTO = frozenset(".jpg .jpeg .heic .heif".split())
PHOTO_EXTENSIONS = RAW_EXTENSIONS | JPEG_LIKE | frozenset(".png .webp .avif .tif .tiff .bmp .gif .jxl".split())
PAIR_SECONDS = 2.0  # a camera writes both files of one shot within this of each other
PAIR_KINDS = ("raw", "jpeg")
PAIR_RULES = {"both": "keep RAW+JPEG", "raw": "keep RAW only", "jpeg": "keep JPEG only"}

_NOUNS = {  # kind -> (one, many), as counts read in the CLI and the app
    "xmp": ("sidecar", "sidecars"),
    "pp3": ("sidecar", "sidecars"),
    "aae": ("sidecar", "sidecars"),
    "live": ("Live Photo video", "Live Photo videos"),
    "raw": ("RAW file", "RAW files"),
    "jpeg": ("paired JPEG", "paired JPEGs"),
}
_VERSIONED_XMP = re.compile(r"^(?P<stem>.+)_\d{2,}(?P<ext>\.[^.]+)\.xmp$")  # darktable's duplicates: IMG_1_01.CR2.xmp


@dataclass(frozen=True)
class Companion:
    kind: str  # see the module docstring
    path: str
    owners: tuple[str, ...]  # the photos in its folder it belongs to; it leaves with the last of them
    in_library: bool = False  # a pair's other half that is itself an indexed photo: moves only when chosen


def pair_of(path: str) -> str | None:
    """'raw' when ``path`` is the JPEG side of a possible pair (its partner would be a RAW), 'jpeg' the other way."""
    ext = os.path.splitext(path)[1].lower()
    return "raw" if ext in JPEG_LIKE else "jpeg" if ext in RAW_EXTENSIONS else None


class Folders:
    """Folder listings for one cleanup or one scan: each folder is listed once; files that leave
    are struck from it (``gone``) so later photos see the folder as it is now.

    ``taken(path)`` gives a photo's date taken (ISO text) where known, for the pair's same moment;
    ``in_library(path)`` says whether a file is an indexed photo of the library."""

    def __init__(self, taken: Callable[[str], str | None] = lambda _p: None, in_library: Callable[[str], bool] = lambda _p: False) -> None:
        self._names: dict[str, dict[str, str]] = {}  # folder -> {lower-case name: name}
        self._taken = taken
        self._in_library = in_library

    def names(self, folder: str) -> dict[str, str]:
        if folder not in self._names:
            try:
                with os.scandir(folder) as entries:
                    self._names[folder] = {e.name.lower(): e.name for e in entries if _is_file(e)}
            except OSError:
                self._names[folder] = {}
        return self._names[folder]

    def gone(self, path: str) -> None:
        folder, name = os.path.split(path)
        self.names(folder).pop(name.lower(), None)

    def companions_of(self, path: str) -> list[Companion]:
        """The companions of the photo at ``path`` now on the disk: the pair's other half first, then
        its sidecars (and the other half's own sidecars), each once."""
        folder, name = os.path.split(path)
        names = self.names(folder)
        stem, ext = os.path.splitext(name.lower())
        photos = [n for n in names.values() if _stem(n) == stem and os.path.splitext(n)[1].lower() in PHOTO_EXTENSIONS]
        found: dict[str, Companion] = {}
        partner = self._partner(folder, name, photos)
        if partner:
            full = os.path.join(folder, partner)
            found[partner.lower()] = Companion(pair_of(path), full, (path,), self._in_library(full))
        for owner in [name] + ([partner] if partner else []):
            own = os.path.join(folder, owner)
            for key in (f"{owner.lower()}.xmp", f"{owner.lower()}.pp3"):
                if key in names:
                    found.setdefault(key, Companion(key.rsplit(".", 1)[1], os.path.join(folder, names[key]), (own,)))
            for key in names:
                m = _VERSIONED_XMP.match(key)  # a version's sidecar, unless a photo of that name is there to own it
                if m and f"{m['stem']}{m['ext']}" == owner.lower() and key[: -len(".xmp")] not in names:
                    found.setdefault(key, Companion("xmp", os.path.join(folder, names[key]), (own,)))
        owners = tuple(os.path.join(folder, n) for n in sorted(photos))
        for kind, key in (("xmp", f"{stem}.xmp"), ("aae", f"{stem}.aae"), ("live", f"{stem}.mov")):
            if key in names and key not in found and (kind != "live" or ext in LIVE_PHOTO):
                live_owners = tuple(o for o in owners if os.path.splitext(o)[1].lower() in LIVE_PHOTO) if kind == "live" else owners
                found[key] = Companion(kind, os.path.join(folder, names[key]), live_owners or (path,))
        return list(found.values())

    def _partner(self, folder: str, name: str, photos: list[str]) -> str | None:
        """The other half of a RAW+JPEG pair: same stem, the other kind, the same moment."""
        want = pair_of(name)
        if want is None:
            return None
        kinds = RAW_EXTENSIONS if want == "raw" else JPEG_LIKE
        for other in sorted(photos):
            if other != name and os.path.splitext(other)[1].lower() in kinds and self._same_moment(os.path.join(folder, name), os.path.join(folder, other)):
                return other
        return None

    def _same_moment(self, a: str, b: str) -> bool:
        ta, tb = _when(self._taken(a)), _when(self._taken(b))
        if ta is not None and tb is not None:
            return abs(ta - tb) <= PAIR_SECONDS
        try:
            return abs(os.stat(a).st_mtime - os.stat(b).st_mtime) <= PAIR_SECONDS
        except OSError:
            return False


def companions_of(path: str, folders: Folders | None = None) -> list[Companion]:
    """The companions of the photo at ``path`` (see the module docstring)."""
    return (folders or Folders()).companions_of(path)


def library_folders(catalog) -> Folders:
    """Folders that know the library: dates taken from the catalog, and which files are its photos."""
    return Folders(taken=lambda p: (row.taken_at if (row := catalog.photo(p)) else None), in_library=lambda p: catalog.file_by_path(p) is not None)


def attach(groups: list, folders: Folders) -> list:
    """The duplicate groups with each member's companions filled in (core.duplicates.Member.companions)."""
    return [dataclasses.replace(g, members=[dataclasses.replace(m, companions=tuple(folders.companions_of(m.path))) for m in g.members]) for g in groups]


def partners(members: Iterable) -> dict[str, str]:
    """{member path: the other half of its RAW+JPEG pair} for the members (with companions attached) that have one."""
    return {m.path: c.path for m in members for c in m.companions if c.kind in PAIR_KINDS}


def planned(paths: list[str], companions: dict[str, Iterable[Companion]], pair_rule: str = "both") -> dict[str, list[Companion]]:
    """What goes with each of ``paths`` when a cleanup removes them in this order (as cleanup.apply
    decides it, from the companions a scan found): for the confirmation and the CLI's plan."""
    gone: set[str] = set()
    later = set(paths)
    out = {}
    for path in paths:
        later.discard(path)
        out[path] = travelling(path, companions.get(path, ()), gone, later, pair_rule)
    return out


def travelling(photo: str, companions: Iterable[Companion], gone: set[str], later: set[str], pair_rule: str = "both") -> list[Companion]:
    """Which of ``photo``'s companions leave with it. ``gone``: files that left earlier in this
    cleanup (updated here, ``photo`` and its travellers added); ``later``: photos this cleanup
    removes after this one, which take their own companions when they go.

    The pair's other half goes along when it is not an indexed photo (those move only when chosen),
    not removed later on its own, and the pair rule does not keep it ("keep RAW only" keeps the RAW
    when its JPEG goes; "keep JPEG only" the JPEG when its RAW goes). A sidecar goes when every
    photo it belongs to has gone."""
    if pair_rule not in PAIR_RULES:
        raise ValueError(f"unknown pair rule {pair_rule!r}; known: {', '.join(PAIR_RULES)}")
    gone.add(photo)
    out = []
    companions = list(companions)
    for c in companions:
        if c.kind in PAIR_KINDS and c.path not in gone and c.path not in later and not c.in_library and c.kind != pair_rule:
            out.append(c)
            gone.add(c.path)
    for c in companions:
        if c.kind not in PAIR_KINDS and c.path not in gone and set(c.owners) <= gone:
            out.append(c)
            gone.add(c.path)
    return out


def noun(kind: str) -> str:
    """'sidecar', 'Live Photo video', 'RAW file'..."""
    return _NOUNS.get(kind, ("companion file",))[0]


def counted(kinds: Iterable[str]) -> str:
    """'2 sidecars and 1 RAW file' for the kinds of the companions that go; '' for none."""
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[noun(kind)] = counts.get(noun(kind), 0) + 1
    nouns = {one: many for one, many in _NOUNS.values()}
    parts = [f"{n:,} {one if n == 1 else nouns.get(one, one + 's')}" for one, n in counts.items()]
    return " and ".join(parts) if len(parts) < 3 else ", ".join(parts[:-1]) + " and " + parts[-1]


def with_companions(photos_text: str, kinds: Iterable[str]) -> str:
    """'3 photos (and 2 sidecars)'; just '3 photos' when nothing goes along."""
    extra = counted(kinds)
    return f"{photos_text} (and {extra})" if extra else photos_text


def _stem(name: str) -> str:
    return os.path.splitext(name.lower())[0]


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def _when(taken: str | None) -> float | None:
    if not taken:
        return None
    try:
        return datetime.fromisoformat(taken).timestamp()
    except ValueError:
        return None
