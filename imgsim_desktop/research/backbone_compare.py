"""One photo's nearest neighbours under every installed backbone, for side-by-side comparison.

Only what the library already holds is searched: a backbone the library was never indexed with
gets a note saying so, never a silent indexing run over the user's photos.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from imgsim_desktop import paths
from imgsim_desktop.core.backbones import ModelError, list_models
from imgsim_desktop.core.decode import DecodeError
from imgsim_desktop.core.engine import CATALOG_NAME, Engine
from imgsim_desktop.storage.catalog import Catalog


@dataclass
class BackboneNeighbours:
    model: str
    title: str
    results: list[tuple[str, float]] | None  # (path, cosine similarity), best first; None when not searchable
    note: str  # why there are no results, or a caveat about them ("" when there is nothing to say)
    needs_indexing: bool = False  # no results only because the library is not indexed with it yet


def neighbours_by_backbone(
    data_dir, path: str, k: int = 10, models: list[str] | None = None, device: str = "auto"
) -> list[BackboneNeighbours]:
    """``path``'s k nearest photos under each backbone in ``models`` (None: every installed one)."""
    with BackboneSearch(data_dir, models, device) as search:
        return search.neighbours(path, k)


class BackboneSearch:
    """One engine per backbone, kept open across queries: a report asks about many photos, and each
    engine loads its model and the library's vectors once."""

    def __init__(self, data_dir, models: list[str] | None = None, device: str = "auto") -> None:
        self.data_dir = paths.data_dir(data_dir)
        self.device = device
        self.specs = {s.name: s for s in list_models(self.data_dir)}
        self.wanted = [s.name for s in self.specs.values() if s.installed] if models is None else list(models)
        with Catalog(self.data_dir / CATALOG_NAME) as catalog:
            stats = catalog.stats()
        self.embedded: dict[str, int] = stats["embeddings"]
        self.photos = stats["files"] - stats["errors"]
        self._engines: dict[str, Engine] = {}

    def __enter__(self) -> BackboneSearch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close()
        self._engines.clear()

    def neighbours(self, path: str, k: int) -> list[BackboneNeighbours]:
        return [self._one(name, path, k) for name in self.wanted]

    def _one(self, name: str, path: str, k: int) -> BackboneNeighbours:
        spec = self.specs.get(name)
        if spec is None:
            return BackboneNeighbours(name, name, None, f"unknown model; known: {', '.join(self.specs)}")
        if not spec.installed:
            return BackboneNeighbours(name, spec.title, None, f"not installed; add it with: {spec.install_hint}")
        embedded = self.embedded.get(name, 0)
        if not embedded:
            return BackboneNeighbours(
                name, spec.title, None, f"library not indexed with {spec.title} yet: choose it as the backbone and index", needs_indexing=True
            )
        try:
            if name not in self._engines:
                self._engines[name] = Engine(self.data_dir, model=name, device=self.device)
            found = self._engines[name].similar(path, k)
        except (DecodeError, ModelError) as exc:
            return BackboneNeighbours(name, spec.title, None, f"{os.path.basename(path)}: {exc}")
        except OSError as exc:
            return BackboneNeighbours(name, spec.title, None, f"{os.path.basename(path)}: cannot read file: {exc.strerror or exc}")
        note = f"only {embedded} of {self.photos} photos indexed with {spec.title} so far" if embedded < self.photos else ""
        return BackboneNeighbours(name, spec.title, [(r.path, r.score) for r in found], note)
