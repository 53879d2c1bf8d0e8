"""Back and forward between searches behave like a browser's history."""

from __future__ import annotations

from imgsim_desktop.ui.search_history import Search, SearchHistory


def test_a_new_search_drops_the_forward_part_and_a_refresh_replaces_in_place():
    history = SearchHistory()
    assert not history and history.current is None
    for q in ("a", "b", "c"):
        history.add(Search(q, []))
    assert history.back().query == "b" and history.can_go_forward()
    history.add(Search("b2", []), replace=True)  # same search re-run (k changed): c stays ahead
    assert history.current.query == "b2" and history.forward().query == "c"
    history.back()
    history.add(Search("d", []))  # a new search from b2: c is gone
    assert history.current.query == "d" and not history.can_go_forward()
    assert history.back().query == "b2" and history.back().query == "a" and not history.can_go_back()
