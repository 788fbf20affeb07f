CREATE TABLE pending_work (
    kind         TEXT PRIMARY KEY,
    arg          TEXT NOT NULL,
    requested_at TIMESTAMP NOT NULL
);
