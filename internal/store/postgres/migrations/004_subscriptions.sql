CREATE TABLE subscriptions (
    id         TEXT PRIMARY KEY,
    sub_key    TEXT NOT NULL,
    sub_type   TEXT NOT NULL,
    active     INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (sub_key, sub_type)
);
