-- Console sessions, so any replica serves a signed-in user and a restart
-- signs nobody out. A row is found by the hash of the session id (the
-- cookie's value, never stored) and holds the session's API token sealed
-- with a key derived from that id: the table alone opens nothing.
CREATE TABLE console_sessions (
    id_hash      TEXT PRIMARY KEY,
    token_sealed TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL
);
CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);
