"""A new library is opened by several connections at once (the window reads while its library
service creates the catalog; a CLI command may start beside the app): none of them fails."""

from __future__ import annotations

import threading

from imgsim_desktop.storage.catalog import Catalog


def test_a_new_catalog_opened_from_several_threads_at_once_opens_in_each(tmp_path):
    failures: list[str] = []
    for round_ in range(300):  # the clash is a narrow window: before the fix about 1 round in 100 hit it
        path = tmp_path / f"library{round_}" / "catalog.sqlite3"
        start = threading.Barrier(4)

        def open_it(path=path, start=start) -> None:
            start.wait()
            try:
                with Catalog(path) as catalog:
                    catalog.roots()
            except Exception as exc:  # noqa: BLE001 - every failure is what this test reports
                failures.append(repr(exc))

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
