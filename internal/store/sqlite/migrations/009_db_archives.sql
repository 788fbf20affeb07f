-- The vulnerability DB every replica of a shared store loads: the archive
-- the last import or update installed, in chunks, with its build time and
-- checksum. Only the newest generation is kept.
CREATE TABLE db_archives (
    id         TEXT PRIMARY KEY,
    generation INTEGER NOT NULL UNIQUE,
    built      TIMESTAMP NOT NULL,
    checksum   TEXT NOT NULL,
    size       INTEGER NOT NULL,
    stored_at  TIMESTAMP NOT NULL
);
CREATE TABLE db_archive_chunks (
    archive_id TEXT NOT NULL REFERENCES db_archives (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    data       BLOB NOT NULL,
    PRIMARY KEY (archive_id, seq)
);
