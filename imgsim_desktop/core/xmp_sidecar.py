"""Keep the metadata of removed copies: what the copies carry and the keeper lacks (date taken,
GPS position, keywords, rating, title) is written into the keeper's XMP sidecar, never into the
photo file itself.

Read from each file's EXIF (Pillow) and its embedded XMP packet, and from its XMP sidecars.
Written as RDF/XML with the standard library's ElementTree: a new sidecar '<stem>.xmp' (the name
Lightroom, Capture One, Bridge, digiKam and exiftool read; '<name>.xmp' when another photo shares
the stem), or merged into the keeper's existing sidecar, whose other properties are kept as they are
(only properties it lacks are added; keywords are added to its list).

Why no XMP library: python-xmp-toolkit needs the exempi C library, which has no wheels (the
packaged app could not ship it on Windows or macOS); pyexiv2 and py3exiv2 are GPL, which an
Apache-2.0 app cannot ship; the pure-Python EXIF packages (piexif, exif) do not write XMP. The
sidecar written here is checked in the tests by the project's own reader
(core.photo_quality.metadata_tags) and by exiftool.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace

from PIL import Image

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
KINDS = ("date", "place", "keywords", "rating", "title")  # what is kept, as core.photo_quality.TAGS names it
ABSENT = "absent"  # the journal's 'written' for a sidecar that an undo removed

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL, _DATETIME = 0x9003, 0x0132
_DESCRIPTION, _XP_TITLE, _XP_KEYWORDS, _RATING = 0x010E, 0x9C9B, 0x9C9E, 0x4746
_XMP_TIFF_TAG = 700


class NotXmp(ValueError):
    """An existing sidecar that is not readable XMP: it is left alone."""


@dataclass(frozen=True)
class Facts:
    date: str | None = None  # 'YYYY-MM-DDTHH:MM:SS' (XMP date)
    place: tuple[str, str] | None = None  # (exif:GPSLatitude, exif:GPSLongitude) as XMP writes them: '50,52.291667N'
    keywords: tuple[str, ...] = ()
    rating: int | None = None  # 1..5
    title: str | None = None

    def kinds(self) -> list[str]:
        return [k for k in KINDS if getattr(self, k)]

    def __bool__(self) -> bool:
        return bool(self.kinds())


@dataclass
class Plan:
    """What one keeper gets: its sidecar, the facts to add, the copies they came from."""

    keeper: str
    sidecar: str
    add: Facts
    sources: list[str] = field(default_factory=list)


def digest(data: bytes | None) -> str:
    return ABSENT if data is None else hashlib.sha256(data).hexdigest()


# --- reading -------------------------------------------------------------------------------------


def facts_of(photo: str, sidecars: list[str]) -> Facts:
    """What ``photo`` carries: its EXIF and embedded XMP, then its XMP ``sidecars`` (which win)."""
    facts = Facts()
    try:
        with Image.open(photo) as img:
            facts = _merged(facts, _from_exif(img.getexif()))
            packet = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp") or (img.getexif().get(_XMP_TIFF_TAG) if img.format == "TIFF" else None)
            if packet:
                facts = _merged(facts, from_xmp(packet if isinstance(packet, bytes) else str(packet).encode()), prefer_new=True)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        pass  # a RAW or a file Pillow cannot open: its sidecars still say what it carries
    for sidecar in sidecars:
        try:
            with open(sidecar, "rb") as fh:
                facts = _merged(facts, from_xmp(fh.read()), prefer_new=True)
        except (OSError, NotXmp):
            continue
    return facts


def from_xmp(data: bytes) -> Facts:
    root = _parse(data)[0]
    values: dict[str, object] = {}
    for desc in root.iter(_q("rdf", "Description")):
        for key, value in desc.attrib.items():
            values.setdefault(key, value)
        for child in desc:
            values.setdefault(child.tag, child)
    date = _text(values.get(_q("exif", "DateTimeOriginal"))) or _text(values.get(_q("photoshop", "DateCreated"))) or _text(values.get(_q("xmp", "CreateDate")))
    lat, lon = _text(values.get(_q("exif", "GPSLatitude"))), _text(values.get(_q("exif", "GPSLongitude")))
    rating = _text(values.get(_q("xmp", "Rating")))
    subject = values.get(_q("dc", "subject"))
    title = values.get(_q("dc", "title"))
    return Facts(
        date=_xmp_date(date) if date else None,
        place=(lat, lon) if lat and lon else None,
        keywords=tuple(li.text.strip() for li in subject.iter(_q("rdf", "li")) if li.text and li.text.strip()) if isinstance(subject, ET.Element) else (),
        rating=_rating(rating),
        title=_alt_text(title) if isinstance(title, ET.Element) else (title.strip() or None) if isinstance(title, str) else None,
    )


def _from_exif(exif: Image.Exif) -> Facts:
    if not exif:
        return Facts()
    sub = exif.get_ifd(_EXIF_IFD)
    stamp = sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    date = _xmp_date(stamp) if isinstance(stamp, str) and _EXIF_DATE.match(stamp) else None
    gps = exif.get_ifd(_GPS_IFD)
    place = None
    if gps.get(2) and gps.get(4):
        try:
            place = (_xmp_coordinate(gps[2], gps.get(1) or "N", "NS"), _xmp_coordinate(gps[4], gps.get(3) or "E", "EW"))
        except (TypeError, ValueError, ZeroDivisionError):
            place = None
    keywords = tuple(k.strip() for k in _xp_text(exif.get(_XP_KEYWORDS)).split(";") if k.strip())
    title = str(exif.get(_DESCRIPTION) or "").strip(" \x00") or _xp_text(exif.get(_XP_TITLE)).strip() or None
    return Facts(date=date, place=place, keywords=keywords, rating=_rating(exif.get(_RATING)), title=title)


_EXIF_DATE = re.compile(r"^(\d{4}):(\d\d):(\d\d)[ T](\d\d:\d\d:\d\d)")


def _xmp_date(text: str) -> str:
    """An XMP date ('2018-06-06T22:20:11'); EXIF's '2018:06:06 22:20:11' (which some programs write into XMP too) converted."""
    text = text.strip(" \x00")
    m = _EXIF_DATE.match(text)
    return f"{m[1]}-{m[2]}-{m[3]}T{m[4]}" + (text[m.end() :] if m.end() < len(text) and text[m.end()] in "+-Z." else "") if m else text


