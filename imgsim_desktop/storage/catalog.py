"""The SQLite catalog: library folders, files, per-model embeddings.

WAL mode and one transaction per indexing batch: a process killed at any moment leaves the last
committed batch intact, and the next run resumes from there. Embedding ids come from
AUTOINCREMENT, so an id is never reused: an Annoy index built earlier can never map one of its
items onto a different photo's vector.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from imgsim_desktop.paths import lexically_inside
from imgsim_desktop.storage.path_text import PathSafeConnection
from imgsim_desktop.storage.records import ContentRecord, Embedded, FileRecord, PhotoRow, Relink  # noqa: F401 (also imported from here)
from imgsim_desktop.storage.schema import EMBEDDING_RECIPE, SCHEMA, SCHEMA_VERSION, migrate  # noqa: F401


class CatalogError(Exception):
    pass


SQLITE_HEADER = b"SQLite format 3\x00"
BACKUP_SUFFIX = ".backup.sqlite3"
BACKUP_EVERY_S = 24 * 3600
# What a backup keeps: what the user told us and did (folders, exclusions, "not duplicates", the
# cleanup history) and what the files are. Embeddings are left out: they are most of the size and
# indexing makes them again.
BACKED_UP = ("meta", "roots", "excluded", "files", "actions", "rejected_pairs")


def backup_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".sqlite3") + BACKUP_SUFFIX)


def _refuse_if_not_a_catalog(path: Path) -> None:
    try:
        with open(path, "rb") as fh:
            header = fh.read(16)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise CatalogError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not header and not backup_path(path).exists():
        # Being created right now by another thread or process (SQLite writes the header with the
        # first commit), or a creation that never got that far: a library that never held anything.
        return
    if header != SQLITE_HEADER:
        what = "is empty" if not header else "is not a catalog (damaged or overwritten)"
        raise CatalogError(f"{path} {what}; nothing was changed. {restore_hint(path)}")


def restore_hint(path: Path) -> str:
    backup = backup_path(path)
    if backup.exists():
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(backup.stat().st_mtime))
        return f"`imgsim restore-catalog` brings back the library folders and the cleanup history from the backup of {when}"
    return "There is no backup of it; move it away to start a new library"


def _enter_wal_mode(db: sqlite3.Connection, patience: float = 30.0) -> None:
    """Switch ``db`` to WAL, waiting while another connection is creating or opening the same file.

    SQLite answers "database is locked" at once, without its busy handler, when a second connection
    asks for WAL while the first is doing the same on a new file (the app's window and its library
    service open one catalog together), so this waits here the way the busy timeout does elsewhere."""
    deadline = time.monotonic() + patience
    pause = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


class Catalog:
    """Thread-safe wrapper over one SQLite connection (calls are short; a lock serialises them)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _refuse_if_not_a_catalog(self.path)  # never start an empty library over one that existed
        try:
            self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False, isolation_level=None, factory=PathSafeConnection)
            _enter_wal_mode(self._db)
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable up to the last checkpointed commit, never corrupt
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            if "malformed" in str(exc) or "not a database" in str(exc):  # its schema's pages scribbled over: say what brings it back
                raise CatalogError(f"the catalog {self.path} is damaged ({exc}); nothing was changed. {restore_hint(self.path)}") from None
            raise CatalogError(f"{self.path}: cannot open the catalog ({exc})") from None
        self._lock = threading.RLock()
        version = self._one("SELECT value FROM meta WHERE key='schema_version'")
        if version is not None and int(version) > SCHEMA_VERSION:
            raise CatalogError(f"{self.path}: catalog was written by a newer imgsim (schema {version})")
        if version is None or int(version) != SCHEMA_VERSION:  # opening writes nothing when nothing changes (a full disk still opens)
            migrate(self._db, int(version or SCHEMA_VERSION))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _chunks_in(self, sql: str, values: list, before: tuple = ()) -> Iterator[list[tuple]]:
        """Rows of ``sql`` whose ``IN ({})`` takes ``values``, asked 500 at a time (SQLite caps the
        number of parameters); ``before`` are the parameters ahead of the list. One lock per chunk,
        so other threads get their turn during a long request."""
        for start in range(0, len(values), 500):
            part = values[start : start + 500]
            with self._lock:
                yield self._db.execute(sql.format(",".join("?" * len(part))), (*before, *part)).fetchall()

    def _one(self, sql: str, args: tuple = ()):
        row = self._db.execute(sql, args).fetchone()
        return row[0] if row else None

    # --- library roots -------------------------------------------------------------------------

    def add_root(self, path: str) -> None:
        with self._lock:
            added = self._db.execute("INSERT OR IGNORE INTO roots VALUES (?, ?)", (path, time.time())).rowcount
        if added:
            self._user_choice_changed()

    def roots(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT path FROM roots ORDER BY path")]

    def remove_root(self, path: str) -> int:
        """Forget a library folder and what was indexed under it (the photos themselves stay)."""
        with self._lock, self._transaction():  # read and delete in one transaction: no indexer batch lands between
            others = [r for r in self.roots() if r != path]
            # Photos another root still covers (a folder inside another, or around it) stay, with their embeddings.
            gone = [p for p in self.files_under(path) if not _inside_any(p, others)]
            self._db.execute("DELETE FROM roots WHERE path = ?", (path,))
            self._db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in gone])
            self._db.execute("DELETE FROM excluded WHERE path = ? OR substr(path, 1, ?) = ?", (path, len(path) + 1, path + os.sep))
        self._user_choice_changed()
        return len(gone)

    def exclude(self, folder: str) -> int:
        """Leave a subfolder out of the library from now on; drops what was indexed there."""
        with self._lock, self._transaction():
            gone = list(self.files_under(folder))
            self._db.execute("INSERT OR IGNORE INTO excluded VALUES (?)", (folder,))
            self._db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in gone])
        self._user_choice_changed()
        return len(gone)

    def include(self, folder: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM excluded WHERE path = ?", (folder,))
        self._user_choice_changed()

    def excluded(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT path FROM excluded ORDER BY path")]

    # --- files ---------------------------------------------------------------------------------

    def files_under(self, root: str) -> dict[str, FileRecord]:
        """Known files inside ``root`` (a folder path), keyed by path."""
        prefix = root.rstrip("/\\")
        with self._lock:
            rows = self._db.execute(
                "SELECT id, path, size, mtime_ns, error FROM files WHERE path = ? OR substr(path, 1, ?) IN (?, ?)",
                (prefix, len(prefix) + 1, prefix + "/", prefix + "\\"),
            ).fetchall()
        return {r[1]: FileRecord(*r) for r in rows}

    # --- backup --------------------------------------------------------------------------------

    def backup_if_due(self, every_s: float = BACKUP_EVERY_S) -> bool:
        """Back up (see BACKED_UP) when the last backup is older than ``every_s``. Never raises:
        a backup that cannot be written (a full disk) must not stop the library from working."""
        target = backup_path(self.path)
        try:
            if target.exists() and time.time() - target.stat().st_mtime < every_s:
                return False
            self.backup()
            return True
        except (OSError, sqlite3.Error):
            return False

    def _user_choice_changed(self) -> None:
        """Folders, exclusions and "not duplicates" are what the user told us: the backup keeps
        them from the moment they change (a catalog damaged on the day a folder was added once
        restored to a backup without it)."""
        self.backup_if_due(every_s=0)

    def backup(self) -> Path:
        """Write BACKED_UP tables to the backup file beside the catalog (through a temporary
        file and a rename, so a crash leaves the previous backup whole)."""
        target = backup_path(self.path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.unlink(missing_ok=True)
        with self._lock:
            self._db.execute("ATTACH DATABASE ? AS bak", (str(tmp),))
            try:
                for table in BACKED_UP:
                    self._db.execute(f"CREATE TABLE bak.{table} AS SELECT * FROM main.{table}")
            finally:
                self._db.execute("DETACH DATABASE bak")
        os.replace(tmp, target)
        return target

    @classmethod
    def restore(cls, path: Path) -> dict[str, int]:
        """Replace a damaged catalog by its backup: the damaged file is kept beside it as
        ``*.damaged-<time>``; returns the rows restored per table. Embeddings are made again by
        the next indexing run."""
        path = Path(path)
        backup = backup_path(path)
        if not backup.exists():
            raise CatalogError(f"no backup of {path} to restore ({backup} does not exist)")
        if path.exists():
            aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(path, aside)
            for extra in ("-wal", "-shm"):
                Path(str(path) + extra).unlink(missing_ok=True)
        counts = {}
        with cls(path) as fresh, fresh._lock:
            fresh._db.execute("ATTACH DATABASE ? AS bak", (str(backup),))  # not inside a transaction: SQLite refuses that
            try:
                with fresh._transaction():
                    for table in BACKED_UP[1:]:  # not meta: the fresh catalog keeps its own schema version
                        have = {r[1] for r in fresh._db.execute(f"PRAGMA bak.table_info({table})")}
                        cols = ", ".join(c for c in (r[1] for r in fresh._db.execute(f"PRAGMA main.table_info({table})")) if c in have)
                        counts[table] = fresh._db.execute(f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM bak.{table}").rowcount
            finally:
                fresh._db.execute("DETACH DATABASE bak")
        return counts

    def fingerprints(self, paths: Iterable[str]) -> dict[str, str]:
        """The stored content fingerprints of ``paths`` (those that have one)."""
        found: dict[str, str] = {}
        for rows in self._chunks_in("SELECT path, fingerprint FROM files WHERE fingerprint IS NOT NULL AND path IN ({})", list(paths)):
            found.update(rows)
        return found

    def file_by_path(self, path: str) -> FileRecord | None:
        with self._lock:
            row = self._db.execute("SELECT id, path, size, mtime_ns, error FROM files WHERE path = ?", (path,)).fetchone()
        return FileRecord(*row) if row else None

    def embedded_file_ids(self, model: str) -> set[int]:
        """Files with a current embedding for ``model`` (one of an older recipe does not count)."""
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT file_id FROM embeddings WHERE model = ? AND recipe >= ?", (model, EMBEDDING_RECIPE))}

    def park(self, items: Iterable[tuple[str, int | None, str | None]]) -> int:
        """Take the rows of photos a cleanup moved or trashed out of the library, keeping them (and
        their embeddings) aside: (path, the cleanup step, its fingerprint where the row has none).
        One that comes back unchanged is relinked (``parked_with_sizes``, ``relink``), not embedded
        again. Returns how many rows were parked."""
        items = list(items)
        now = time.time()
        parked = 0
        with self._lock, self._transaction():
            for path, step, fingerprint in items:
                row = self._db.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
                if row is None:
                    continue
                pid = self._db.execute(
                    "INSERT INTO parked (step, path, size, mtime_ns, width, height, error, taken_at, camera, fingerprint, glance, sharpness, clipped, tags, parked_at) "
                    "SELECT ?, path, size, mtime_ns, width, height, error, taken_at, camera, COALESCE(fingerprint, ?), glance, sharpness, clipped, tags, ? FROM files WHERE id = ?",
                    (step, fingerprint, now, row[0]),
                ).lastrowid
                self._db.execute("INSERT INTO parked_embeddings (parked_id, model, vector, recipe) SELECT ?, model, vector, recipe FROM embeddings WHERE file_id = ?", (pid, row[0]))
                self._db.execute("DELETE FROM files WHERE id = ?", (row[0],))
                parked += 1
        return parked

    def parked_with_sizes(self, sizes: Iterable[int]) -> list[ContentRecord]:
        """Parked rows (a photo a cleanup took away) of these byte sizes, by their parked id."""
        sql = "SELECT id, path, size, mtime_ns, fingerprint, error FROM parked WHERE fingerprint IS NOT NULL AND size IN ({})"
        return [ContentRecord(*r) for rows in self._chunks_in(sql, sorted(set(sizes))) for r in rows]

    def parked_count(self) -> int:
        with self._lock:
            return self._one("SELECT COUNT(*) FROM parked")

    def drop_parked(self, steps: Iterable[int] = (), older_than: float | None = None) -> int:
        """Forget parked rows: those of ``steps`` (their file will not come back as it was), and
        those parked before ``older_than`` (a time)."""
        steps = list(steps)
        dropped = 0
        with self._lock, self._transaction():
            if steps:
                dropped += self._db.executemany("DELETE FROM parked WHERE step = ?", [(s,) for s in steps]).rowcount
            if older_than is not None:
                dropped += self._db.execute("DELETE FROM parked WHERE parked_at < ?", (older_than,)).rowcount
        return dropped

    def remove_files(self, paths: Iterable[str]) -> int:
        paths = list(paths)
        with self._lock, self._transaction():
            self._db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])
        return len(paths)

    def store_batch(self, model: str, items: list[Embedded], roots: list[str] | None = None) -> set[str]:
        """Commit one batch of outcomes atomically. A changed file loses all its old embeddings.

        ``roots`` are the library folders the batch was found under. The user may remove a folder
        or exclude a subfolder while it is being indexed; files there are not stored (they would
        be orphans nobody sees or cleans up). Returns the paths refused that way.
        """
        now = time.time()
        with self._lock, self._transaction():
            refused = _outside_library(self._db, items, roots or [])
            for it in items:
                if it.path in refused:
                    continue
                row = self._db.execute("SELECT id, size, mtime_ns FROM files WHERE path = ?", (it.path,)).fetchone()
                if row is None:
                    file_id = self._db.execute(
                        "INSERT INTO files (path, size, mtime_ns, width, height, error, updated_at, taken_at, camera) VALUES (?,?,?,?,?,?,?,?,?)",
                        (it.path, it.size, it.mtime_ns, it.width, it.height, it.error, now, it.taken_at, it.camera),
                    ).lastrowid
                else:
                    file_id = row[0]
                    if (row[1], row[2]) != (it.size, it.mtime_ns):
                        self._db.execute("DELETE FROM embeddings WHERE file_id = ?", (file_id,))
                        self._db.execute("UPDATE files SET glance = NULL, sharpness = NULL, clipped = NULL, tags = NULL WHERE id = ?", (file_id,))  # of the old content
                    self._db.execute(
                        "UPDATE files SET size=?, mtime_ns=?, width=?, height=?, error=?, updated_at=?, taken_at=?, camera=? WHERE id=?",
                        (it.size, it.mtime_ns, it.width, it.height, it.error, now, it.taken_at, it.camera, file_id),
                    )
                if it.vector is not None:
                    self._db.execute("DELETE FROM embeddings WHERE file_id = ? AND model = ?", (file_id, model))
                    self._db.execute(
                        "INSERT INTO embeddings (file_id, model, vector, recipe) VALUES (?,?,?,?)",
                        (file_id, model, np.ascontiguousarray(it.vector, dtype=np.float32).tobytes(), EMBEDDING_RECIPE),
                    )
        return refused

    def _transaction(self):
        db = self._db

        class _Tx:
            def __enter__(self_inner):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, *_):
                db.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()

    # --- embeddings ----------------------------------------------------------------------------

    def vector_ids(self, model: str) -> np.ndarray:
        with self._lock:
            rows = self._db.execute("SELECT id FROM embeddings WHERE model = ? ORDER BY id", (model,)).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def iter_vectors(self, model: str, ids: Iterable[int] | None = None, chunk: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (ids, vectors) chunks for a model, all of it or only the given vector ids."""
        if ids is None:
            last = 0
            while True:
                with self._lock:
                    rows = self._db.execute(
                        "SELECT id, vector FROM embeddings WHERE model = ? AND id > ? ORDER BY id LIMIT ?", (model, last, chunk)
                    ).fetchall()
                if not rows:
                    return
                last = rows[-1][0]
                yield _unpack(rows)
            return
        for rows in self._chunks_in("SELECT id, vector FROM embeddings WHERE id IN ({}) ORDER BY id", list(ids)):
            if rows:
                yield _unpack(rows)

    def vector_for_path(self, model: str, path: str) -> tuple[int, np.ndarray, int, int] | None:
        """(vector id, vector, size, mtime_ns) of a catalogued file, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT e.id, e.vector, f.size, f.mtime_ns FROM embeddings e JOIN files f ON f.id = e.file_id WHERE f.path = ? AND e.model = ?",
                (path, model),
            ).fetchone()
        return (row[0], np.frombuffer(row[1], dtype=np.float32), row[2], row[3]) if row else None

    def paths_for_vectors(self, ids: Iterable[int]) -> dict[int, str]:
        sql = "SELECT e.id, f.path FROM embeddings e JOIN files f ON f.id = e.file_id WHERE e.id IN ({})"
        return {vid: path for rows in self._chunks_in(sql, list(ids)) for vid, path in rows}

    def taken_for_vectors(self, ids: Iterable[int]) -> dict[int, tuple[str | None, str | None]]:
        """(EXIF date taken, camera) per vector id: what tells one moment's shots from another's."""
        sql = "SELECT e.id, f.taken_at, f.camera FROM embeddings e JOIN files f ON f.id = e.file_id WHERE e.id IN ({})"
        return {vid: (taken, camera) for rows in self._chunks_in(sql, list(ids)) for vid, taken, camera in rows}

    def photos(self, model: str | None = None) -> list[PhotoRow]:
        """Every readable photo (embedded with ``model`` when given), for the grid."""
        sql = f"SELECT {PHOTO_COLUMNS} FROM files f WHERE f.error IS NULL"
        args: tuple = ()
        if model:
            sql += " AND EXISTS (SELECT 1 FROM embeddings e WHERE e.file_id = f.id AND e.model = ?)"
            args = (model,)
        with self._lock:
            return [PhotoRow(*r) for r in self._db.execute(sql, args)]

    def known_paths(self) -> set[str]:
        """Every file the library knows, whatever its state or backbone."""
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT path FROM files")}

    def same_size_files(self) -> list[list[str]]:
        """Readable files sharing their byte size with another: the only candidates for exact copies."""
        with self._lock:
            rows = self._db.execute(
                "SELECT size, path FROM files WHERE error IS NULL AND size IN "
                "(SELECT size FROM files WHERE error IS NULL GROUP BY size HAVING COUNT(*) > 1) ORDER BY size, path"
            ).fetchall()
        groups: dict[int, list[str]] = {}
        for size, path in rows:
            groups.setdefault(size, []).append(path)
        return list(groups.values())

    def vector_ids_for_paths(self, model: str, paths: list[str]) -> dict[str, int]:
        sql = "SELECT f.path, e.id FROM files f JOIN embeddings e ON e.file_id = f.id WHERE e.model = ? AND f.path IN ({})"
        return {path: vid for rows in self._chunks_in(sql, list(paths), (model,)) for path, vid in rows}

    def photo(self, path: str) -> PhotoRow | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {PHOTO_COLUMNS} FROM files f WHERE f.path = ?", (path,)
            ).fetchone()
        return PhotoRow(*row) if row else None

    # --- cleanup log ---------------------------------------------------------------------------

    # The journal is written with synchronous=FULL: a step logged as begun must survive a power cut
    # as surely as the rename it announces (WAL + NORMAL could lose the last commits).

    def begin_step(self, batch: str, action: str, source: str, target: str | None, size: int | None,
                   mtime_ns: int | None = None, inode: int | None = None, undoes: int | None = None, note: str | None = None,
                   previous: bytes | None = None, written: str | None = None) -> int:  # fmt: skip
        """Log a cleanup step before it happens ('pending'); returns its id. ``note`` says what the
        step is part of (core.cleanup: a companion's photo step); it stays unless a close replaces it.
        A 'metadata' step (a sidecar written) keeps the sidecar's ``previous`` bytes and the sha256
        of what is ``written``."""
        with self._lock, self._durable():
            return self._db.execute(
                "INSERT INTO actions (batch, action, source, target, size, at, state, mtime_ns, inode, undoes, note, previous, written) "
                "VALUES (?,?,?,?,?,?,'pending',?,?,?,?,?,?)",
                (batch, action, source, target, size, time.time(), mtime_ns, inode, undoes, note, previous, written),
            ).lastrowid

    def update_step(self, step: int, *, target: str | None = None, temp: str | None = None, copy_inode: int | None = None) -> None:
        """A pending step's destination name, temporary copy or verified copy's inode: logged before it is used."""
        with self._lock, self._durable():
            self._db.execute(
                "UPDATE actions SET target = COALESCE(?, target), temp = COALESCE(?, temp), copy_inode = COALESCE(?, copy_inode) WHERE id = ?",
                (target, temp, copy_inode, step),
            )

    def finish_step(self, step: int, state: str, note: str | None = None, target: str | None = None) -> None:
        """Close a step: 'done' (the file is at its target; a restore also marks the move it undoes),
        'failed' or 'abandoned' (nothing moved). Without a ``note`` the one logged at the start stays;
        ``target``: where the file turned out to be (a trashed file's place in the Trash)."""
        with self._lock, self._durable(), self._transaction():
            self._db.execute("UPDATE actions SET state = ?, note = COALESCE(?, note), target = COALESCE(?, target), temp = NULL WHERE id = ?",
                             (state, note, target, step))  # fmt: skip
            if state == "done":
                self._db.execute(
                    "UPDATE actions SET undone_at = ? WHERE id = (SELECT undoes FROM actions WHERE id = ?)", (time.time(), step)
                )

    def pending_steps(self) -> list[dict]:
        return self._action_rows(" WHERE state = 'pending'", ())

    def step_state(self, step: int) -> str | None:
        """'pending', 'done', 'failed' or 'abandoned'; None for a step not in the journal."""
        with self._lock:
            row = self._db.execute("SELECT state FROM actions WHERE id = ?", (step,)).fetchone()
        return row[0] if row else None

    def actions(self, batch: str | None = None) -> list[dict]:
        """Finished cleanup steps (the history), oldest first."""
        return self._action_rows(" WHERE state = 'done'" + (" AND batch = ?" if batch else ""), (batch,) if batch else ())

    _ACTION_KEYS = ("id", "batch", "action", "source", "target", "size", "at", "undone_at", "state", "temp", "mtime_ns", "inode", "copy_inode", "note", "undoes",
                    "previous", "written")  # fmt: skip

    def _action_rows(self, where: str, args: tuple) -> list[dict]:
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(self._ACTION_KEYS)} FROM actions{where} ORDER BY id", args).fetchall()
        return [dict(zip(self._ACTION_KEYS, r, strict=True)) for r in rows]

    @contextlib.contextmanager
    def _durable(self):
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            yield
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")

    # --- "not duplicates" ----------------------------------------------------------------------

    def reject_pair(self, path_a: str, path_b: str) -> None:
        """Remember that two photos are not duplicates: find_groups never groups them again."""
        a, b = sorted((path_a, path_b))
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO rejected_pairs VALUES (?, ?, ?)", (a, b, time.time()))
        self._user_choice_changed()

    def unreject_pair(self, path_a: str, path_b: str) -> None:
        a, b = sorted((path_a, path_b))
        with self._lock:
            self._db.execute("DELETE FROM rejected_pairs WHERE path_a = ? AND path_b = ?", (a, b))
        self._user_choice_changed()

    def rejected_pairs(self) -> set[frozenset[str]]:
        with self._lock:
            return {frozenset(r) for r in self._db.execute("SELECT path_a, path_b FROM rejected_pairs")}

    # --- summaries -----------------------------------------------------------------------------

    def stats(self) -> dict:
        with self._lock:
            per_model = dict(self._db.execute("SELECT model, COUNT(*) FROM embeddings GROUP BY model").fetchall())
            return {
                "roots": self.roots(),
                "files": self._one("SELECT COUNT(*) FROM files"),
                "errors": self._one("SELECT COUNT(*) FROM files WHERE error IS NOT NULL"),
                "embeddings": per_model,
            }

    def forget_errors(self) -> int:
        """Drop the records of files that failed (they hold no embedding): the next run tries them
        again as new files. Returns how many."""
        with self._lock, self._transaction():
            return self._db.execute("DELETE FROM files WHERE error IS NOT NULL").rowcount

    def errors(self) -> list[tuple[str, str]]:
        with self._lock:
            return self._db.execute("SELECT path, error FROM files WHERE error IS NOT NULL ORDER BY path").fetchall()

    def integrity_ok(self) -> bool:
        with self._lock:
            return self._one("PRAGMA integrity_check") == "ok"

    # --- live library: fingerprints, moves and copies (v5) ---------------------------------------

    def set_fingerprints(self, items: Iterable[tuple[str, int, int, str]]) -> None:
        """Record (path, size, mtime_ns, fingerprint); a row whose file changed since is left alone."""
        rows = [(fp, path, size, mtime) for path, size, mtime, fp in items]
        with self._lock, self._transaction():
            self._db.executemany("UPDATE files SET fingerprint = ? WHERE path = ? AND size = ? AND mtime_ns = ?", rows)

    def set_glances(self, items: Iterable[tuple[str, int, int, bytes]]) -> None:
        """Record (path, size, mtime_ns, glance code); a row whose file changed since is left alone."""
        rows = [(code, path, size, mtime) for path, size, mtime, code in items]
        if rows:
            with self._lock, self._transaction():
                self._db.executemany("UPDATE files SET glance = ? WHERE path = ? AND size = ? AND mtime_ns = ?", rows)

    def set_qualities(self, items: Iterable[tuple[str, int, int, float, float, str]]) -> None:
        """Record (path, size, mtime_ns, sharpness, clipped, tags); a row whose file changed since is left alone."""
        rows = [(sharp, clipped, tags, path, size, mtime) for path, size, mtime, sharp, clipped, tags in items]
        if rows:
            with self._lock, self._transaction():
                self._db.executemany("UPDATE files SET sharpness = ?, clipped = ?, tags = ? WHERE path = ? AND size = ? AND mtime_ns = ?", rows)

    def glances(self, model: str) -> list[tuple[int, bytes | None, str, int, int]]:
        """(vector id, stored glance or None, path, size, mtime_ns) of each photo embedded with ``model``."""
        with self._lock:
            return self._db.execute(
                "SELECT e.id, f.glance, f.path, f.size, f.mtime_ns FROM embeddings e JOIN files f ON f.id = e.file_id WHERE e.model = ?", (model,)
            ).fetchall()

    def likeness_of(self, model: str, paths: Iterable[str]) -> dict[str, tuple[np.ndarray, bytes | None]]:
        """{path: (embedding under ``model``, stored glance or None)} of the ``paths`` that have an embedding."""
        sql = "SELECT f.path, e.vector, f.glance FROM files f JOIN embeddings e ON e.file_id = f.id WHERE e.model = ? AND f.path IN ({})"
        return {path: (np.frombuffer(vector, dtype=np.float32), glance) for rows in self._chunks_in(sql, list(paths), (model,)) for path, vector, glance in rows}

    def files_with_sizes(self, sizes: Iterable[int]) -> list[ContentRecord]:
        """Catalogued files of these byte sizes: the only possible sources of a moved or copied file."""
        sql = "SELECT id, path, size, mtime_ns, fingerprint, error FROM files WHERE size IN ({})"
        return [ContentRecord(*r) for rows in self._chunks_in(sql, sorted(set(sizes))) for r in rows]

    def file_states(self, model: str, paths: Iterable[str]) -> dict[str, tuple[FileRecord, bool]]:
        """For catalogued ``paths``: the row and whether it has a current embedding for ``model``."""
        sql = ("SELECT f.id, f.path, f.size, f.mtime_ns, f.error, EXISTS (SELECT 1 FROM embeddings e WHERE e.file_id = f.id AND e.model = ? AND e.recipe >= ?) "
               "FROM files f WHERE f.path IN ({})")  # fmt: skip
        return {r[1]: (FileRecord(*r[:5]), bool(r[5])) for rows in self._chunks_in(sql, list(paths), (model, EMBEDDING_RECIPE)) for r in rows}

    def paths_under(self, folder: str) -> list[str]:
        """Catalogued paths strictly inside ``folder``, by an index range scan (cheap for any size)."""
        prefix = folder.rstrip("/\\") + os.sep
        upper = prefix[:-1] + chr(ord(os.sep) + 1)  # every string starting with prefix sorts below this
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT path FROM files WHERE path >= ? AND path < ?", (prefix, upper))]

    def relink(self, items: list[Relink]) -> set[str]:
        """Give files found at a new path the rows (and so the embeddings) of identical content already
        catalogued, in one transaction. A move renames the row: its vector ids stay valid in a built
        Annoy index. A copy adds a row whose embeddings are copies of the source's. A row already at
        the destination (a file moved over another) is replaced. Returns the destinations applied."""
        done: set[str] = set()
        now = time.time()
        with self._lock, self._transaction():
            excluded = [r[0] for r in self._db.execute("SELECT path FROM excluded")]
            for it in items:
                if _inside_any(it.dest, excluded):
                    continue
                if it.parked:  # a photo a cleanup took away, back: its own row and embeddings again
                    if self._db.execute("SELECT 1 FROM parked WHERE id = ?", (it.source_id,)).fetchone() is None:
                        continue
                    self._db.execute("DELETE FROM files WHERE path = ?", (it.dest,))
                    new_id = self._db.execute(
                        "INSERT INTO files (path, size, mtime_ns, width, height, error, updated_at, taken_at, camera, fingerprint, glance, sharpness, clipped, tags) "
                        "SELECT ?, ?, ?, width, height, error, ?, taken_at, camera, COALESCE(?, fingerprint), glance, sharpness, clipped, tags FROM parked WHERE id = ?",
                        (it.dest, it.size, it.mtime_ns, now, it.fingerprint, it.source_id),
                    ).lastrowid
                    self._db.execute("INSERT INTO embeddings (file_id, model, vector, recipe) SELECT ?, model, vector, recipe FROM parked_embeddings WHERE parked_id = ?",
                                     (new_id, it.source_id))  # fmt: skip
                    self._db.execute("DELETE FROM parked WHERE id = ?", (it.source_id,))
                    done.add(it.dest)
                    continue
                source = self._db.execute("SELECT path FROM files WHERE id = ?", (it.source_id,)).fetchone()
                if source is None or source[0] == it.dest:
                    continue  # gone meanwhile (or nothing to do): the caller embeds the file instead
                self._db.execute("DELETE FROM files WHERE path = ?", (it.dest,))
                if it.copy:
                    new_id = self._db.execute(
                        "INSERT INTO files (path, size, mtime_ns, width, height, error, updated_at, taken_at, camera, fingerprint, glance, sharpness, clipped, tags) "
                        "SELECT ?, ?, ?, width, height, error, ?, taken_at, camera, ?, glance, sharpness, clipped, tags FROM files WHERE id = ?",
                        (it.dest, it.size, it.mtime_ns, now, it.fingerprint, it.source_id),
                    ).lastrowid
                    self._db.execute("INSERT INTO embeddings (file_id, model, vector, recipe) SELECT ?, model, vector, recipe FROM embeddings WHERE file_id = ?", (new_id, it.source_id))
                else:
                    self._db.execute(
                        "UPDATE files SET path = ?, size = ?, mtime_ns = ?, fingerprint = COALESCE(?, fingerprint), updated_at = ? WHERE id = ?",
                        (it.dest, it.size, it.mtime_ns, it.fingerprint, now, it.source_id),
                    )
                done.add(it.dest)
        return done


# What a PhotoRow holds, in its field order.
PHOTO_COLUMNS = "f.id, f.path, f.size, f.mtime_ns, f.width, f.height, f.taken_at, f.camera, f.sharpness, f.clipped, f.tags"


def _inside_any(path: str, folders: Iterable[str]) -> bool:
    return any(lexically_inside(path, f) for f in folders)


def _outside_library(db: sqlite3.Connection, items: list[Embedded], roots: list[str]) -> set[str]:
    """Paths in ``items`` that are excluded, or found under one of ``roots`` that is no longer a root."""
    current = {r[0] for r in db.execute("SELECT path FROM roots")}
    excluded = [r[0] for r in db.execute("SELECT path FROM excluded")]
    gone_roots = [r for r in roots if r not in current]
    return {it.path for it in items if _inside_any(it.path, excluded) or _inside_any(it.path, gone_roots)}


def _unpack(rows: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    return ids, vecs
