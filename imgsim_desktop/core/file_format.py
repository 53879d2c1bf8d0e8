"""What format a photo file really is, told from its first bytes (magic numbers), not its name.

A JPEG saved as "photo.png" is still a JPEG: the keeper's "preferred format" rule and the Format
column must judge the bytes, or the renamed copy wins over the real PNG's rank by its name alone.
Only the head of the file is read (no decode), so asking for every member of a group is cheap.

RAW: most camera RAWs (DNG, NEF, ARW, PEF, SRW...) open with a plain TIFF header and differ only
deep inside, so for those the extension is trusted when the bytes are TIFF. The few RAWs with a
signature of their own (CR2, CR3, CRW, RAF, ORF, RW2) are named from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import lru_cache

HEAD_BYTES = 32  # enough for every binary signature below (the ftyp box's first brands too)
TEXT_BYTES = 1024  # SVG only: an XML prolog or comment may come before "<svg"

# Canonical extension -> display name. Aliases map onto these, so ".jpeg" and ".jpg" agree.
NAMES = {
    ".jpg": "JPEG", ".png": "PNG", ".webp": "WebP", ".gif": "GIF", ".bmp": "BMP", ".tif": "TIFF",
    ".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF", ".jxl": "JPEG XL", ".ppm": "PPM", ".pgm": "PGM",
    ".pbm": "PBM", ".pam": "PAM", ".svg": "SVG", ".cr2": "Canon CR2", ".cr3": "Canon CR3", ".crw": "Canon CRW",
    ".raf": "Fujifilm RAF", ".orf": "Olympus ORF", ".rw2": "Panasonic RW2", ".dng": "DNG", ".nef": "Nikon NEF",
    ".nrw": "Nikon NRW", ".arw": "Sony ARW", ".srf": "Sony SRF", ".sr2": "Sony SR2", ".pef": "Pentax PEF",
    ".srw": "Samsung SRW", ".kdc": "Kodak KDC", ".dcr": "Kodak DCR", ".gpr": "GoPro GPR", ".3fr": "Hasselblad 3FR",
    ".iiq": "Phase One IIQ", ".erf": "Epson ERF", ".mef": "Mamiya MEF", ".mos": "Leaf MOS", ".rwl": "Leica RWL",
}  # fmt: skip
ALIASES = {".jpeg": ".jpg", ".jpe": ".jpg", ".jfif": ".jpg", ".tiff": ".tif", ".dib": ".bmp", ".pnm": ".ppm"}
# RAWs whose bytes start as a plain TIFF: the content cannot tell them apart in a few bytes.
TIFF_BASED_RAW = frozenset(".dng .nef .nrw .arw .srf .sr2 .pef .srw .kdc .dcr .gpr .3fr .iiq .erf .mef .mos .rwl".split())
# Same container, either name is honest (Apple writes .heic, others .heif for the same brands).
SAME_FAMILY = ({".heic", ".heif"},)

_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"mif1", b"msf1", b"mif2"}  # generic: the compatible brands say what is inside
_BMP_HEADERS = {12, 16, 40, 52, 56, 64, 108, 124}  # DIB header sizes: "BM" alone is too weak a signature


@dataclass(frozen=True)
class FileFormat:
    ext: str  # canonical extension of the content, e.g. ".jpg" (the name's own when unrecognised)
    name: str  # for people: "JPEG"
    named: str  # the file name's extension, lower case ("" when none)
    lies: bool  # the name's extension says another format than the bytes
    lossless: bool | None = None  # WebP only (it is either): True for VP8L, False for VP8; None elsewhere

    def label(self) -> str:
        """For people: "JPEG", or "JPEG (named .png)" when the extension lies."""
        if not self.lies:
            return self.name
        return f"{self.name} (named {self.named})" if self.named else f"{self.name} (no extension)"


def canonical(ext: str) -> str:
    ext = ext.lower()
    return ALIASES.get(ext, ext)


def display_name(ext: str) -> str:
    ext = canonical(ext)
    return NAMES.get(ext, ext.lstrip(".").upper() or "—")


def sniff(head: bytes) -> str | None:
    """Canonical extension of the format these leading bytes start, or None when unknown.
    A plain TIFF header answers ".tif" (a TIFF-based RAW is told apart by the caller's extension)."""
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    if head[:2] == b"II" and head[6:14] == b"HEAPCCDR":
        return ".crw"
    if head.startswith(b"FUJIFILMCCD-RAW"):
        return ".raf"
    if head[:4] in (b"IIRO", b"IIRS", b"MMOR"):
        return ".orf"
    if head[:4] == b"IIU\x00":
        return ".rw2"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # TIFF, BigTIFF
        return ".cr2" if head[8:11] == b"CR\x02" else ".tif"
    if head[4:8] == b"ftyp":
        return _iso_brand(head)
    if head.startswith((b"\x00\x00\x00\x0cJXL \r\n\x87\n", b"\xff\x0a")):
        return ".jxl"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_HEADERS:
        return ".bmp"
    if len(head) >= 3 and head[0:1] == b"P" and head[2:3] in b" \t\r\n#":
        return {b"1": ".pbm", b"4": ".pbm", b"2": ".pgm", b"5": ".pgm", b"3": ".ppm", b"6": ".ppm", b"7": ".pam"}.get(head[1:2])
    return None


def _iso_brand(head: bytes) -> str | None:
    """HEIC / HEIF / AVIF / CR3: the ftyp box's major brand, then its compatible brands."""
    major = head[8:12]
    box = int.from_bytes(head[:4], "big")
    compatible = [head[i : i + 4] for i in range(16, min(box, len(head)) - 3, 4)]
    if major == b"crx ":
        return ".cr3"
    for brand in [major, *compatible]:
        if brand in _AVIF_BRANDS:
            return ".avif"
        if brand in _HEIC_BRANDS:
            return ".heic"
    return ".heif" if major in _HEIF_BRANDS or _HEIF_BRANDS & set(compatible) else None


def _is_svg(text: bytes) -> bool:
    text = text.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(b"<") and b"<svg" in text


def _honest(named: str, content: str) -> bool:
    return named == content or any({named, content} <= family for family in SAME_FAMILY)


def detect(path: str, head: bytes) -> FileFormat:
    """The format of a file whose first bytes are ``head`` (HEAD_BYTES, or TEXT_BYTES for SVG)."""
    named = os.path.splitext(path)[1].lower()
    ext_named = canonical(named)
    content = sniff(head)
    if content is None and _is_svg(head):
        content = ".svg"
    if content == ".tif" and ext_named in TIFF_BASED_RAW:
        content = ext_named  # a TIFF header is what these RAWs start with: the name is believed
    if content is None:  # unrecognised or unreadable (e.g. a headerless Kodak .raw): all we know is the name
        return FileFormat(ext_named, display_name(ext_named), named, False)
    return FileFormat(content, NAMES[content], named, not _honest(ext_named, content))


def file_format(path: str, size: int | None = None, mtime_ns: int | None = None) -> FileFormat:
    """The real format of the file at ``path``. Pass its catalogued size and mtime to skip a stat;
    answers are cached per (path, size, mtime), so an edited or replaced file is read again."""
    if size is None or mtime_ns is None:
        try:
            st = os.stat(path)
            size, mtime_ns = st.st_size, st.st_mtime_ns
        except OSError:
            size, mtime_ns = -1, -1
    return _cached(path, size, mtime_ns)


# ~300 bytes an entry: room for every member of a big scan's groups, which the scan's worker reads
# ahead so the duplicates page finds them here (lru_cache is safe to share between threads).
@lru_cache(maxsize=16384)
def _cached(path: str, size: int, mtime_ns: int) -> FileFormat:
    lossless = None
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
            if sniff(head) is None and head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
                head += fh.read(TEXT_BYTES - HEAD_BYTES)  # text: read on to find "<svg"
            elif sniff(head) == ".webp":
                lossless = webp_lossless(fh)
    except OSError:
        head = b""  # gone or unreadable: fall back to the name
    found = detect(path, head)
    return replace(found, lossless=lossless) if found.ext == ".webp" else found


WEBP_MAX_CHUNKS = 64


def webp_lossless(fh) -> bool | None:
    """Is this WebP lossless (a VP8L image) or lossy (VP8)? None when neither shows up. A plain WebP
    names it in its first chunk; an extended one (VP8X: EXIF, ICC, alpha) after the chunks ahead of
    the image, which are skipped by their sizes, not read."""
    fh.seek(12)
    for _ in range(WEBP_MAX_CHUNKS):
        header = fh.read(8)
        if len(header) < 8:
            return None
        kind, length = header[:4], int.from_bytes(header[4:], "little")
        if kind == b"VP8L":
            return True
        if kind == b"VP8 ":
            return False
        fh.seek(length + (length & 1), os.SEEK_CUR)  # chunks are padded to an even size
    return None
