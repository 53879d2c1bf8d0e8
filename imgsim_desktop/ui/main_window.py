"""The main window: library sidebar, thumbnail grid, "Find similar" results, status bar.

The GUI thread only arranges widgets and pixmaps: indexing, catalog reads, searches and
thumbnails all run in workers and come back by signal, tagged so stale answers are dropped.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, QTimer, QUrl, Slot
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSlider,
    QSplitter,
    QStackedWidget,
    QToolBar,
    QWidget,
)

from imgsim_desktop import paths
from imgsim_desktop.core.backbones import DEFAULT_MODEL, ModelError, get_model, list_models
from imgsim_desktop.core.decode import IMAGE_EXTENSIONS
from imgsim_desktop.core.folders import lexically_inside, really_inside
from imgsim_desktop.core.settings import Settings
from imgsim_desktop.core.thumbnails import thumb_cache
from imgsim_desktop.storage.catalog import PhotoRow
from imgsim_desktop.ui.duplicates_page import DuplicatesPage
from imgsim_desktop.ui.embeddings import EmbeddingReader
from imgsim_desktop.ui.index_status import IndexStatus
from imgsim_desktop.ui.library_sidebar import LibrarySidebar
from imgsim_desktop.ui.outside_query import query_file
from imgsim_desktop.ui.pages import EmptyPage, ResultsPage
from imgsim_desktop.ui.photo_grid import PhotoGrid
from imgsim_desktop.ui.photo_model import Item, PhotoListModel
from imgsim_desktop.ui.research_tools import ResearchTools
from imgsim_desktop.ui.reveal import show_in_folder
from imgsim_desktop.ui.search_history import Search, SearchHistory
from imgsim_desktop.ui.splitters import remember
from imgsim_desktop.ui.thumbnails import PixmapCache
from imgsim_desktop.ui.tile_delegate import CLOSE, PADDING
from imgsim_desktop.ui.trash_selected import TrashSelected
from imgsim_desktop.workers.duplicates_worker import DuplicatesController
from imgsim_desktop.workers.library_bridge import LibraryBridge
from imgsim_desktop.workers.library_worker import LibraryController
from imgsim_desktop.workers.research_worker import ResearchController
from imgsim_desktop.workers.thumb_loader import ThumbnailLoader

LIVE_RELOAD_MS = (1000, 4000)  # while indexing, show new photos this often (small, large libraries)


class MainWindow(QMainWindow):
    def __init__(self, data_dir: str | None = None, model: str | None = None) -> None:
        super().__init__()
        self.setWindowTitle("imgsim")
        self.resize(1200, 800)  # the saved size, once settings are read below
        self.setAcceptDrops(True)
        self.data_dir = paths.data_dir(data_dir)
        self.settings = Settings.load(self.data_dir)
        if self.settings.window:
            self.resize(*self.settings.window)
        notices = list(self.settings.notices)
        if model:
            self.settings.model = model
        self.spec = self._usable_model(self.settings.model)
        if self.spec.name != self.settings.model:  # switching backbones means embedding the whole library again: never silently
            notices.append(f"The backbone '{self.settings.model}' is not installed here; using {self.spec.title} instead "
                           "(the library is indexed for it in the background). `imgsim models` lists what is installed.")  # fmt: skip
        if notices:  # said once the window is up; the defaults are in use meanwhile
            QTimer.singleShot(0, lambda: QMessageBox.warning(self, "Some settings were reset", "\n".join(notices)))
        self.history = SearchHistory()
        self._photos_request = 0
        self._similar_request = 0
        self._search_again = False
        self._provider = "…"
        self.last_report = None  # the latest finished indexing run
        self.thumbs = ThumbnailLoader(thumb_cache(paths.Layout(self.data_dir).thumbs), workers=2, parent=self)
        self._build_ui()
        self.pixmaps = PixmapCache(self.thumbs, [self.library_model, self.results_model], self.devicePixelRatioF, self)
        self.pixmaps.failed.connect(self._thumb_failed)
        self._start_workers()
        self._live_reload = QTimer(self, interval=LIVE_RELOAD_MS[0], timeout=self._live_reload_tick)
        self._watch_reload = QTimer(self, interval=300, singleShot=True, timeout=self._reload_photos)

    # --- set-up --------------------------------------------------------------------------------

    def _usable_model(self, name: str):
        try:
            return get_model(name, self.data_dir)
        except ModelError:
            return get_model(DEFAULT_MODEL, self.data_dir)

    def _start_workers(self, writer: bool = True) -> None:
        threads = self.settings.threads or None
        self.library = LibraryController(self.data_dir, self.spec.name, self.settings.device, threads, parent=self)
        self.library.photos_ready.connect(self._photos_ready)
        self.library.similar_ready.connect(self._similar_ready)
        self.library.failed.connect(self._library_failed)
        if writer:
            self._start_writer()
        self.duplicates = DuplicatesController(self.data_dir, self.spec.name, self.settings.device, threads, parent=self)
        self.dup_page.set_controller(self.duplicates)
        self.trasher.set_controller(self.duplicates)
        self.research = ResearchController(self.data_dir, self.spec.name, self.settings.device, parent=self)
        self.research_tools.set_controller(self.research)
        self._reload_photos()

    def _start_writer(self) -> None:
        """The library's one writer: indexing, folder changes and outside changes, in one queue."""
        self.writer = LibraryBridge(self.data_dir, self.spec.name, self.settings.device, self.settings.threads or None, parent=self)
        self.writer.progress.connect(self._index_progress)
        self.writer.finished.connect(self._index_finished)
        self.writer.changes.connect(self._watch_batch)
        self.writer.busy_changed.connect(self._index_busy)
        self.writer.folders_changed.connect(self._folders_changed)
        self.writer.mode_changed.connect(self.index_status.show_watch_mode)
        self.writer.provider_ready.connect(self._provider_ready)
        self.writer.error.connect(self.status_label.setText)
        self.writer.start()  # catches up with what changed while the app was closed: one scan

    def _stop_workers(self) -> None:
        for timer in (self._live_reload, self._watch_reload):  # both ask the library worker about to go
            timer.stop()
        self.library.shutdown()
        self.duplicates.shutdown()
        self.research.shutdown()
        # Answers the old workers still have queued (a cancelled run's report, say) must not reach
        # the window: they would describe a library/model it no longer shows.
        for controller in (self.library, self.duplicates, self.research):
            controller.blockSignals(True)
            controller.deleteLater()

    def _build_ui(self) -> None:
        self.library_model = PhotoListModel(self)
        self.library_model.thumbnail_for = self._thumbnail_for
        self.results_model = PhotoListModel(self)
        self.results_model.thumbnail_for = self._thumbnail_for
        self.grid = PhotoGrid(self.library_model)
        self.results_grid = PhotoGrid(self.results_model)
        for view in (self.grid, self.results_grid):
            view.customContextMenuRequested.connect(lambda pos, v=view: self._tile_menu(v, pos))
            view.doubleClicked.connect(lambda index, v=view: self._preview(v, index.row()))
            view.zoom_requested.connect(self.zoom_by)
            for key in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):  # as in digiKam and Finder's Quick Look
                # On the grid only: Space typed in the filter box stays a space.
                shortcut = QShortcut(QKeySequence(key), view, context=Qt.ShortcutContext.WidgetShortcut)
                shortcut.activated.connect(lambda v=view: self._preview_current(v))
            trash = QShortcut(QKeySequence(Qt.Key.Key_Delete), view, context=Qt.ShortcutContext.WidgetShortcut)
            trash.activated.connect(lambda v=view: self.trash_selected(v))
        self.trasher = TrashSelected(self, self.settings)
        self.trasher.started.connect(lambda text: self.status_label.setText(text))
        self.trasher.finished.connect(self._trashed)

        self._build_actions()
        self.research_tools = ResearchTools(self)
        self._build_toolbar()
        self._build_menus()

        side = LibrarySidebar()
        side.folder_chosen.connect(self._folder_selected)
        side.add_requested.connect(self.add_folder)
        side.rescan_requested.connect(lambda root: self.writer.add_folders([root]))
        side.exclude_requested.connect(self.exclude_subfolder)
        side.remove_requested.connect(self.remove_folder)
        self.library_panel = side
        self.sidebar = side.tree
        self._listed = -1
        self.library_model.modelReset.connect(self._library_listed)

        self.pages = QStackedWidget()
        empty = EmptyPage()
        empty.add_requested.connect(self.add_folder)
        self.empty_button = empty.button
        self.pages.addWidget(empty)
        self.pages.addWidget(self.grid)
        models = [(spec.name, spec.title) for spec in list_models(self.data_dir) if spec.installed]
        results = ResultsPage(self.results_grid, self.settings.k, models, self.spec.name)
        self.results_title, self.k_box, self.model_box = results.title, results.k_box, results.model_box
        self.k_box.editingFinished.connect(self._k_changed)
        self.model_box.activated.connect(self._model_chosen)
        self.results_page = results
        results.close_only.toggled.connect(lambda on: self.results_model.set_min_score(CLOSE if on else None))
        self.pages.addWidget(results)
        self.dup_page = DuplicatesPage(self.settings, self.thumbs)
        self.embeddings = EmbeddingReader(self.data_dir)
        self.dup_page.tree.similarity = lambda a, b: self.embeddings.similarity(self.spec.name, a, b)
        self.dup_page.library_changed.connect(self._cleaned_up)
        self.dup_page.files_restored.connect(self._restored)
        self.dup_page.settings_changed.connect(lambda: self.settings.save(self.data_dir))
        self.pages.addWidget(self.dup_page)
        self.pages.addWidget(self.research_tools.map_view)
        self.pages.currentChanged.connect(self._page_changed)
        for model in (self.library_model, self.results_model):  # a reload or a new search: new counts
            model.modelReset.connect(self._show_filter_count)
        self._page_changed(self.pages.currentIndex())
        splitter = QSplitter()
        splitter.addWidget(side)
        splitter.addWidget(self.pages)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([240, 960])
        remember(splitter, self.settings, "main")
        self.splitter = splitter
        self.setCentralWidget(splitter)
        self._build_status_bar()
        self.zoom.setValue(self.settings.thumb_size)

    def _build_actions(self) -> None:
        def action(text: str, slot, shortcut=None, tip: str = "") -> QAction:
            act = QAction(text, self)
            act.triggered.connect(slot)
            if shortcut:
                act.setShortcut(shortcut)
            act.setToolTip(tip or text)
            self.addAction(act)
            return act

        self.act_add = action("Add folder…", self.add_folder, QKeySequence.StandardKey.Open, "Add a folder of photos to the library")
        self.act_similar = action("Find similar", self.find_similar_to_selected, QKeySequence.StandardKey.Find, "Find photos like the selected one (Ctrl+F)")
        self.act_query_file = action("Find similar to image…", self.find_similar_to_file, "Ctrl+Shift+F")
        self.act_paste = action("Find similar to pasted image", self.find_similar_to_clipboard, QKeySequence.StandardKey.Paste)
        self.act_back = action("Back", self.go_back, QKeySequence.StandardKey.Back)
        self.act_forward = action("Forward", self.go_forward, QKeySequence.StandardKey.Forward)
        self.act_library = action("Library", self.show_library, "Ctrl+L", "Back to all photos")
        self.act_duplicates = action("Duplicates", self.show_duplicates, "Ctrl+D", "Find and clean up near-duplicate photos (Ctrl+D)")
        self.act_history = action("Cleanup history…", lambda: self.dup_page.open_history(), tip="What cleanup moved or trashed; undo moves")
        self.act_settings = action("Settings…", self.open_settings, QKeySequence.StandardKey.Preferences)
        self.act_zoom_in = action("Larger thumbnails", lambda: self.zoom_by(1), QKeySequence.StandardKey.ZoomIn, "Larger thumbnails (Ctrl++, or Ctrl+wheel)")
        self.act_zoom_out = action("Smaller thumbnails", lambda: self.zoom_by(-1), QKeySequence.StandardKey.ZoomOut, "Smaller thumbnails (Ctrl+-, or Ctrl+wheel)")
        self.act_zoom_in.setShortcuts([QKeySequence(QKeySequence.StandardKey.ZoomIn), QKeySequence("Ctrl+=")])  # + needs Shift on most layouts
        self.act_quit = action("Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_getting_started = action("Getting started", self.show_getting_started, QKeySequence.StandardKey.HelpContents)
        self.act_open_data = action("Open data folder", self.open_data_folder, tip="The catalog, thumbnails and settings, in the file manager")
        self.act_about = action("About imgsim", self.show_about)
        self.act_back.setEnabled(False)
        self.act_forward.setEnabled(False)

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main")
        bar.setMovable(False)
        self.addToolBar(bar)
        for act in (self.act_add, self.act_library, self.act_back, self.act_forward, self.act_similar, self.act_duplicates):
            bar.addAction(act)
        bar.addSeparator()
        self.filter_box = QLineEdit(placeholderText="Filter by file name", clearButtonEnabled=True)
        self.filter_box.setMaximumWidth(220)
        self.filter_box.textChanged.connect(self._filter_changed)
        bar.addWidget(self.filter_box)
        self.filter_count = QLabel()  # "12 of 1,522" while a filter is typed
        self.filter_count.setContentsMargins(6, 0, 6, 0)
        bar.addWidget(self.filter_count)
        self.sort_box = QComboBox()
        self.sort_box.addItems(["Newest first", "Oldest first", "Name", "Folder"])
        self.sort_box.currentIndexChanged.connect(self._sort_changed)
        bar.addWidget(self.sort_box)
        if self.settings.sort:
            self.sort_box.setCurrentIndex(self.settings.sort)  # as the user left it
        spacer = QWidget()
        spacer.setSizePolicy(spacer.sizePolicy().horizontalPolicy().Expanding, spacer.sizePolicy().verticalPolicy())
        bar.addWidget(spacer)
        bar.addWidget(QLabel("Size "))
        self.zoom = QSlider(Qt.Orientation.Horizontal, minimum=80, maximum=320, singleStep=8, pageStep=40)
        self.zoom.setFixedWidth(140)
        self.zoom.valueChanged.connect(self._zoom_changed)
        bar.addWidget(self.zoom)

    def _build_menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        for act in (self.act_add, self.act_query_file, self.act_paste):
            file_menu.addAction(act)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        edit_menu = menu.addMenu("&Edit")
        edit_menu.addAction(self.act_settings)
        view_menu = menu.addMenu("&View")
        for act in (self.act_zoom_in, self.act_zoom_out):
            view_menu.addAction(act)
        go_menu = menu.addMenu("&Go")
        for act in (self.act_library, self.act_back, self.act_forward, self.act_similar):
            go_menu.addAction(act)
        tools_menu = menu.addMenu("&Tools")
        for act in (self.act_duplicates, self.act_history):
            tools_menu.addAction(act)
        tools_menu.addSeparator()
        self.research_tools.add_to(tools_menu)
        help_menu = menu.addMenu("&Help")
        for act in (self.act_getting_started, self.act_open_data, self.act_about):
            help_menu.addAction(act)

    def _build_status_bar(self) -> None:
        self.index_status = IndexStatus(self.statusBar())
        self.index_status.errors_clicked.connect(self.show_unreadable)
        self.index_status.pause_clicked.connect(self._toggle_pause)
        self.index_status.cancel_clicked.connect(self.cancel_indexing)
        # Short names for what other views and the tests look at.
        self.status_label = self.index_status.label
        self.progress = self.index_status.progress
        self.cancel_button = self.index_status.cancel_button
        self.device_label = self.index_status.device_label
        self._update_device_label()

    # --- library content -----------------------------------------------------------------------

    def _reload_photos(self) -> None:
        if getattr(self, "_closing", False):
            return  # a change the watcher queued before the window closed: its workers are gone
        self._photos_request = self.library.load_photos()

    def _live_reload_tick(self) -> None:
        if not self.writer.paused:  # nothing new arrives while paused
            self._reload_photos()

    @Slot(int, object, object, object)
    def _photos_ready(self, request: int, rows: list[PhotoRow], roots: list[str], known: set[str]) -> None:
        if request != self._photos_request:
            return  # an older answer overtaken by a newer question
        anchor = self.grid.anchor()  # photos indexed meanwhile may go in above it ("Newest first")
        self.library_model.set_items([Item(r) for r in rows])
        self.grid.hold(anchor)
        self.library_panel.set_roots(sorted({*roots, *self.writer.pending()}))  # folders just added are shown at once
        self.dup_page.library_roots = roots
        # "Known" is any backbone's: photos not yet indexed for a newly chosen one have not vanished.
        self._drop_vanished(known)
        if self.library_model.folder and self.library_model.folder not in roots:
            self.library_model.set_folder(None)  # its folder was removed; the sidebar shows "All photos"
        if self.pages.currentIndex() < 2:  # not while the user looks at results, duplicates or the map
            self.pages.setCurrentIndex(1 if roots else 0)
        if not self.writer.busy and not self.status_label.text():
            self.status_label.setText(f"{len(rows):,} photos")

    def _folder_selected(self, folder: str, root: str = "") -> None:
        self.library_model.set_folder(folder or None, root or None)
        self.show_library()

    def _library_listed(self) -> None:
        """The photo list was reloaded (not only re-sorted or filtered): the sidebar's folders and counts follow."""
        if self.library_model.version != self._listed:
            self._listed = self.library_model.version
            self.library_panel.set_photos([p.path for p in self.library_model.all_photos()])

    def add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of photos", str(Path.home()))
        if folder:
            self.add_folder_path(folder)

    def add_folder_path(self, folder: str) -> None:
        folder = os.path.abspath(folder)
        covering = next((r for r in self.library_panel.roots if r != folder and really_inside(folder, r)), None)
        if covering:
            QMessageBox.information(self, "Already in the library", f"{folder} is inside {covering}, which is in the library already: "
                                    "its photos are indexed and watched with it.")  # fmt: skip
            return
        if folder not in self.library_panel.roots:
            self.library_panel.set_roots(sorted([*self.library_panel.roots, folder]))
        self.pages.setCurrentIndex(1)
        self.writer.add_folders([folder])

    def remove_folder(self, root: str) -> None:
        answer = QMessageBox.question(
            self, "Remove folder", f"Stop showing photos from\n{root}?\n\nThe photos themselves are not touched."
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.remove_folder_path(root)

    def remove_folder_path(self, root: str) -> None:
        # The writer stops indexing there first: a running job must not store photos after the
        # catalog forgot the folder, nor a queued one add it back.
        self.status_label.setText(f"Removing {root} from the library…")
        self.writer.remove_folder(root)

    def exclude_subfolder(self, root: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Exclude a subfolder", root)
        if folder and os.path.abspath(folder) != root and lexically_inside(os.path.abspath(folder), root):
            self.exclude_folder_path(os.path.abspath(folder))
        elif folder:
            QMessageBox.information(self, "Exclude a subfolder", f"Choose a folder inside {root}.")

    def exclude_folder_path(self, folder: str) -> None:
        self.writer.exclude_folder(folder)

    @Slot(object)
    def _folders_changed(self, roots: list[str]) -> None:
        """The writer added, removed or excluded a folder: show the library as it is now."""
        if self.status_label.text().startswith("Removing "):
            self.status_label.setText("")
        self.library_panel.set_roots(sorted({*roots, *self.writer.pending()}))
        self._reload_photos()

    # --- thumbnails ----------------------------------------------------------------------------

    def _thumbnail_for(self, item: Item) -> QPixmap | None:
        return self.pixmaps.pixmap_for(item, round(self.settings.thumb_size * self.devicePixelRatioF()))

    def _thumb_failed(self, path: str, reason: str) -> None:
        self.statusBar().showMessage(f"No thumbnail for {os.path.basename(path)}: {reason}", 5000)

    def zoom_by(self, steps: int) -> None:
        """Ctrl+wheel, Ctrl++ and Ctrl+-: one slider page larger or smaller."""
        self.zoom.setValue(self.zoom.value() + steps * self.zoom.pageStep())

    def _zoom_changed(self, value: int) -> None:
        self.settings.thumb_size = value
        self.thumbs.clear()
        for view in (self.grid, self.results_grid):
            # The place in the grid is kept: the current photo if it is on screen, else the first one shown.
            current = view.currentIndex()
            on_screen = current.isValid() and view.visualRect(current).intersects(view.viewport().rect())
            anchor = current if on_screen else view.indexAt(view.viewport().rect().topLeft() + QPoint(PADDING + 1, PADDING + 1))
            view.set_tile(value)
            if anchor.isValid():
                view.executeDelayedItemsLayout()
                view.scrollTo(anchor, QListView.ScrollHint.EnsureVisible if on_screen else QListView.ScrollHint.PositionAtTop)

    def _page_changed(self, index: int) -> None:
        """The filter works on the library and on search results, sorting on the library; on
        other pages they would do nothing, so they are off there."""
        self.filter_box.setEnabled(index in (1, 2))
        self.sort_box.setEnabled(index == 1)
        self._show_filter_count()
        # A page's own news ("50 photos like x.jpg") is not left under another page, and is back with its page.
        page, note = getattr(self, "_page_note", (None, ""))
        if page is not None and index != page and self.status_label.text() == note:
            self.status_label.setText("")
        elif index == page and not self.status_label.text():
            self.status_label.setText(note)

    def _show_filter_count(self) -> None:
        model = self.current_view().model()
        text = self.filter_box.text().strip()
        shown = model.filtered() and self.pages.currentIndex() in (1, 2)
        count, total = model.shown_count(), model.filterable_count()
        self.filter_count.setText(f"{count:,} of {total:,}" if shown else "")
        for view in (self.grid, self.results_grid):
            view.set_empty_text(f"No photo here has “{text}” in its name." if text else "")

    # --- find similar --------------------------------------------------------------------------

    def current_view(self) -> PhotoGrid:
        return self.results_grid if self.pages.currentIndex() == 2 else self.grid

    def find_similar_to_selected(self) -> None:
        item = self.current_view().current_item()
        if item is None:
            self.statusBar().showMessage("Select a photo first, then Find similar (Ctrl+F).", 4000)
            return
        self.find_similar(item.photo.path)

    def find_similar_to_file(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS))
        path, _ = QFileDialog.getOpenFileName(self, "Find photos similar to…", str(Path.home()), f"Images ({patterns});;All files (*)")
        if path:
            self.find_similar(path)

    def find_similar_to_clipboard(self) -> None:
        self._find_similar_to_mime(QGuiApplication.clipboard().mimeData(), "The clipboard holds no image.")

    def _find_similar_to_mime(self, mime, nothing: str) -> None:
        path = query_file(mime, self.data_dir / "pasted")
        if path:
            self.find_similar(path)
        else:
            self.statusBar().showMessage(nothing, 4000)

    def find_similar(self, path: str, k: int | None = None, again: bool = False) -> None:
        """Search in the background; ``again`` re-runs the search on screen instead of adding to the history."""
        self._similar_request = self.library.similar(os.path.abspath(path), k or self.k_box.value())
        self._search_again = again
        self.status_label.setText(f"Searching for photos like {os.path.basename(path)}…")

    @Slot(int, object, object, object)
    def _similar_ready(self, request: int, query_row: PhotoRow, hits: list, piles: list) -> None:
        if request != self._similar_request:
            return
        query = query_row.path
        items = [Item(query_row, is_query=True)]
        for pile in piles:  # near-identical copies: one stacked tile (core.stacks)
            top, *copies = [Item(hits[i][0], score=hits[i][1]) for i in pile]
            top.copies = copies
            items.append(top)
        note = ""
        if self.writer.busy and self.index_status.waiting:  # say that the search did not see the whole library
            note = (f"Indexing is still running: only the photos indexed so far with {self.spec.title} were searched "
                    f"({self.index_status.waiting:,} to go). Search again when it is done.")  # fmt: skip
        search = Search(query, items, note)
        self.history.add(search, replace=self._search_again)
        self._show_search(search)
        stacked = f" ({len(hits) - len(piles)} near-identical copies stacked)" if len(hits) > len(piles) else ""
        said = getattr(self, "_trash_outcome", "") if self._search_again else ""  # a Delete's outcome is not overwritten by its refill
        self._trash_outcome = ""
        self.status_label.setText(f"{said + ' · ' if said else ''}{len(piles)} photos like {os.path.basename(query)}{stacked}")
        self._page_note = (2, self.status_label.text())  # said on the results page only

    def _show_search(self, search: Search) -> None:
        self.results_model.set_items(search.items, keep_order=True)
        self.results_title.setText(f"Photos similar to <b>{os.path.basename(search.query)}</b>")
        self.results_title.setToolTip(search.query)
        self.results_page.note.setText(search.note)
        self.results_page.note.setVisible(bool(search.note))
        self.pages.setCurrentIndex(2)
        self.results_grid.scrollToTop()
        self.act_back.setEnabled(True)
        self.act_forward.setEnabled(self.history.can_go_forward())

    def go_back(self) -> None:
        if self.pages.currentIndex() == 2 and self.history.can_go_back():
            self._show_search(self.history.back())
        elif self.pages.currentIndex() == 2:
            self.show_library()

    def go_forward(self) -> None:
        if self.pages.currentIndex() != 2 and self.history:
            self._show_search(self.history.current)
        elif self.history.can_go_forward():
            self._show_search(self.history.forward())

    def _search_again_on_screen(self) -> None:
        """Re-run the search shown (k or backbone changed, or a result vanished), in place."""
        if self.pages.currentIndex() == 2 and self.history:
            self.find_similar(self.history.current.query, again=True)

    def show_library(self) -> None:
        self.pages.setCurrentIndex(1 if self.library_panel.roots or self.library_model.total() else 0)
        self.act_forward.setEnabled(bool(self.history))
        self.act_back.setEnabled(False)

    def _k_changed(self) -> None:
        # editingFinished also fires when the focus merely leaves the box (a click on Library):
        # only a new number means a new search, or that click would snap back to the results.
        if self.k_box.value() == self.settings.k:
            return
        self.settings.k = self.k_box.value()
        self.settings.save(self.data_dir)
        self._search_again_on_screen()

    def _model_chosen(self, _index: int) -> None:
        name = self.model_box.currentData()
        if name and name != self.spec.name:
            self.switch_model(name)

    def switch_model(self, name: str, device: str | None = None, threads: int | None = None) -> None:
        """Restart the readers on another backbone/device; the writer indexes the library for it in
        the background (folders queued for the old one included)."""
        self._stop_workers()
        self.settings.model = name
        if device is not None:
            self.settings.device = device
        if threads is not None:
            self.settings.threads = threads
        self.settings.save(self.data_dir)
        self.spec = self._usable_model(name)
        self._provider = "…"
        self._update_device_label()
        self.results_page.show_model(self.spec.name)
        self._start_workers(writer=False)
        self.writer.switch_model(self.spec.name, self.settings.device, self.settings.threads or None)
        self._search_again_on_screen()  # results on screen came from the old model

    # --- duplicates ------------------------------------------------------------------------------

    def show_duplicates(self) -> None:
        first_time = self.pages.currentWidget() is not self.dup_page and not self.dup_page.scanned
        self.pages.setCurrentWidget(self.dup_page)
        self.act_back.setEnabled(False)
        if first_time and self.dup_page.scan_button.isEnabled():
            self.dup_page.scan()

    # --- drag and drop ---------------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        mime = event.mimeData()
        files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        folders = [f for f in files if os.path.isdir(f)]
        if folders:
            for folder in folders:
                self.add_folder_path(folder)
        else:  # a photo file, or a picture dragged from a browser (pixels, no file)
            self._find_similar_to_mime(mime, "Drop a photo to find similar ones, or a folder to add it to the library.")
        event.acceptProposedAction()

    # --- tiles: context menu and preview ---------------------------------------------------------

    def _tile_menu(self, view: PhotoGrid, pos) -> None:
        index = view.indexAt(pos)
        if index.isValid():
            view.setCurrentIndex(index)
            self.tile_menu(view.model().item(index.row()).photo.path).exec(view.viewport().mapToGlobal(pos))

    def tile_menu(self, path: str) -> QMenu:
        menu = QMenu(self)
        menu.addAction("Find similar", lambda: self.find_similar(path))
        menu.addAction("Compare backbones", lambda: self.research_tools.compare(path))
        menu.addSeparator()
        menu.addAction("Open", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(path)))
        menu.addAction("Show in folder", lambda: show_in_folder(path))
        menu.addAction("Copy path", lambda: QGuiApplication.clipboard().setText(path))
        return menu

    def trash_selected(self, view: PhotoGrid) -> None:
        """Delete: the selected photos (else the current one) to the Trash, as a cleanup does it."""
        items = [view.model().item(i.row()) for i in view.selectionModel().selectedIndexes()] or [view.current_item()]
        self.trasher.trash([it.photo for it in items if it is not None and it.photo.id >= 0])  # a query from outside is no library photo

    def _trashed(self, outcome: str, gone: list[str]) -> None:
        self.status_label.setText(outcome)
        self._trash_outcome = outcome if gone and self.pages.currentIndex() == 2 else ""
        if gone:
            self.dup_page.library_changed_since_scan(f"{len(gone)} moved to the Trash")
            self._reload_photos()  # they leave the grid; results are searched again without them

    def _preview_current(self, view: PhotoGrid) -> None:
        if view.currentIndex().isValid():
            self._preview(view, view.currentIndex().row())

    def _preview(self, view: PhotoGrid, row: int) -> None:
        from imgsim_desktop.ui.preview import PreviewDialog

        dialog = PreviewDialog(view, self.thumbs, row, self)
        dialog.find_similar.connect(self.find_similar)
        dialog.show()
        self._preview_dialog = dialog

    # --- indexing status -----------------------------------------------------------------------

    @Slot(int, int, float, float, str)
    def _index_progress(self, done: int, total: int, rate: float, eta: float, phase: str) -> None:
        self.index_status.show_progress(done, total, rate, eta, phase, self.writer.paused)

    @Slot(bool)
    def _index_busy(self, busy: bool) -> None:
        self.index_status.set_busy(busy)
        self.dup_page.indexing = busy
        if busy:
            # Reloading re-sorts the whole list: keep it rare on big libraries.
            self._live_reload.start(LIVE_RELOAD_MS[0] if self.library_model.total() < 5000 else LIVE_RELOAD_MS[1])
        else:
            self._live_reload.stop()

    @Slot(object)
    def _watch_batch(self, report) -> None:
        """The watcher applied changes made outside the app: show them (one reload per burst)."""
        if not self._watch_reload.isActive():
            self._watch_reload.start()
        if report.indexed or report.moved or report.copied or report.removed:
            self.dup_page.library_changed_since_scan(_changes(report))
        self.index_status.show_watch_changes(report)  # says nothing when nothing changed (a quiet reconcile)

    def show_unreadable(self) -> None:
        """The files behind "N could not be read", with their reasons."""
        from imgsim_desktop.ui.unreadable_dialog import UnreadableDialog

        self.unreadable_dialog = UnreadableDialog(self.index_status.errors, self)
        self.unreadable_dialog.retry_requested.connect(self.retry_unreadable)
        self.unreadable_dialog.show()

    def retry_unreadable(self) -> None:
        """Every file that failed is read again, changed or not (the CLI's index --retry-failed)."""
        self.status_label.setText("Reading the files that could not be read again…")
        self.writer.retry_failed()

    def _restored(self, paths: list[str]) -> None:
        """An undo put photos back: index them, and tell the duplicates page its groups predate them."""
        self.writer.add_folders(self.library_panel.roots)
        self.dup_page.library_changed_since_scan(f"{len(paths)} photo{'s' * (len(paths) != 1)} moved back by an undo")

    def _cleaned_up(self) -> None:
        self.status_label.setText("")  # the duplicates page says what was moved; older news is stale now
        self._reload_photos()

    def _drop_vanished(self, live: set[str]) -> None:
        """Photos deleted or moved outside the app leave results and duplicate groups at once."""
        self.research_tools.map_view.forget_missing(live)
        gone = {m.path for g in self.dup_page.tree.groups for m in g.members} - live
        if gone:
            self.dup_page.tree.forget(gone)
        if self.history and self.pages.currentIndex() == 2:
            shown = [self.results_model.item(i) for i in range(self.results_model.rowCount())]
            query = next((it.photo for it in shown if it.is_query), None)
            if query is not None and query.id >= 0 and query.path not in live:  # a library photo, deleted meanwhile
                self.show_library()
                self.status_label.setText(f"{os.path.basename(query.path)} was deleted, so its search was closed.")
            elif any(not it.is_query and it.photo.path not in live for it in shown):
                self._search_again_on_screen()  # refill: still k results

    @Slot(object)
    def _index_finished(self, report) -> None:
        self.last_report = report
        if report.indexed or report.removed or getattr(report, "moved", 0) or getattr(report, "copied", 0):
            self.dup_page.library_changed_since_scan(_changes(report))
        self._reload_photos()
        self.index_status.show_report(report)
        if report.provider:  # None: nothing was embedded, no model loaded
            self._provider_ready(report.provider)

    @Slot(int, str)
    def _library_failed(self, request: int, message: str) -> None:
        if request in (self._similar_request, self._photos_request):
            self.status_label.setText(message)

    def _toggle_pause(self) -> None:
        if self.writer.paused:
            self.writer.resume()
        else:
            self.writer.pause()
        self.index_status.set_paused(self.writer.paused)

    def cancel_indexing(self) -> None:
        self.writer.cancel()
        self.status_label.setText("Cancelling after the current batch…")

    @Slot(str)
    def _provider_ready(self, provider: str) -> None:
        self._provider = provider
        self._update_device_label()

    def _update_device_label(self) -> None:
        if hasattr(self, "device_label"):
            self.device_label.setText(f"{self.spec.title} · {self._provider}")

    # --- help ----------------------------------------------------------------------------------

    def show_about(self) -> None:
        from imgsim_desktop.ui.help_dialogs import AboutDialog

        self.about_dialog = AboutDialog(self.data_dir, self.spec.title, self._provider, self)
        self.about_dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.about_dialog.show()

    def show_getting_started(self) -> None:
        from imgsim_desktop.ui.help_dialogs import GettingStartedDialog

        self.help_dialog = GettingStartedDialog(self)
        self.help_dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.help_dialog.show()

    def open_data_folder(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.data_dir))):
            QMessageBox.information(self, "Data folder", f"No file manager could be opened. The data folder is:\n{self.data_dir}")

    # --- settings and lifecycle ------------------------------------------------------------------

    def open_settings(self) -> None:
        from imgsim_desktop.ui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self.data_dir, self._provider, self)
        if dialog.exec():
            chosen = dialog.result_settings()
            restart = (chosen.model, chosen.device, chosen.threads) != (self.settings.model, self.settings.device, self.settings.threads)
            self.zoom.setValue(chosen.thumb_size)
            self.k_box.setValue(chosen.k)
            self.settings.k = chosen.k
            if restart:
                self.switch_model(chosen.model, chosen.device, chosen.threads)
            self.settings.save(self.data_dir)

    def _filter_changed(self, text: str) -> None:
        for model, view in ((self.library_model, self.grid), (self.results_model, self.results_grid)):
            model.set_filter(text)
            view.scrollToTop()  # the first matches, not a place in the unfiltered list
        self._show_filter_count()

    def _sort_changed(self, index: int) -> None:
        self.settings.sort = index
        key, descending = [("date", True), ("date", False), ("name", False), ("folder", False)][index]
        self.library_model.set_sort(key, descending)

    def closeEvent(self, event) -> None:
        """Stop cleanly: the indexer finishes its batch and commits; the next start resumes."""
        self.status_label.setText("Stopping…")
        self._closing = True
        if not self.isMaximized() and not self.isFullScreen():
            self.settings.window = [self.width(), self.height()]
        self.settings.save(self.data_dir)
        self._stop_workers()
        self.writer.shutdown()
        self.writer.blockSignals(True)
        self.embeddings.close()
        self.thumbs.shutdown()
        super().closeEvent(event)


def _changes(report) -> str:
    """An index report's changes in a few words: "12 added, 3 removed"."""
    added = getattr(report, "indexed", 0) + getattr(report, "copied", 0)  # a copy of a known photo is added too
    parts = [(added, "added"), (getattr(report, "moved", 0), "moved"), (getattr(report, "removed", 0), "removed")]
    return ", ".join(f"{n} {what}" for n, what in parts if n) or "files changed"
