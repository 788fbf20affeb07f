-- The queue claims with leases: a claim holds until claimed_until, renewed
-- while the work runs. Analyses running when the gate last stopped are
-- taken again at once.
ALTER TABLE images ADD COLUMN claimed_until TIMESTAMP;
UPDATE images SET claimed_until = updated_at WHERE status = 'analyzing';
CREATE INDEX images_claimed_until ON images (status, claimed_until);
