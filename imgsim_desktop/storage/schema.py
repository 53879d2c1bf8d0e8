"""The catalog's SQLite schema and how older catalogs are brought up to date."""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 10
# How this build makes an embedding. Bump it whenever the same photo and model would give another
# vector (decode size, preprocessing, weights): rows of an older recipe stay searchable and the next
# indexing run embeds those photos again, as it does changed files.
#   1: before catalog v6: JPEGs decoded as small as the model input allows (256 px for some)
#   2: decodes keep a shorter side of at least 320 px (shared with the duplicate check's features);
#      weights stored as float16, computed in float32
EMBEDDING_RECIPE = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS roots (
    path TEXT PRIMARY KEY,
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    width INTEGER,
    height INTEGER,
    error TEXT,                -- why decoding failed; NULL when the file is fine
    updated_at REAL NOT NULL,
    taken_at TEXT,             -- EXIF date taken (ISO 8601), NULL when unknown
    camera TEXT,
    fingerprint TEXT,          -- sampled content hash (core/fingerprint.py): moves and copies keep their embedding (v5)
    glance BLOB,               -- turn- and mirror-proof layout code (core/glance.py): finds turned copies (v8)
    sharpness REAL,            -- core/photo_quality.py, measured at indexing: keeper rules and best shot (v9)
    clipped REAL,              -- share of pixels crushed to black or blown to white (v9)
    tags TEXT                  -- kinds of metadata the file carries: "date,place,camera,..." (v9)
);
CREATE INDEX IF NOT EXISTS files_size ON files(size);
CREATE TABLE IF NOT EXISTS excluded (path TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS actions (   -- every cleanup step: the journal that makes a crash recoverable, and the history
    id INTEGER PRIMARY KEY,
    batch TEXT NOT NULL,       -- one confirmed cleanup = one batch
    action TEXT NOT NULL,      -- 'trash' | 'move' | 'restore'
    source TEXT NOT NULL,
    target TEXT,               -- where a moved file goes (NULL for trash)
    size INTEGER,
    at REAL NOT NULL,
    undone_at REAL,
    state TEXT NOT NULL DEFAULT 'done',  -- 'pending' (logged, maybe under way) | 'done' | 'failed' | 'abandoned' (v7)
    temp TEXT,                 -- a cross-volume copy's temporary name at the destination (v7)
    mtime_ns INTEGER,          -- the source as it was when the step began: recovery tells it apart (v7)
    inode INTEGER,
    copy_inode INTEGER,        -- a cross-volume copy's inode, once verified: recovery knows the target is ours (v7)
    note TEXT,                 -- why a step failed, or what recovery did (v7)
    undoes INTEGER,            -- a restore: the move it takes back (v7)
    previous BLOB,             -- a 'metadata' step: the sidecar's bytes before it was written (NULL: there was none) (v10)
    written TEXT               -- a 'metadata' step: sha256 of what was written, so Undo knows it is unchanged (v10)
);
CREATE TABLE IF NOT EXISTS embeddings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    vector BLOB NOT NULL,      -- float32, L2-normalised
    recipe INTEGER NOT NULL DEFAULT 1,  -- EMBEDDING_RECIPE that made it; older ones are embedded again (v6)
    UNIQUE (file_id, model)
);
CREATE INDEX IF NOT EXISTS embeddings_model ON embeddings(model, id);
-- Photos a cleanup took out of the library (moved or trashed), with their embeddings, so that one
-- that comes back unchanged (Undo) is relinked by its content instead of embedded again (v10).
CREATE TABLE IF NOT EXISTS parked (
    id INTEGER PRIMARY KEY,
    step INTEGER,              -- the cleanup step that took it away (actions.id)
    path TEXT NOT NULL,        -- where it was
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    width INTEGER,
    height INTEGER,
    error TEXT,
    taken_at TEXT,
    camera TEXT,
    fingerprint TEXT,
    glance BLOB,
    sharpness REAL,
    clipped REAL,
    tags TEXT,
    parked_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS parked_size ON parked(size);
CREATE TABLE IF NOT EXISTS parked_embeddings (
    parked_id INTEGER NOT NULL REFERENCES parked(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    vector BLOB NOT NULL,
    recipe INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS parked_embeddings_of ON parked_embeddings(parked_id);
CREATE TABLE IF NOT EXISTS rejected_pairs (   -- "not duplicates": never group these two again (v4)
    path_a TEXT NOT NULL,      -- by path, path_a < path_b: survives re-indexing and edits, not a rename
    path_b TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (path_a, path_b)
);
"""


def migrate(db: sqlite3.Connection, version: int) -> None:
    """Bring a catalog written at ``version`` up to SCHEMA_VERSION, in place."""
    if version < 2:  # v2 added what the grid and preview show
        columns = {r[1] for r in db.execute("PRAGMA table_info(files)")}
        for col in ("taken_at", "camera"):
            if col not in columns:
                db.execute(f"ALTER TABLE files ADD COLUMN {col} TEXT")
    # v3 -> v4 added rejected_pairs: new tables come from SCHEMA (IF NOT EXISTS), nothing to convert.
    if version < 5:  # v5: content fingerprints; older rows keep NULL and are matched by size + mtime
        if "fingerprint" not in {r[1] for r in db.execute("PRAGMA table_info(files)")}:
            db.execute("ALTER TABLE files ADD COLUMN fingerprint TEXT")
    if version < 6:  # v6: embedding recipes; every older row is recipe 1 (the column default)
        if "recipe" not in {r[1] for r in db.execute("PRAGMA table_info(embeddings)")}:
            db.execute("ALTER TABLE embeddings ADD COLUMN recipe INTEGER NOT NULL DEFAULT 1")
    if version < 7:  # v7: the cleanup journal; every older row was a finished step
        columns = {r[1] for r in db.execute("PRAGMA table_info(actions)")}
        for col, kind in (("state", "TEXT NOT NULL DEFAULT 'done'"), ("temp", "TEXT"), ("mtime_ns", "INTEGER"),
                          ("inode", "INTEGER"), ("copy_inode", "INTEGER"), ("note", "TEXT"), ("undoes", "INTEGER")):  # fmt: skip
            if col not in columns:
                db.execute(f"ALTER TABLE actions ADD COLUMN {col} {kind}")
    if version < 8:  # v8: glance codes; older rows keep NULL and get one at the next duplicates scan
        if "glance" not in {r[1] for r in db.execute("PRAGMA table_info(files)")}:
            db.execute("ALTER TABLE files ADD COLUMN glance BLOB")
    if version < 9:  # v9: photo quality; older rows keep NULL (the rules that need it stand aside) until re-indexed
        columns = {r[1] for r in db.execute("PRAGMA table_info(files)")}
        for col, kind in (("sharpness", "REAL"), ("clipped", "REAL"), ("tags", "TEXT")):
            if col not in columns:
                db.execute(f"ALTER TABLE files ADD COLUMN {col} {kind}")
    if version < 10:  # v10: a metadata step's sidecar bytes (parked rows are new tables, from SCHEMA)
        columns = {r[1] for r in db.execute("PRAGMA table_info(actions)")}
        for col, kind in (("previous", "BLOB"), ("written", "TEXT")):
            if col not in columns:
                db.execute(f"ALTER TABLE actions ADD COLUMN {col} {kind}")
    db.execute("CREATE INDEX IF NOT EXISTS actions_state ON actions(state)")  # here, not in SCHEMA: older tables lack the column until now
    db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