def _xmp_coordinate(dms, ref, refs: str) -> str:
    """EXIF degrees, minutes, seconds and N/S/E/W as XMP's 'DDD,MM.mmmmmmK'."""
    degrees, minutes, seconds = (float(v) for v in dms)
    ref = (ref.decode() if isinstance(ref, bytes) else str(ref)).strip(" \x00").upper()[:1]
    if ref not in refs:
        raise ValueError(f"GPS reference {ref!r}")
    total = minutes + seconds / 60
    return f"{int(degrees)},{total:.6f}{ref}"


def _xp_text(value) -> str:
    """Windows' XP* tags: UTF-16LE bytes (Pillow gives bytes or a tuple of byte values)."""
    if isinstance(value, tuple):
        value = bytes(value)
    if isinstance(value, bytes):
        return value.decode("utf-16-le", "ignore").rstrip("\x00")
    return str(value or "")


def _rating(value) -> int | None:
    try:
        n = round(float(value))
    except (TypeError, ValueError):
        return None
    return n if 1 <= n <= 5 else None


def _merged(old: Facts, new: Facts, prefer_new: bool = False) -> Facts:
    pick = (lambda a, b: b or a) if prefer_new else (lambda a, b: a or b)
    return Facts(
        date=pick(old.date, new.date),
        place=pick(old.place, new.place),
        keywords=tuple(dict.fromkeys(old.keywords + new.keywords)),
        rating=pick(old.rating, new.rating),
        title=pick(old.title, new.title),
    )


# --- deciding ------------------------------------------------------------------------------------


def lacking(keeper: Facts, copies: list[Facts]) -> Facts:
    """What the copies carry that the keeper lacks: each of date, place, rating and title from the
    first copy that has it, where the keeper has none; keywords the keeper does not have."""
    add = Facts()
    for facts in copies:
        add = _merged(add, facts)
    have = {k.casefold() for k in keeper.keywords}
    return replace(
        add,
        date=None if keeper.date else add.date,
        place=None if keeper.place else add.place,
        rating=None if keeper.rating else add.rating,
        title=None if keeper.title else add.title,
        keywords=tuple(k for k in add.keywords if k.casefold() not in have),
    )


def sidecar_for(keeper: str, existing: list[str], folder_names: list[str]) -> str:
    """The sidecar to write: the keeper's own existing one ('<stem>.xmp' first, then '<name>.xmp'),
    else a new '<stem>.xmp', or '<name>.xmp' when another photo in the folder shares the stem."""
    folder, name = os.path.split(keeper)
    stem = os.path.splitext(name)[0]
    by_lower = {os.path.basename(p).lower(): p for p in existing}
    for wanted in (f"{stem}.xmp".lower(), f"{name}.xmp".lower()):
        if wanted in by_lower:
            return by_lower[wanted]
    shared = any(os.path.splitext(n)[0].lower() == stem.lower() and n.lower() != name.lower() and not n.lower().endswith(".xmp") for n in folder_names)
    return os.path.join(folder, f"{name}.xmp" if shared else f"{stem}.xmp")


