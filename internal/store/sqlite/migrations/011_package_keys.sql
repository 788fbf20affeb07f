-- The package list of an analysed image: the packages the vulnerability
-- matcher reads from its SBOM, kept compactly (gzipped JSON), so that a
-- re-match after a DB change does not decode the SBOM again.
CREATE TABLE package_lists (
    digest TEXT PRIMARY KEY REFERENCES analyses (digest) ON DELETE CASCADE,
    list   BLOB NOT NULL
);
