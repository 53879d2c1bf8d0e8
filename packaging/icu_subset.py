"""A smaller ICU data library for the Linux bundle: only the ICU data Qt can reach.

PySide6's Linux wheels link QtCore against ICU, whose data library (libicudata.so.NN) is 32 MB:
one symbol, ``icudtNN_dat``, holding ICU's "common data" package of ~3,900 items. QtCore calls
only a few ICU services (read from its undefined symbols, Qt 6.11 / ICU 73):

- ``ucol_*`` (QCollator: locale-aware sorting, e.g. in file dialogs) -> the ``coll/`` tree, kept whole;
- ``u_strToUpper/Lower`` (QLocale::toUpper/toLower) -> case data compiled into libicuuc, no items;
- ``ucal_*`` (QTimeZone's ICU backend: canonical IDs, display names) -> zoneinfo64, metaZones and the
  other top-level tables, kept; the per-language time-zone *names* (``zone/``) go except its root,
  so a name falls back to the "GMT+01:00" form;
- ``ucnv_*`` (QStringConverter, only for encodings other than UTF-8/16/32 and Latin-1: Qt 6 uses
  UTF-8 for file names, settings, D-Bus and the clipboard) -> the alias table and the small
  single-byte tables (ISO-8859-x, Windows-125x, KOI8, DOS and Mac code pages) are kept; the
  multi-byte CJK and EBCDIC tables (> 16 KB each) go, and opening one of those fails cleanly.

Nothing in Qt reaches break iteration (``brkitr/``, with 3 MB of Thai/CJK dictionaries),
transliteration, number spelling (``rbnf/``), unit, currency, language or region display names,
character names, StringPrep/IDNA profiles or the spoof checker: those go. The per-locale
top-level bundles (calendar and locale fallback data) and normalisation data stay.

The package is rewritten (its table of contents filtered) and wrapped into a shared library with
the same soname and symbol, built with the system C compiler. Standard library only.
"""

from __future__ import annotations

import re
import struct
import subprocess
import tempfile
from pathlib import Path

DROP_TREES = {"brkitr", "curr", "lang", "rbnf", "region", "translit", "unit"}
KEEP_IN_ZONE = {"root.res", "pool.res", "res_index.res"}  # names fall back to root's GMT format
DROP_TOP = re.compile(r"(\.spp|\.cfu|^unames\.icu)$")
MAX_CONVERTER_BYTES = 16 * 1024


def keep_item(name: str, size: int) -> bool:
    """Whether the ICU item ``name`` ("icudt73l/coll/de.res") of ``size`` bytes stays."""
    parts = name.split("/")[1:]
    if len(parts) == 2:
        tree, leaf = parts
        if tree in DROP_TREES:
            return False
        return tree != "zone" or leaf in KEEP_IN_ZONE
    leaf = parts[-1]
    if DROP_TOP.search(leaf):
        return False
    return not leaf.endswith(".cnv") or size <= MAX_CONVERTER_BYTES


# --- ELF: find the data symbol's bytes ------------------------------------------------------------


def read_data_symbol(lib: Path) -> tuple[str, bytes]:
    """(symbol name, bytes) of the ``icudtNN_dat`` symbol of a little-endian ELF64 library."""
    elf = lib.read_bytes()
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise ValueError(f"{lib}: not a little-endian ELF64 file")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if kind != 11:  # SHT_DYNSYM
            continue
        strtab = sections[link][4]
        for pos in range(offset, offset + size, entsize):
            st_name, _st_info, _st_other, st_shndx, st_value, st_size = struct.unpack_from("<IBBHQQ", elf, pos)
            name = elf[strtab + st_name : elf.index(b"\0", strtab + st_name)].decode()
            if re.fullmatch(r"icudt\d+_dat", name) and st_shndx:
                home = sections[st_shndx]
                start = home[4] + st_value - home[3]
                return name, elf[start : start + st_size]
    raise ValueError(f"{lib}: no icudtNN_dat symbol")


# --- ICU common data package ("CmnD") ------------------------------------------------------------


