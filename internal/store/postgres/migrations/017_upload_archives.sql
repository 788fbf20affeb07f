-- Image archives uploaded to one replica of a shared store, in chunks,
-- until the analysis of their image is recorded: whichever replica claims
-- the job reads the archive from here. id is the job's pull reference.
CREATE TABLE upload_archives (
    id        TEXT PRIMARY KEY,
    digest    TEXT NOT NULL,
    checksum  TEXT NOT NULL,
    size      BIGINT NOT NULL,
    stored_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE upload_archive_chunks (
    upload_id TEXT NOT NULL REFERENCES upload_archives (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    data      BYTEA NOT NULL,
    PRIMARY KEY (upload_id, seq)
);
