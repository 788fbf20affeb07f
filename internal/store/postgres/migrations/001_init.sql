CREATE TABLE images (
    digest       TEXT PRIMARY KEY,
    source       TEXT NOT NULL,
    pull_ref     TEXT NOT NULL DEFAULT '',
    index_digest TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL,
    error        TEXT NOT NULL DEFAULT '',
    dockerfile   TEXT NOT NULL DEFAULT '',
    annotations  TEXT NOT NULL DEFAULT '{}',
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    queued_at    TIMESTAMPTZ,
    claimed_by   TEXT NOT NULL DEFAULT '',
    claimed_at   TIMESTAMPTZ,
    attempts     INTEGER NOT NULL DEFAULT 0,
    analyzed_at  TIMESTAMPTZ
);
CREATE INDEX images_status_queued ON images (status, queued_at);

CREATE TABLE image_tags (
    digest      TEXT NOT NULL REFERENCES images (digest) ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    detected_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (digest, tag)
);
CREATE INDEX image_tags_tag ON image_tags (tag);

CREATE TABLE analyses (
    digest      TEXT PRIMARY KEY REFERENCES images (digest) ON DELETE CASCADE,
    sbom        BYTEA NOT NULL,
    metadata    TEXT NOT NULL,
    packages    BYTEA NOT NULL,
    files       BYTEA NOT NULL,
    secrets     TEXT NOT NULL,
    content     TEXT NOT NULL,
    matches     BYTEA NOT NULL,
    db_built    TIMESTAMPTZ,
    matched_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ
);
