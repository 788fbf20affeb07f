CREATE TABLE policies (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    active     INTEGER NOT NULL DEFAULT 0,
    version    INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE policy_versions (
    policy_id  TEXT NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    bundle     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (policy_id, version)
);

CREATE TABLE evaluations (
    digest         TEXT NOT NULL REFERENCES images (digest) ON DELETE CASCADE,
    tag            TEXT NOT NULL,
    policy_id      TEXT NOT NULL,
    policy_version INTEGER NOT NULL,
    final_action   TEXT NOT NULL,
    db_built       TIMESTAMPTZ,
    evaluated_at   TIMESTAMPTZ NOT NULL,
    result         BYTEA NOT NULL,
    PRIMARY KEY (digest, tag, policy_id)
);
