CREATE TABLE channels (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    type          TEXT NOT NULL,
    config        TEXT NOT NULL,
    secret_sealed TEXT NOT NULL DEFAULT '',
    secret_set_at TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    enabled     INTEGER NOT NULL DEFAULT 1,
    scope       TEXT NOT NULL,
    triggers    TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE alert_channels (
    alert_id   TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    channel_id TEXT NOT NULL REFERENCES channels (id),
    position   INTEGER NOT NULL,
    PRIMARY KEY (alert_id, channel_id)
);
CREATE INDEX alert_channels_channel ON alert_channels (channel_id);

CREATE TABLE subscription_channels (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    channel_id      TEXT NOT NULL REFERENCES channels (id),
    position        INTEGER NOT NULL,
    PRIMARY KEY (subscription_id, channel_id)
);
CREATE INDEX subscription_channels_channel ON subscription_channels (channel_id);

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    source_type     TEXT NOT NULL,
    source_id       TEXT NOT NULL,
    channel_id      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    event_key       TEXT NOT NULL,
    message         TEXT NOT NULL,
    body            BYTEA NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ,
    delivered_at    TIMESTAMPTZ,
    last_error      TEXT NOT NULL DEFAULT '',
    claimed_by      TEXT NOT NULL DEFAULT '',
    claimed_until   TIMESTAMPTZ,
    UNIQUE (source_type, source_id, channel_id, event_key)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_source ON deliveries (source_type, source_id, created_at);

CREATE TABLE delivery_attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    ok          INTEGER NOT NULL,
    status_code INTEGER NOT NULL DEFAULT 0,
    answer      TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    duration_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (delivery_id, attempt)
);

CREATE TABLE runtime_clusters (
    cluster     TEXT PRIMARY KEY,
    observed_at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE runtime_containers (
    cluster      TEXT NOT NULL REFERENCES runtime_clusters (cluster) ON DELETE CASCADE,
    namespace    TEXT NOT NULL,
    pod          TEXT NOT NULL,
    container    TEXT NOT NULL,
    image        TEXT NOT NULL,
    image_tag    TEXT NOT NULL DEFAULT '',
    image_digest TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (cluster, namespace, pod, container)
);
CREATE INDEX runtime_containers_tag ON runtime_containers (image_tag);
CREATE INDEX runtime_containers_digest ON runtime_containers (image_digest);

CREATE TABLE vulnerability_changes (
    id          TEXT PRIMARY KEY,
    digest      TEXT NOT NULL REFERENCES images (digest) ON DELETE CASCADE,
    db_built    TIMESTAMPTZ,
    changed_at  TIMESTAMPTZ NOT NULL,
    appeared    BYTEA NOT NULL,
    disappeared BYTEA NOT NULL
);
CREATE INDEX vulnerability_changes_digest ON vulnerability_changes (digest, changed_at);

CREATE TABLE tag_digests (
    tag        TEXT PRIMARY KEY,
    digest     TEXT NOT NULL DEFAULT '',
    checked_at TIMESTAMPTZ NOT NULL,
    error      TEXT NOT NULL DEFAULT ''
);
