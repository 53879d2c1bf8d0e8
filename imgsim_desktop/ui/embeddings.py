"""Read two photos' embeddings from the catalog and say how alike they are: the duplicates page
shows each photo's likeness to the one kept, which the scan (measuring against each group's first
photo) does not hand over. A few rows per group, read when a group is shown."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from imgsim_desktop.paths import Layout
from imgsim_desktop.storage.catalog import Catalog, CatalogError


class EmbeddingReader:
    def __init__(self, data_dir: Path) -> None:
        self._path = Layout(data_dir).catalog
        self._catalog: Catalog | None = None

    def similarity(self, model: str, a: str, b: str) -> float | None:
        """Cosine similarity of ``a`` and ``b`` under ``model``; None when either has no embedding."""
        try:
            if self._catalog is None:
                self._catalog = Catalog(self._path)
            va, vb = self._catalog.vector_for_path(model, a), self._catalog.vector_for_path(model, b)
        except (CatalogError, OSError, sqlite3.Error):
            return None
        if va is None or vb is None:
            return None
        x, y = va[1].astype(np.float64), vb[1].astype(np.float64)
        norm = float(np.linalg.norm(x) * np.linalg.norm(y))
        return float(x @ y) / norm if norm else None

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None
