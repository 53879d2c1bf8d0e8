"""The duplicates review page: scan, look at groups side by side, choose, clean up safely.

Nothing is touched until the user confirms a summary (how many photos, how much space). Photos
go to the system trash or to a folder they pick; every action is logged and moves can be undone
from the cleanup history.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from imgsim_desktop.core import explain
from imgsim_desktop.core.cleanup import check_destination, inside
from imgsim_desktop.core.companions import PAIR_RULES, with_companions
from imgsim_desktop.core.keeper import BEST, RULES
from imgsim_desktop.core.settings import Settings
from imgsim_desktop.ui.cleanup_dialogs import CleanupHistoryDialog, KeeperFoldersDialog, cleanup_outcome, cleanup_question, left_in_place
from imgsim_desktop.ui.compare_view import CompareView
from imgsim_desktop.ui.group_tree import GroupTree
from imgsim_desktop.ui.splitters import remember
from imgsim_desktop.ui.text import human_size, photos

VIEWS = [("Duplicates", ("exact", "duplicate")), ("Similar shots", ("similar",))]
KEEP_CHOICES = [BEST, "format", "resolution", "size", "oldest", "newest", "metadata", "sharpness"]
BEST_LABEL = "Best copy"
BEST_TIP = "Keep the best copy: sharp, with its metadata (date, place, camera…), then the preferred format and the highest resolution"


class DuplicatesPage(QWidget):
    library_changed = Signal()  # photos left the library (trashed or moved)
    files_restored = Signal(object)  # paths moved back by an undo: to be indexed again
    settings_changed = Signal()  # keeper folders edited: the window saves the settings

    def __init__(self, settings: Settings, loader, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.loader = loader
        self.controller = None
        self._request = 0
        self.scanned = False  # a scan has answered since the page was made
        self._changed_while_scanning: str | None = None
        self._outcome: str | None = None  # what the last cleanup did, while nothing new is ticked
        self._undoable_batch: str | None = None  # the last move, while its Undo button shows
        self._move_to: str | None = None
        self.library_roots: list[str] = []  # kept current by the window
        self.indexing = False  # likewise: a scan now sees only the photos indexed so far
        self.problems: list[tuple[str, str]] = []
        self.tree = GroupTree()
        self.compare = CompareView(loader)
        self._build()
        self.tree.selection_changed.connect(self._update_summary)
        self.tree.selection_changed.connect(self._compare_current)  # a tick may change which photo is kept
        self.tree.currentItemChanged.connect(lambda *_: self._compare_current())
        self.tree.thumbnail_wanted.connect(self.loader.request)
        self.loader.ready.connect(self._thumbnail_ready)

    # --- layout --------------------------------------------------------------------------------

    def _build(self) -> None:
        self.view_box = QComboBox()
        for title, _ in VIEWS:
            self.view_box.addItem(title)
        self.view_box.currentIndexChanged.connect(self._view_chosen)
        self.view_box.setToolTip("Duplicates: the same photo re-saved, resized, cropped or lightly edited; safe to remove.\n"
                                 "Similar shots: bursts and retakes of one moment; pick the best.")  # fmt: skip
        self.sensitivity = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=round(self.settings.dup_sensitivity * 100))
        self.sensitivity.setMinimumWidth(60)
        self.sensitivity.setMaximumWidth(140)
        self.sensitivity.setToolTip("Strict: only the most certain matches. Loose: look at more candidates (slower), judged as carefully as at the middle.")
        self.scan_button = QPushButton("Scan")
        self.scan_button.clicked.connect(self.scan)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_scan)
        width = max(self.scan_button.sizeHint().width(), self.cancel_button.sizeHint().width())
        for button in (self.scan_button, self.cancel_button):  # one takes the other's place: the same width
            button.setFixedWidth(width)
        self.progress = QProgressBar(maximumWidth=400, format="Looking for duplicates… %p%")
        self.keep_box = QComboBox()
        for rule in KEEP_CHOICES:
            self.keep_box.addItem(BEST_LABEL if rule == BEST else RULES[rule][0].upper() + RULES[rule][1:], rule)
            self.keep_box.setItemData(self.keep_box.count() - 1, BEST_TIP if rule == BEST else RULES[rule], Qt.ItemDataRole.ToolTipRole)
        self.keep_box.setCurrentIndex(max(0, self.keep_box.findData(self.settings.keep_rule)))
        self.keep_box.activated.connect(self._keep_rule_chosen)
        self.keep_box.setToolTip("Which copy of each photo is kept; the others are ticked for removal")
        self.pair_box = QComboBox()
        for rule, text in PAIR_RULES.items():
            self.pair_box.addItem(text[0].upper() + text[1:], rule)
        self.pair_box.setCurrentIndex(max(0, self.pair_box.findData(self.settings.pair_rule)))
        self.pair_box.setToolTip("A RAW and a JPEG of the same name taken at the same moment are one shot. When both are in a group,\n"
                                 "keep both, only the RAW or only the JPEG. A photo that goes takes its sidecars, Live Photo video\n"
                                 "and (unless this keeps it) the other half of its pair with it.")  # fmt: skip
        self.pair_box.activated.connect(self._pair_rule_chosen)
        # Long choices must not set the window's minimum width (the first visit once widened the window).
        for box in (self.view_box, self.keep_box, self.pair_box):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(10)
        self.keep_metadata = QCheckBox("Keep copies' metadata")
        self.keep_metadata.setChecked(self.settings.keep_metadata)
        self.keep_metadata.setToolTip("Before copies go, what they carry and the photo kept lacks (date taken, GPS, keywords, rating, title)\n"
                                      "is written into the kept photo's XMP sidecar (never into the photo itself). Off: the copies go with it. Undo takes it out again.")  # fmt: skip
        self.keep_metadata.toggled.connect(self._keep_metadata_toggled)
        folders = QPushButton("Folders…")
        folders.setToolTip("Preferred folders (copies there are kept) and protected folders (never touched)")
        folders.clicked.connect(self.edit_folders)

        top = QHBoxLayout()
        # While scanning, Cancel takes Scan's place: the row is no wider, so a scan never widens the window.
        for w in (QLabel("Show"), self.view_box, QLabel("  Strict"), self.sensitivity, QLabel("Loose"), self.scan_button, self.cancel_button):
            top.addWidget(w)
        top.addStretch(1)
        rules = QHBoxLayout()  # a row of its own: beside the scan controls it set a wide window's minimum
        for w in (QLabel("Auto-select:"), self.keep_box, QLabel("RAW+JPEG:"), self.pair_box, folders, self.keep_metadata):
            rules.addWidget(w)
        rules.addStretch(1)

        self.summary = QLabel(wordWrap=True)
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # a long outcome wraps, it does not widen the window
        self.not_duplicates = QPushButton("Not duplicates")
        self.not_duplicates.setToolTip("The selected photo is not a copy of the others in its group (or, on a group row: none are). Remembered.")
        self.not_duplicates.clicked.connect(self.reject_current)
        suggest = QPushButton("Select suggested")
        suggest.clicked.connect(lambda: self.tree.apply_rules(self.settings.keeper_rules(), self.tree.tiers))
        clear = QPushButton("Clear selection")
        clear.clicked.connect(self.tree.clear_ticks)
        history = QPushButton("History…")
        history.clicked.connect(self.open_history)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Move the photos of this cleanup back where they were (from the Trash too)")
        self.undo_button.clicked.connect(self.undo_last)
        self.undo_button.setVisible(False)
        self.move_button = QPushButton("Move to folder…")
        self.move_button.clicked.connect(lambda: self.clean_up("move"))
        self.trash_button = QPushButton("Move to Trash")
        self.trash_button.clicked.connect(lambda: self.clean_up("trash"))
        bottom = QHBoxLayout()
        for w in (self.not_duplicates, suggest, clear, history):
            bottom.addWidget(w)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        # While scanning, the progress bar takes the summary's place (one stack: the row never widens).
        self.progress.setMinimumWidth(1)
        self.summary_stack = QStackedWidget()
        self.summary_stack.addWidget(self.summary)
        self.summary_stack.addWidget(self.progress)
        self.summary_stack.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bottom.addWidget(self.summary_stack, 1)
        bottom.addWidget(self.undo_button)
        bottom.addWidget(self.move_button)
        bottom.addWidget(self.trash_button)

        # Said plainly when the library changed after the scan the page shows: its groups may miss
        # new copies or hold photos that are gone; one click scans again.
        self.stale_label = QLabel()
        self.stale_label.setWordWrap(True)
        self.rescan_button = QPushButton("Scan again")
        self.rescan_button.clicked.connect(self.scan)
        self.stale_bar = QWidget()
        stale = QHBoxLayout(self.stale_bar)
        stale.setContentsMargins(0, 0, 0, 0)
        stale.addWidget(self.stale_label, 1)
        stale.addWidget(self.rescan_button)
        self.stale_bar.setVisible(False)

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.tree)
        split.addWidget(self.compare)
        split.setSizes([320, 420])
        remember(split, self.settings, "duplicates")
        self.split = split
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(rules)
        layout.addWidget(self.stale_bar)
        layout.addWidget(split, 1)
        layout.addLayout(bottom)
        self._set_scanning(False)
        self._update_summary()

    # --- scanning ------------------------------------------------------------------------------

    def set_controller(self, controller) -> None:
        """The window's duplicates worker (replaced when the backbone changes)."""
        if self._request and not self.scan_button.isEnabled():  # the old worker's scan will never answer
            self.summary.setText("The backbone changed: scan again.")
        self._request = 0
        self._set_scanning(False)
        self.controller = controller
        controller.progress.connect(self._progress)
        controller.groups_ready.connect(self._groups_ready)
        controller.scan_problem.connect(lambda path, why: self.problems.append((path, why)))
        controller.failed.connect(self._failed)
        controller.cleaned.connect(self._cleaned)
        controller.undone.connect(self._undone)
        controller.recovered.connect(self._recovered)
        controller.recover()  # a cleanup a crash interrupted is finished (or rolled back) first

    def scan(self) -> None:
        self.settings.dup_sensitivity = self.sensitivity.value() / 100
        self.problems = []
        self._request = self.controller.scan(self.settings.dup_sensitivity, ("exact", "duplicate", "similar"))
        self._changed_while_scanning = None
        self._outcome = None
        self.stale_bar.setVisible(False)
        self._set_scanning(True)
        self.summary.setText("Looking for duplicates…")

    def cancel_scan(self) -> None:
        self.controller.cancel_scan()

    def _set_scanning(self, busy: bool) -> None:
        self.scan_button.setEnabled(not busy)
        self.scan_button.setVisible(not busy)
        self.cancel_button.setVisible(busy)
        self.summary_stack.setCurrentWidget(self.progress if busy else self.summary)
        self.progress.setVisible(busy)
        self.progress.setRange(0, 0)

    def _progress(self, done: int, total: int, _what: str) -> None:
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(done)

    def _groups_ready(self, request: int, groups, rows, roots: list[str]) -> None:
        if request != self._request:
            return
        self.library_roots = roots
        self._set_scanning(False)
        self.tree.fill(groups, rows, self.settings.keeper_rules())
        self._select_first_group()
        self.scanned = True
        if self._changed_while_scanning:
            self.library_changed_since_scan(self._changed_while_scanning)
        if not groups:
            self.summary.setText("No duplicates or similar shots found.")
        if self.indexing:
            self.summary.setText(self.summary.text() + " Indexing is still running: scan again when it is done.")

    def library_changed_since_scan(self, what: str) -> None:
        """Photos were added, changed or removed (``what`` says how, in a few words): a scan on
        screen is out of date, and one in flight may have missed them."""
        if not self.scan_button.isEnabled():  # scanning: say so when it answers
            self._changed_while_scanning = what
            return
        if not self.scanned:
            return  # nothing on screen yet; the first scan sees the library as it is
        self.stale_label.setText(f"The library changed since this scan ({what}): these groups may be out of date.")
        self.stale_bar.setVisible(True)

    def _view_chosen(self, index: int) -> None:
        self.tree.show_tiers(VIEWS[index][1])
        self._select_first_group()

    def _select_first_group(self) -> None:
        if self.tree.topLevelItemCount():
            self.tree.setCurrentItem(self.tree.topLevelItem(0))
        else:
            self.compare.clear()

    def _failed(self, request: int, message: str) -> None:
        if request in (0, self._request):
            self._set_scanning(False)
            self.summary.setText(message)

    # --- reviewing -----------------------------------------------------------------------------

    def _thumbnail_ready(self, path: str, edge: int, image) -> None:
        if edge == round(56 * self.devicePixelRatioF()):
            self.tree.set_thumbnail(path, image)

    def _compare_current(self) -> None:
        """The chosen photo beside the group's suggested keeper (or its next photo)."""
        group = self.tree.current_group()
        if group is None:
            self.compare.clear()
            return
        paths = [m.path for m in group.members if m.path in self.tree.rows]
        if len(paths) < 2:
            self.compare.clear()
            return
        chosen = self.tree.current_path()
        keeper = self.tree.keeper(group)  # the one the list marks "kept" (a burst's best shot included)
        if keeper not in paths:
            keeper = paths[0]
        if chosen in paths and chosen != keeper:
            right = chosen
        else:
            right = next((p for p in paths if p != keeper and p in self.tree.ticked), None) or next(p for p in paths if p != keeper)
        rows = self.tree.rows
        why = explain.in_group(group, right, keeper, rows)
        reason = explain.describe(why, rows[right], rows[keeper], copy="The right one", original="the left one")
        # The whole-frame outline of an exact copy says nothing the reason does not: only real placements are drawn.
        region = why.region if why.kind == "duplicate" else None
        self.compare.show_pair(rows[keeper], rows[right], self._note(keeper), self._note(right), reason, region)

    def _note(self, path: str) -> str:
        if inside(path, self.settings.protected_folders):
            return "protected"
        return "remove" if path in self.tree.ticked else "keep"

    def _keep_rule_chosen(self, _index: int) -> None:
        self.settings.keep_rule = self.keep_box.currentData()
        self.tree.apply_rules(self.settings.keeper_rules(), self.tree.tiers)

    def _keep_metadata_toggled(self, on: bool) -> None:
        self.settings.keep_metadata = on
        self.settings_changed.emit()

    def _pair_rule_chosen(self, _index: int) -> None:
        self.settings.pair_rule = self.pair_box.currentData()
        self.settings_changed.emit()
        self.tree.apply_rules(self.settings.keeper_rules(), self.tree.tiers)

    def edit_folders(self) -> None:
        dialog = KeeperFoldersDialog(self.settings.preferred_folders, self.settings.protected_folders, self)
        if dialog.exec():
            self.settings.preferred_folders, self.settings.protected_folders = dialog.folders()
            self.settings_changed.emit()
            # Re-suggest: copies in preferred folders are kept, protected photos are unticked.
            self.tree.apply_rules(self.settings.keeper_rules(), self.tree.tiers)

    def open_history(self) -> None:
        dialog = CleanupHistoryDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        controller = self.controller
        controller.log_ready.connect(dialog.show_actions)
        dialog.undo_requested.connect(controller.undo)
        controller.undone.connect(reload := lambda *_: controller.load_log())
        dialog.finished.connect(lambda *_: _disconnect(controller.undone, reload))
        controller.destroyed.connect(dialog.close)  # the backbone changed: its worker is gone
        dialog.show()
        self.history_dialog = dialog
        controller.load_log()

    def reject_current(self) -> None:
        group = self.tree.current_group()
        if group is None:
            return
        chosen = self.tree.current_path()
        others = [m.path for m in group.members if m.path != chosen]
        if chosen is not None:
            self.controller.reject(chosen, others)
            self.tree.forget({chosen})
        else:  # the whole group: no two of its photos are duplicates
            for i, path in enumerate(others):
                self.controller.reject(path, others[i + 1 :])
            self.tree.drop_group(group)

    def _update_summary(self) -> None:
        paths = self.tree.visible_ticked()
        size = sum(self.tree.rows[p].size for p in paths if p in self.tree.rows)
        text = self._groups_prefix()
        if paths:
            self._outcome = None  # a new choice: the last cleanup's outcome is old news
        tail = f"{len(paths)} selected ({human_size(size)})" if paths else (self._outcome or "nothing selected")
        self.summary.setText(f"{text}{tail}")
        for button in (self.move_button, self.trash_button):
            button.setEnabled(bool(paths))

    def _groups_prefix(self) -> str:
        groups = len(self.tree.shown)
        return f"{groups} group{'s' * (groups != 1)} · " if self.tree.groups else ""

    def _show_outcome(self, outcome: str) -> None:
        """The last cleanup's outcome, worded the same whether it is said now or after the next reload."""
        self._outcome = outcome
        self.summary.setText(self._groups_prefix() + outcome)

    # --- cleaning up ---------------------------------------------------------------------------

    def clean_up(self, mode: str, move_to: str | None = None, confirm: bool = True) -> None:
        paths = self.tree.visible_ticked()
        if not paths:
            return
        if mode == "move" and move_to is None:
            move_to = QFileDialog.getExistingDirectory(self, "Move the selected photos to…")
            if not move_to:
                return
        if mode == "move" and (problem := check_destination(move_to, self.library_roots, self.settings.protected_folders)):
            QMessageBox.warning(self, "Choose another folder", f"{problem}.\n\nChoose a folder outside the library and the protected folders.")
            return
        emptied = [n for n, g in enumerate(self.tree.shown, 1) if g.tier != "similar" and all(m.path in paths for m in g.members)]
        if emptied:
            QMessageBox.warning(self, "One copy stays", f"Every photo of group {', '.join(map(str, emptied[:5]))} is ticked. A duplicate group "
                                "keeps one copy: untick the one to keep.")  # fmt: skip
            return
        size = sum(self.tree.rows[p].size for p in paths if p in self.tree.rows)
        along = [c for cs in self.tree.going_along(paths, self.settings.pair_rule).values() for c in cs]
        question = cleanup_question(len(paths), size, mode, move_to, along, self.settings.keep_metadata)
        if confirm and QMessageBox.question(self, "Clean up", question) != QMessageBox.StandardButton.Yes:
            return
        self.summary.setText("Cleaning up…")
        self._move_to = move_to
        self.controller.apply(self.tree.shown, self.tree.rows, set(paths), mode, move_to, self.settings.protected_folders, self.settings.pair_rule,
                              self.settings.keep_metadata)  # fmt: skip

    def _cleaned(self, result) -> None:
        moved = {d["path"] for d in result.done}
        self.tree.forget(moved)
        self.library_changed.emit()
        self.last_result = result
        if problems := left_in_place(result):
            QMessageBox.warning(self, "Some photos were left in place", problems)
        # Kept in the summary until the user ticks something new: a reload of the groups must not wipe it.
        self._show_outcome(cleanup_outcome(result, self._move_to))
        self._undoable_batch = result.batch if any(d["target"] for d in result.done) or result.metadata else None  # a trashed photo's place in the Trash is known on Linux
        self.undo_button.setVisible(self._undoable_batch is not None)

    def _recovered(self, notes: list[str]) -> None:
        self.library_changed.emit()
        QMessageBox.information(self, "An interrupted cleanup was finished",
                                "The last cleanup was interrupted (the app or the computer stopped). What was done about it:\n\n"
                                + "\n".join(f"• {n[:1].upper()}{n[1:]}." for n in notes[:20]) + (f"\n… and {len(notes) - 20} more" if len(notes) > 20 else "")
                                + "\n\nEvery moved photo is in the cleanup history, where moves can be undone.")  # fmt: skip

    def undo_last(self) -> None:
        """The Undo beside the outcome of a move: the same as Undo in History for that cleanup."""
        if self._undoable_batch:
            self.undo_button.setVisible(False)
            self.controller.undo(self._undoable_batch)

    def _undone(self, batch: str, restored) -> None:
        back = [r["path"] for r in restored if not r["error"]]
        if batch == self._undoable_batch:
            self._undoable_batch = None
            self.undo_button.setVisible(False)
            photos_back = [r for r in restored if not r["error"] and not r.get("companion") and not r.get("metadata")]
            what = with_companions(photos(len(photos_back)), [r["companion"] for r in restored if not r["error"] and r.get("companion")])
            self._show_outcome(f"Moved {what} back" + (f"; {len(restored) - len(back)} could not be" if len(back) < len(restored) else ""))
        if back:
            self.files_restored.emit(back)


def _disconnect(signal, slot) -> None:
    try:
        signal.disconnect(slot)
    except (RuntimeError, TypeError):
        pass  # its sender is gone already (the backbone changed): nothing left to disconnect
