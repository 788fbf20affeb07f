-- A stored verdict records what it was evaluated from (policy version,
-- matches, DB, tags) and until when time alone leaves it unchanged, so a
-- check answers from it while neither changed.
ALTER TABLE evaluations ADD COLUMN inputs TEXT NOT NULL DEFAULT '';
ALTER TABLE evaluations ADD COLUMN valid_until TIMESTAMP;