# --- writing -------------------------------------------------------------------------------------


def merged_sidecar(existing: bytes | None, add: Facts) -> bytes:
    """The sidecar's new bytes: ``existing`` (None: a new sidecar) with the properties of ``add``
    it lacks. Raises NotXmp when ``existing`` is not readable XMP."""
    if existing is None:
        root = ET.Element(_q("x", "xmpmeta"), {_q("x", "xmptk"): "imgsim"})
        desc = ET.SubElement(ET.SubElement(root, _q("rdf", "RDF")), _q("rdf", "Description"), {_q("rdf", "about"): ""})
        wrapped = True
    else:
        root, prefixes = _parse(existing)
        for prefix, uri in prefixes.items():
            if prefix and prefix != "xml" and uri not in NS.values():
                try:
                    ET.register_namespace(prefix, uri)  # the document's own prefixes are kept as they were
                except ValueError:
                    pass  # a prefix ElementTree reserves ('ns0'): written under another name, same namespace
        rdf = root if root.tag == _q("rdf", "RDF") else root.find(f".//{_q('rdf', 'RDF')}")
        if rdf is None:
            raise NotXmp("it has no rdf:RDF element")
        desc = rdf.find(_q("rdf", "Description"))
        if desc is None:
            desc = ET.SubElement(rdf, _q("rdf", "Description"), {_q("rdf", "about"): ""})
        wrapped = existing.lstrip().startswith(b"<?xpacket")
    have = from_xmp(ET.tostring(root)) if existing is not None else Facts()
    if add.date and not have.date:
        desc.set(_q("exif", "DateTimeOriginal"), add.date)
        desc.set(_q("photoshop", "DateCreated"), add.date)
    if add.place and not have.place:
        desc.set(_q("exif", "GPSLatitude"), add.place[0])
        desc.set(_q("exif", "GPSLongitude"), add.place[1])
        desc.set(_q("exif", "GPSVersionID"), "2.2.0.0")
    if add.rating and not have.rating:
        desc.set(_q("xmp", "Rating"), str(add.rating))
    if add.title and not have.title:
        alt = ET.SubElement(ET.SubElement(desc, _q("dc", "title")), _q("rdf", "Alt"))
        ET.SubElement(alt, _q("rdf", "li"), {XML_LANG: "x-default"}).text = add.title
    new_keywords = [k for k in add.keywords if k.casefold() not in {h.casefold() for h in have.keywords}]
    if new_keywords:
        subject = _find_property(root, _q("dc", "subject"))
        if subject is None:
            subject = ET.SubElement(desc, _q("dc", "subject"))
        bag = subject.find(_q("rdf", "Bag"))
        if bag is None:
            bag = ET.SubElement(subject, _q("rdf", "Bag"))
        for keyword in new_keywords:
            ET.SubElement(bag, _q("rdf", "li")).text = keyword
    ET.indent(root, space=" ")
    body = ET.tostring(root, encoding="unicode", xml_declaration=False)
    if wrapped:
        body = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + body + '\n<?xpacket end="w"?>'
    return (body + "\n").encode("utf-8")


def _find_property(root: ET.Element, tag: str) -> ET.Element | None:
    for desc in root.iter(_q("rdf", "Description")):
        found = desc.find(tag)
        if found is not None:
            return found
    return None


def _parse(data: bytes) -> tuple[ET.Element, dict[str, str]]:
    """The XML tree of an XMP packet or sidecar, and its namespace prefixes."""
    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data:
        raise NotXmp("it declares a DTD or entities, which XMP never does")
    prefixes: dict[str, str] = {}
    try:
        events = ET.iterparse(io.BytesIO(data.strip(b"\x00")), events=("start-ns", "end"))
        root = None
        for event, item in events:
            if event == "start-ns":
                prefixes.setdefault(*item)
            else:
                root = item
    except ET.ParseError as exc:
        raise NotXmp(f"it is not well-formed XML ({exc})") from None
    if root is None:
        raise NotXmp("it is empty")
    return root, prefixes


def _q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def _text(value) -> str | None:
    if isinstance(value, ET.Element):
        return (value.text or "").strip() or None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _alt_text(element: ET.Element) -> str | None:
    items = list(element.iter(_q("rdf", "li")))
    for li in items:
        if li.get(XML_LANG) == "x-default" and li.text and li.text.strip():
            return li.text.strip()
    return next((li.text.strip() for li in items if li.text and li.text.strip()), None) or _text(element)


for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)
