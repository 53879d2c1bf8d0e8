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


def neighbours_by_backbone(
    data_dir, path: str, k: int = 10, models: list[str] | None = None, device: str = "auto"
) -> list[BackboneNeighbours]:
    """``path``'s k nearest photos under each backbone in ``models`` (None: every installed one)."""
    data_dir = paths.data_dir(data_dir)
    specs = {s.name: s for s in list_models(data_dir)}
    wanted = [s.name for s in specs.values() if s.installed] if models is None else list(models)
    with Catalog(data_dir / CATALOG_NAME) as catalog:
        stats = catalog.stats()
    photos = stats["files"] - stats["errors"]
    out = []
    for name in wanted:
        spec = specs.get(name)
        if spec is None:
            out.append(BackboneNeighbours(name, name, None, f"unknown model; known: {', '.join(specs)}"))
        elif not spec.installed:
            out.append(BackboneNeighbours(name, spec.title, None, f"not installed; add it with: {spec.install_hint}"))
        elif not stats["embeddings"].get(name):
            out.append(
                BackboneNeighbours(
                    name, spec.title, None, f"library not indexed with {spec.title} yet: choose it as the backbone and index"
                )
            )
        else:
            out.append(_search(data_dir, spec, path, k, device, stats["embeddings"][name], photos))
    return out


def _search(data_dir, spec, path: str, k: int, device: str, embedded: int, photos: int) -> BackboneNeighbours:
    try:
        with Engine(data_dir, model=spec.name, device=device) as engine:
            found = engine.similar(path, k)
    except (DecodeError, ModelError) as exc:
        return BackboneNeighbours(spec.name, spec.title, None, f"{os.path.basename(path)}: {exc}")
    except OSError as exc:
        return BackboneNeighbours(spec.name, spec.title, None, f"{os.path.basename(path)}: cannot read file: {exc.strerror or exc}")
    note = f"only {embedded} of {photos} photos indexed with {spec.title} so far" if embedded < photos else ""
    return BackboneNeighbours(spec.name, spec.title, [(r.path, r.score) for r in found], note)
