-- Rounds of once-per-cluster work (tag polling): the replica that claims
-- a round does it.
CREATE TABLE rounds (
    name       TEXT PRIMARY KEY,
    started_at TIMESTAMP NOT NULL
);
