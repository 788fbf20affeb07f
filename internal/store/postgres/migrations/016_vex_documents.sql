-- VEX documents (OpenVEX or CycloneDX) an admin stored: each applies to
-- the images of the repositories its scope (a glob over
-- "registry/repository", "*" for all) matches. The document is kept as
-- sent; statements counts its statements for listings.
CREATE TABLE vex_documents (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    format     TEXT NOT NULL,
    statements INTEGER NOT NULL,
    document   TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
