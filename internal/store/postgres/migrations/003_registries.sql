CREATE TABLE registries (
    registry        TEXT PRIMARY KEY,
    name            TEXT NOT NULL DEFAULT '',
    username        TEXT NOT NULL DEFAULT '',
    type            TEXT NOT NULL,
    verify_tls      INTEGER NOT NULL DEFAULT 1,
    ca_cert         TEXT NOT NULL DEFAULT '',
    password_sealed TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    password_set_at TIMESTAMPTZ NOT NULL
);