def parse_package(blob: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """(header, [(item name, item bytes)]) of an ICU common data package, in table order."""
    header_size, magic1, magic2 = struct.unpack_from("<HBB", blob, 0)
    if (magic1, magic2) != (0xDA, 0x27) or blob[12:16] != b"CmnD" or blob[8] != 0:
        raise ValueError("not a little-endian ICU common data package")
    toc = blob[header_size:]
    count, = struct.unpack_from("<I", toc, 0)
    entries = [struct.unpack_from("<II", toc, 4 + 8 * i) for i in range(count)]
    items = []
    for i, (name_at, data_at) in enumerate(entries):
        end = entries[i + 1][1] if i + 1 < count else len(toc)
        items.append((toc[name_at : toc.index(b"\0", name_at)].decode("ascii"), toc[data_at:end]))
    return blob[:header_size], items


def write_package(header: bytes, items: list[tuple[str, bytes]]) -> bytes:
    """The package again: table (count, then name/data offsets from the table's start), the names,
    then each item on a 16-byte boundary, in the given (sorted: ICU binary-searches it) order.
    Given every item, it reproduces ICU's own package byte for byte."""
    names = b"".join(name.encode("ascii") + b"\0" for name, _ in items)
    table_size = 4 + 8 * len(items)
    data_at = -(-(table_size + len(names)) // 16) * 16
    offsets, body = [], bytearray()
    name_at = table_size
    for name, data in items:
        offsets.append((name_at, data_at + len(body)))
        name_at += len(name) + 1
        body += data + b"\xaa" * (-len(data) % 16)
    table = struct.pack("<I", len(items)) + b"".join(struct.pack("<II", *o) for o in offsets)
    return header + table + names + b"\xaa" * (data_at - table_size - len(names)) + bytes(body)  # pkgdata pads with 0xaa


# --- the replacement library ---------------------------------------------------------------------


def build_library(symbol: str, package: bytes, soname: str, out: Path, cc: str = "cc") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "icudata.bin"
        data.write_bytes(package)
        source = Path(tmp) / "icudata.S"
        source.write_text(
            f'\t.section .rodata\n\t.globl {symbol}\n\t.type {symbol}, %object\n\t.balign 16\n{symbol}:\n'
            f'\t.incbin "{data}"\n\t.size {symbol}, . - {symbol}\n\t.section .note.GNU-stack,"",%progbits\n'
        )
        subprocess.run([cc, "-shared", "-nostdlib", f"-Wl,-soname,{soname}", "-Wl,-z,noexecstack", "-o", str(out), str(source)], check=True)


def reduce_library(lib: Path, out: Path, cc: str = "cc") -> dict:
    """Write a copy of ICU's data library ``lib`` to ``out`` holding only the items Qt can use."""
    symbol, blob = read_data_symbol(lib)
    header, items = parse_package(blob)
    kept = [(name, data) for name, data in items if keep_item(name, len(data))]
    package = write_package(header, kept)
    if parse_package(package)[1] != kept:
        raise AssertionError("the rewritten ICU package does not read back")
    build_library(symbol, package, lib.name, out, cc)
    if read_data_symbol(out) != (symbol, package):
        raise AssertionError(f"{out} does not carry the package it was built from")
    return {"items": len(items), "kept": len(kept), "bytes_before": lib.stat().st_size, "bytes_after": out.stat().st_size}


# --- proof that Qt's ICU calls still work ---------------------------------------------------------


def check_library(data_lib: Path, icu_dir: Path) -> list[str]:
    """Load ``data_lib`` in place of ICU's data, with ICU's code from ``icu_dir``, and make the
    calls QtCore makes; returns what failed. Run it in a fresh process (``--check``): a process
    that already holds an ICU data library would resolve the soname to that one."""
    import ctypes

    version = re.fullmatch(r"icudt(\d+)_dat", read_data_symbol(data_lib)[0]).group(1)
    ctypes.CDLL(str(data_lib), mode=ctypes.RTLD_GLOBAL)  # the sonames below now resolve to it
    uc = ctypes.CDLL(str(icu_dir / f"libicuuc.so.{version}"), mode=ctypes.RTLD_GLOBAL)
    i18n = ctypes.CDLL(str(icu_dir / f"libicui18n.so.{version}"))

    def fn(lib, name, restype=ctypes.c_void_p):
        f = getattr(lib, f"{name}_{version}")
        f.restype = restype
        return f

    def uchars(text: str):
        raw = text.encode("utf-16-le")
        return (ctypes.c_uint16 * (len(raw) // 2 + 1)).from_buffer_copy(raw + b"\0\0"), len(raw) // 2

    failed = []
    status = ctypes.c_int(0)

    def ok(what: str, result) -> bool:
        good = bool(result) and status.value <= 0  # negative values are warnings (e.g. fallback used)
        if not good:
            failed.append(f"{what}: status {status.value}")
        status.value = 0
        return good

    strcoll = fn(i18n, "ucol_strcoll", ctypes.c_int)
    for locale, sign in (("sv", 1), ("de", -1)):  # Swedish sorts Ä after Z, German with A
        collator = fn(i18n, "ucol_open")(locale.encode(), ctypes.byref(status))
        if ok(f"ucol_open({locale})", collator):
            a, b = uchars("Äpfel"), uchars("Zebra")
            if strcoll(ctypes.c_void_p(collator), a[0], a[1], b[0], b[1]) != sign:
                failed.append(f"collation order of {locale} is wrong")
            fn(i18n, "ucol_close", None)(ctypes.c_void_p(collator))
    for name in ("windows-1252", "ISO-8859-2", "KOI8-R"):
        converter = fn(uc, "ucnv_open")(name.encode(), ctypes.byref(status))
        if ok(f"ucnv_open({name})", converter):
            fn(uc, "ucnv_close", None)(ctypes.c_void_p(converter))
    zone = uchars("Europe/Berlin")
    calendar = fn(i18n, "ucal_open")(zone[0], zone[1], b"de_DE", 1, ctypes.byref(status))  # UCAL_GREGORIAN
    if ok("ucal_open(Europe/Berlin, de_DE)", calendar):
        fn(i18n, "ucal_close", None)(ctypes.c_void_p(calendar))
    out, source = (ctypes.c_uint16 * 8)(), uchars("i")
    length = fn(uc, "u_strToUpper", ctypes.c_int)(out, 8, source[0], source[1], b"tr", ctypes.byref(status))
    if ok("u_strToUpper(tr)", length) and bytes(out)[: 2 * length].decode("utf-16-le") != "\u0130":
        failed.append("Turkish upper case of i is not İ")
    return failed


if __name__ == "__main__":
    import sys

    if sys.argv[1] == "--check":
        problems = check_library(Path(sys.argv[2]), Path(sys.argv[3]))
        print("\n".join(problems) or "ICU calls work")
        sys.exit(1 if problems else 0)
    print(reduce_library(Path(sys.argv[1]), Path(sys.argv[2])))
