-- The vulnerability DB every replica of a shared store loads: the archive
-- the last import or update installed, in chunks, with its build time and
-- checksum. Only the newest generation is kept.
CREATE TABLE db_archives (
    id         TEXT PRIMARY KEY,
    generation BIGINT NOT NULL UNIQUE,
    built      TIMESTAMPTZ NOT NULL,
    checksum   TEXT NOT NULL,
    size       BIGINT NOT NULL,
    stored_at  TIMESTAMPTZ NOT NULL
);
CREATE TABLE db_archive_chunks (
    archive_id TEXT NOT NULL REFERENCES db_archives (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    data       BYTEA NOT NULL,
    PRIMARY KEY (archive_id, seq)
);
