CREATE TABLE admission_rules (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    position         INTEGER NOT NULL,
    namespaces       TEXT NOT NULL,
    namespace_labels TEXT NOT NULL,
    scope            TEXT NOT NULL,
    mode             TEXT NOT NULL,
    policy           TEXT NOT NULL DEFAULT '',
    wait_ms          INTEGER NOT NULL,
    on_error         TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);

CREATE TABLE admission_decisions (
    id         TEXT PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    uid        TEXT NOT NULL,
    cluster    TEXT NOT NULL DEFAULT '',
    namespace  TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL DEFAULT '',
    name       TEXT NOT NULL DEFAULT '',
    operation  TEXT NOT NULL DEFAULT '',
    username   TEXT NOT NULL DEFAULT '',
    allowed    INTEGER NOT NULL,
    would_deny INTEGER NOT NULL DEFAULT 0,
    rule_id    TEXT NOT NULL DEFAULT '',
    rule_name  TEXT NOT NULL DEFAULT '',
    mode       TEXT NOT NULL DEFAULT '',
    message    TEXT NOT NULL DEFAULT '',
    warnings   TEXT NOT NULL,
    images     TEXT NOT NULL
);
CREATE INDEX admission_decisions_created ON admission_decisions (created_at);
CREATE INDEX admission_decisions_namespace ON admission_decisions (cluster, namespace, created_at);

CREATE TABLE admission_namespaces (
    cluster    TEXT NOT NULL,
    name       TEXT NOT NULL,
    labels     TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (cluster, name)
);
