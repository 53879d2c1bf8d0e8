"""Back and forward between "Find similar" searches, like a browser's history."""

from __future__ import annotations

from dataclasses import dataclass

from imgsim_desktop.ui.photo_model import Item


@dataclass
class Search:
    query: str
    items: list[Item]  # the query pinned first, then its neighbours by rank
    note: str = ""  # what the results page says about it (only part of the library searched, say)


class SearchHistory:
    def __init__(self) -> None:
        self._searches: list[Search] = []
        self._pos = -1

    def __bool__(self) -> bool:
        return bool(self._searches)

    @property
    def current(self) -> Search | None:
        return self._searches[self._pos] if self._searches else None

    def add(self, search: Search, replace: bool = False) -> None:
        """A new search drops what was ahead of the current one; ``replace`` refreshes the current one."""
        if replace and self._searches:
            self._searches[self._pos] = search
            return
        del self._searches[self._pos + 1 :]
        self._searches.append(search)
        self._pos = len(self._searches) - 1

    def can_go_back(self) -> bool:
        return self._pos > 0

    def can_go_forward(self) -> bool:
        return self._pos < len(self._searches) - 1

    def back(self) -> Search:
        self._pos -= 1
        return self._searches[self._pos]

    def forward(self) -> Search:
        self._pos += 1
        return self._searches[self._pos]
