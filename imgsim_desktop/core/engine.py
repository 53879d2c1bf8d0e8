"""One library = a data dir (catalog + indexes) + a model. The CLI and the GUI both drive this."""

from __future__ import annotations

import os
from pathlib import Path

from imgsim_desktop import paths
from imgsim_desktop.core.backbones import Backbone, ModelSpec, get_model
from imgsim_desktop.core.indexer import Indexer
from imgsim_desktop.core.search import Result, Searcher
from imgsim_desktop.storage.catalog import Catalog
from imgsim_desktop.storage.feature_cache import FeatureCache

CATALOG_NAME = paths.Layout.CATALOG


class LazyBackbone:
    """The backbone as the searcher and the indexer see it: its spec at once, its ONNX session
    only when a photo must be embedded. A library search, a duplicate scan and an indexing run
    that finds nothing new read stored vectors and never pay for loading a model (nor fail on a
    damaged one)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.spec = engine.spec

    @property
    def loaded(self) -> bool:
        return self._engine._backbone is not None

    @property
    def provider(self) -> str:
        return self._engine.backbone.provider

    def embed(self, batch):
        return self._engine.backbone.embed(batch)


class Engine:
    def __init__(self, data_dir: str | os.PathLike | None = None, model: str | None = None, device: str = "auto", threads: int | None = None) -> None:
        self.data_dir = paths.data_dir(data_dir)
        self.catalog = Catalog(self.data_dir / CATALOG_NAME)
        self.catalog.backup_if_due()  # folders and cleanup history survive a damaged catalog
        self.index_dir = paths.Layout(self.data_dir).indexes
        self.spec: ModelSpec = get_model(model, self.data_dir)
        self.device = device
        self.threads = threads
        self._backbone: Backbone | None = None
        self._searcher: Searcher | None = None
        self.on_backbone_loaded = None  # called with the provider ("CUDA" or "CPU") once a session is loaded

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def backbone(self) -> Backbone:
        if self._backbone is None:
            self._backbone = Backbone(self.spec, device=self.device, threads=self.threads)
            if self.on_backbone_loaded:
                self.on_backbone_loaded(self._backbone.provider)
        return self._backbone

    @property
    def searcher(self) -> Searcher:
        if self._searcher is None:
            self._searcher = Searcher(self.catalog, self.index_dir, LazyBackbone(self))
        return self._searcher

    def indexer(self, **options) -> Indexer:
        """An Indexer for this library that also stores each photo's duplicate-check features; the
        model is loaded when the first photo needs embedding."""
        return Indexer(self.catalog, LazyBackbone(self), features=FeatureCache.beside(self.catalog.path), **options)

    def similar(self, image: str | Path, k: int = 10) -> list[Result]:
        return self.searcher.similar_to_file(image, k)
