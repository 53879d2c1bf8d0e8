"""Duplicate groups as rows, their photos beneath: tick a photo to remove it.

The tree keeps which paths are ticked itself (not only in the widgets), so switching tiers or
re-filling after a cleanup never loses or invents a choice. Photos in protected folders cannot
be ticked at all.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem

from imgsim_desktop.core import cleanup_plan, companions, keeper
from imgsim_desktop.core.best_shot import best_shot
from imgsim_desktop.core.cleanup import inside
from imgsim_desktop.core.duplicates import Group
from imgsim_desktop.storage.catalog import PhotoRow
from imgsim_desktop.ui.text import format_tooltip, human_size, photo_format, readable, resolution, taken

TIER_TITLES = {"exact": "Exact copies", "duplicate": "Duplicates", "similar": "Similar shots"}
COLUMNS = ["Photo", "Suggestion", "Resolution", "Size", "Format", "Taken", "Folder", "Similarity"]
FOLDER, SIMILARITY = 6, 7
ICON = 56  # logical pixels
PathRole = Qt.ItemDataRole.UserRole + 1


class GroupTree(QTreeWidget):
    selection_changed = Signal()  # ticks changed: the page updates its summary
    thumbnail_wanted = Signal(str, object, int)  # path, mtime_ns (64-bit: not a Qt int), edge in device pixels

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(COLUMNS)
        self.setIconSize(QSize(ICON, ICON))
        self.setUniformRowHeights(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.header().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.header().setStretchLastSection(False)
        self.header().setSectionResizeMode(FOLDER, QHeaderView.ResizeMode.Stretch)  # the spare width goes to the folders
        self.header().resizeSection(0, 300)
        self.headerItem().setToolTip(SIMILARITY, "How alike each photo is to the one kept (cosine similarity of their embeddings)")
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # folders differ at their end, not their start
        self.groups: list[Group] = []
        self.rows: dict[str, PhotoRow] = {}
        self.ticked: set[str] = set()
        self.protected: list[str] = []
        self.tiers: tuple[str, ...] = ("exact", "duplicate")
        self.shown: list[Group] = []  # the groups of the tiers on screen, in row order
        self.best_shots: dict = {}  # id(group) -> best_shot.Pick, for the similar-shot groups on screen
        self._items: dict[str, QTreeWidgetItem] = {}
        self._filling = False
        self._asked: set[str] = set()  # thumbnails requested (or shown) for the current rows
        self._tops: dict[str, list[QTreeWidgetItem]] = {}  # keeper path -> the group rows that show its thumbnail
        # (a, b) -> cosine of their embeddings, or None; set by the window. Without it the column
        # says how alike each photo is to the group's first photo, as the scan measured.
        self.similarity = None
        blank = QPixmap(ICON, ICON)
        blank.fill(Qt.GlobalColor.transparent)
        self._placeholder = QIcon(blank)
        self.itemChanged.connect(self._item_changed)
        # Thumbnails are asked for the rows on screen only: the loader serves the newest requests
        # and drops the oldest, so asking for thousands at once would starve the visible ones.
        self._ask_timer = QTimer(self, singleShot=True, interval=30, timeout=self._ask_visible)
        self.verticalScrollBar().valueChanged.connect(self._ask_timer.start)
        self.itemExpanded.connect(self._ask_timer.start)

    # --- content -------------------------------------------------------------------------------

    def fill(self, groups: list[Group], rows: dict[str, PhotoRow], rules: keeper.KeeperRules) -> None:
        """Show ``groups``; ticks start from the keeper rules for duplicates, empty for similar shots."""
        self.groups, self.rows, self.protected = groups, rows, list(rules.protected_folders)
        self.ticked = set()
        for group in groups:
            if group.tier != "similar":
                self.ticked |= self.suggested(group, rules)
        self._rebuild()

    def suggested(self, group: Group, rules: keeper.KeeperRules) -> set[str]:
        return cleanup_plan.suggested([group], self.rows, rules, [group.tier])  # the CLI's --apply picks the same

    def apply_rules(self, rules: keeper.KeeperRules, tiers: tuple[str, ...]) -> None:
        """Tick the suggested copies in the groups of ``tiers`` (the user asked for it)."""
        self.protected = list(rules.protected_folders)
        for group in self.groups:
            if group.tier in tiers:
                paths = {m.path for m in group.members}
                self.ticked = (self.ticked - paths) | self.suggested(group, rules)
        self._rebuild()

    def clear_ticks(self) -> None:
        self.ticked = set()
        self._rebuild()

    def forget(self, paths: set[str]) -> None:
        """Photos that left the groups (removed, or "not duplicates"): drop groups left with one."""
        groups = []
        for group in self.groups:
            members = [m for m in group.members if m.path not in paths]
            if len(members) > 1:
                groups.append(Group(group.tier, members))
        self.groups = groups
        self.ticked -= paths
        self._rebuild()

    def drop_group(self, group: Group) -> None:
        self.groups = [g for g in self.groups if g is not group]
        self.ticked -= {m.path for m in group.members}
        self._rebuild()

    def going_along(self, paths: list[str], pair_rule: str) -> dict[str, list]:
        """What goes with each of ``paths`` if they are removed in this order (core.companions.planned),
        from the companions the scan found: no disk read here."""
        found = {m.path: m.companions for g in self.groups for m in g.members}
        return companions.planned(paths, found, pair_rule)

    def visible_ticked(self) -> list[str]:
        return [m.path for g in self.shown for m in g.members if m.path in self.ticked]

    # --- widgets -------------------------------------------------------------------------------

    def show_tiers(self, tiers: tuple[str, ...]) -> None:
        self.tiers = tiers
        self._rebuild()

    def _rebuild(self) -> None:
        self._filling = True
        current = self.current_path()
        current_top = self.indexOfTopLevelItem(self.currentItem().parent() or self.currentItem()) if self.currentItem() else -1
        self.clear()
        self._items = {}
        self._tops = {}
        self._paths: list[str] = []  # items hold an index here: a Qt string would drop a name's undecodable bytes
        self.shown = [g for g in self.groups if g.tier in self.tiers]
        self.best_shots = {id(g): pick for g in self.shown if g.tier == "similar" and (pick := self._best_shot(g)) is not None}
        for number, group in enumerate(self.shown, 1):
            top = QTreeWidgetItem(self)
            top.setData(0, PathRole, None)
            self._describe_group(top, number, group)
            for member in group.members:
                self._add_member(top, group, member)
            self._show_similarity(top, group)
            top.setExpanded(True)
        for column in (1, 2, 3, 4, 5, 7):
            self.resizeColumnToContents(column)
        self._asked = set()
        self._ask_timer.start()
        self._filling = False
        if current and current in self._items:
            self.setCurrentItem(self._items[current])
        elif current_top >= 0 and self.topLevelItemCount():  # its photo left ("Not duplicates"): the same place in the list
            self.setCurrentItem(self.topLevelItem(min(current_top, self.topLevelItemCount() - 1)))
        self.selection_changed.emit()

    def keeper(self, group: Group) -> str:
        """The photo the group keeps: the first one not ticked for removal (a burst's best shot while none is ticked)."""
        best = self.best_shots.get(id(group))
        if best is not None and not any(m.path in self.ticked for m in group.members):
            return best.row.path
        return next((m.path for m in group.members if m.path not in self.ticked), group.members[0].path)

    def _best_shot(self, group: Group):
        members = [self.rows[m.path] for m in group.members if m.path in self.rows]
        return best_shot(members) if len(members) == len(group.members) else None

    def _show_similarity(self, top: QTreeWidgetItem, group: Group) -> None:
        """Each photo's likeness to the one kept, not to whichever photo happens to be listed first."""
        keeper = self.keeper(group)
        first = group.members[0].path
        for member in group.members:
            item = self._items.get(member.path)
            if item is None:
                continue
            if member.path == keeper:
                text = "kept"
            elif keeper == first:
                text = f"{member.score:.3f}"
            else:
                score = self.similarity(keeper, member.path) if self.similarity else None
                text = f"{score:.3f}" if score is not None else "—"
            item.setText(SIMILARITY, text)
            item.setToolTip(SIMILARITY, f"Similarity to {readable(os.path.basename(keeper))}" if member.path != keeper else "The photo kept")
        # A collapsed group still says which photo it is about: the kept one's name and thumbnail.
        number = self.indexOfTopLevelItem(top) + 1
        top.setText(0, self._title(number, group, keeper))
        best = self.best_shots.get(id(group))
        why = f"\nBest shot: {best.reason}" if best is not None and best.row.path == keeper else ""
        top.setToolTip(0, readable(keeper) + why)
        kept = self._items.get(keeper)
        top.setIcon(0, kept.icon(0) if kept is not None else self._placeholder)  # the thumbnail, once it is in
        for tops in self._tops.values():
            if top in tops:
                tops.remove(top)
        self._tops.setdefault(keeper, []).append(top)

    def _title(self, number: int, group: Group, keeper: str) -> str:
        """"3. Duplicates · 4 photos of IMG_1.jpg", saying when two of them are one RAW+JPEG shot."""
        pairs = companions.partners(group.members)
        one_shot = " · a RAW+JPEG pair: one shot" if set(pairs.values()) & {m.path for m in group.members} else ""
        return f"{number}. {TIER_TITLES[group.tier]} · {len(group.members)} photos of {readable(os.path.basename(keeper))}{one_shot}"

    def _describe_group(self, top: QTreeWidgetItem, number: int, group: Group) -> None:
        freed = sum(self.rows[m.path].size for m in group.members if m.path in self.ticked and m.path in self.rows)
        top.setText(0, self._title(number, group, self.keeper(group)))
        top.setText(1, f"frees {human_size(freed)}" if freed else "")
        font = top.font(0)
        font.setBold(True)
        top.setFont(0, font)

    def _add_member(self, top: QTreeWidgetItem, group: Group, member) -> None:
        row = self.rows.get(member.path)
        item = QTreeWidgetItem(top)
        item.setData(0, PathRole, len(self._paths))
        self._paths.append(member.path)
        item.setText(0, readable(os.path.basename(member.path)))
        item.setToolTip(0, readable(member.path) + _companions_note(member))
        if row is not None:
            # Format from the file's first bytes; the scan's worker already read them (the cache
            # answers here), so filling thousands of rows does no disk reads on the GUI thread.
            kind = photo_format(row.path, row.size, row.mtime_ns)
            pair = next((c for c in member.companions if c.kind in companions.PAIR_KINDS), None)
            if pair is not None:  # one shot: "JPEG + CRW"
                kind += f" + {os.path.splitext(pair.path)[1][1:].upper()}"
            values = [resolution(row.width, row.height), human_size(row.size), kind, taken(row.taken_at)]
            for col, value in enumerate(values, 2):
                item.setText(col, value)
            item.setToolTip(4, format_tooltip(row.path, row.size, row.mtime_ns))
        item.setText(FOLDER, readable(os.path.dirname(member.path)))
        item.setToolTip(FOLDER, readable(os.path.dirname(member.path)))
        item.setIcon(0, self._placeholder)  # the row has its final height before the thumbnail comes
        if inside(member.path, self.protected):
            item.setText(1, "protected")
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
        else:
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            tick = member.path in self.ticked
            item.setCheckState(0, Qt.CheckState.Checked if tick else Qt.CheckState.Unchecked)
            item.setText(1, "remove" if tick else "keep")
            best = self.best_shots.get(id(group))
            if best is not None and best.row.path == member.path:
                item.setText(1, "remove" if tick else "best shot")
                item.setToolTip(1, f"Best shot of this burst: {best.reason}")
        self._items[member.path] = item

    def _path_of(self, item: QTreeWidgetItem | None) -> str | None:
        key = item.data(0, PathRole) if item is not None else None
        return self._paths[key] if isinstance(key, int) and 0 <= key < len(self._paths) else None

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        path = self._path_of(item)
        if self._filling or column != 0 or not path:
            return
        if item.checkState(0) == Qt.CheckState.Checked:
            self.ticked.add(path)
        else:
            self.ticked.discard(path)
        self._filling = True
        top = item.parent()
        group = self.shown[self.indexOfTopLevelItem(top)]
        best = self.best_shots.get(id(group))
        item.setText(1, "remove" if path in self.ticked else "best shot" if best is not None and best.row.path == path else "keep")
        self._describe_group(top, self.indexOfTopLevelItem(top) + 1, group)
        self._show_similarity(top, group)  # another photo may be the one kept now
        self._filling = False
        self.selection_changed.emit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._ask_timer.start()

    def _ask_visible(self) -> None:
        edge = round(ICON * self.devicePixelRatioF())
        item = self.itemAt(0, 0)
        bottom = self.viewport().height()
        while item is not None and self.visualItemRect(item).top() < bottom:
            path = self._path_of(item) or next((k for k, tops in self._tops.items() if item in tops), None)
            row = self.rows.get(path) if path else None
            if row is not None and path not in self._asked:
                self._asked.add(path)
                self.thumbnail_wanted.emit(path, row.mtime_ns, edge)
            item = self.itemBelow(item)

    def set_thumbnail(self, path: str, image: QImage) -> None:
        items = [i for i in (self._items.get(path),) if i is not None] + self._tops.get(path, [])
        if items:
            pixmap = QPixmap.fromImage(image)
            pixmap.setDevicePixelRatio(self.devicePixelRatioF())
            for item in items:
                item.setIcon(0, QIcon(pixmap))

    # --- what the user points at ---------------------------------------------------------------

    def current_path(self) -> str | None:
        return self._path_of(self.currentItem())

    def current_group(self) -> Group | None:
        item = self.currentItem()
        if item is None:
            return None
        top = item.parent() or item
        index = self.indexOfTopLevelItem(top)
        return self.shown[index] if 0 <= index < len(self.shown) else None


def _companions_note(member) -> str:
    """The files that belong to the photo (they go with it when it is removed), for its tooltip."""
    if not member.companions:
        return ""
    return "\nWith it: " + ", ".join(f"{readable(os.path.basename(c.path))} ({companions.noun(c.kind)})" for c in member.companions)
