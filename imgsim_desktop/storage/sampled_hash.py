"""A cheap identity of a big file: BLAKE2 of its size, head, tail and evenly spaced slices.

Shared by the content fingerprint (core.fingerprint: is this moved photo one we know?) and the
search index's checksum (storage.annoy_store: is this index file the one we built?). Small files
are hashed whole.
"""

from __future__ import annotations

import hashlib
import os


def sampled_digest(path: str | os.PathLike, edge: int, piece: int, pieces: int, size: int | None = None, whole_limit: int | None = None) -> str:
    """Hex BLAKE2 (16 bytes) of ``path``: whole up to ``whole_limit`` bytes (default: when the
    samples would cover it anyway), else the first and last ``edge`` bytes and ``pieces`` slices
    of ``piece`` bytes between them. Raises OSError if unreadable."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        if size is None:
            size = os.fstat(fh.fileno()).st_size
        digest.update(size.to_bytes(8, "little"))
        if size <= (whole_limit if whole_limit is not None else 2 * edge + pieces * piece):
            digest.update(fh.read())
            return digest.hexdigest()
        digest.update(fh.read(edge))
        step = (size - 2 * edge) // (pieces + 1)
        for n in range(1, pieces + 1):
            fh.seek(edge + n * step)
            digest.update(fh.read(piece))
        fh.seek(size - edge)
        digest.update(fh.read(edge))
    return digest.hexdigest()
