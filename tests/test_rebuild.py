"""Background Annoy rebuilds: queries during a build stay correct and the new generation is swapped in whole."""

from __future__ import annotations

import time

import numpy as np

from conftest import copy_photos
from imgsim_desktop.core import search as search_mod
from imgsim_desktop.core.engine import Engine
from imgsim_desktop.core.library_service import index_now
from imgsim_desktop.core.rebuilder import IndexRebuilder
from imgsim_desktop.storage import annoy_store


def test_queries_during_a_background_rebuild_return_correct_results(tmp_path, data_dir, lite0, monkeypatch):
    monkeypatch.setattr(search_mod, "EXACT_LIMIT", 10)  # use Annoy + delta on a small library
    monkeypatch.setattr(search_mod, "REBUILD_MIN", 1)
    lib = tmp_path / "lib"
    copy_photos(lib / "a", [f"aib/{i}.jpg" for i in range(30)])
    with Engine(data_dir) as engine:
        engine._backbone = lite0
        index_now(engine, [str(lib)])
        searcher = engine.searcher
        first = searcher.ann.loaded.generation
        # Changes since that build: 10 new photos (the delta) and 4 deleted ones (stale in the index).
        copy_photos(lib / "b", [f"aib/{i}.jpg" for i in range(30, 40)])
        index_now(engine, [str(lib)], rebuild=False)
        deleted = [str(lib / "a" / f"{i}.jpg") for i in range(4)]
        engine.catalog.remove_files(deleted)
        searcher.refresh()
        assert len(searcher.ann.delta_ids) == 10 and len(searcher.ann.stale) == 4

        # Feed the build slowly, so the new generation's file is half-written for a while.
        real_build = annoy_store.AnnoyStore.build

        def slow_build(self, chunks, *args, **kwargs):
            def trickle():
                for ids, vecs in chunks:
                    for i in range(len(ids)):
                        time.sleep(0.02)
                        yield ids[i : i + 1], vecs[i : i + 1]

            return real_build(self, trickle(), *args, **kwargs)

        monkeypatch.setattr(annoy_store.AnnoyStore, "build", slow_build)
        live = engine.catalog.vector_ids_for_paths(engine.spec.name, [p.path for p in engine.catalog.photos(engine.spec.name)])
        vectors = {path: engine.catalog.vector_for_path(engine.spec.name, path)[1] for path in live}
        done: list[dict] = []
        rebuilder = IndexRebuilder(searcher, on_done=done.append)
        assert rebuilder.maybe_start() and not rebuilder.maybe_start()  # one build at a time

        def check_all() -> int:
            for path, vector in vectors.items():
                hits = searcher.similar_to_vector(vector, 5)
                assert hits[0].path == path and hits[0].score > 0.999
                assert not {h.path for h in hits} & set(deleted)
                assert len(hits) == 5
            return len(vectors)

        queries = 0
        while rebuilder.running:
            queries += check_all()
        assert queries >= 3 * len(vectors)  # many queries really ran while the build was in progress
        assert rebuilder.wait(5) and done and done[0]["generation"] == first + 1
        ann = searcher.ann
        assert ann.loaded.generation == first + 1 and len(ann.delta_ids) == 0 and not ann.stale
        assert np.array_equal(np.sort(ann.loaded.ids), np.sort(np.array(list(live.values()))))
        check_all()
