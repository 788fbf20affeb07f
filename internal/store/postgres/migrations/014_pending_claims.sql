-- Pending work is claimed with a lease, so of replicas sharing a store
-- one does it (a re-match after a DB change runs once per cluster).
ALTER TABLE pending_work ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE pending_work ADD COLUMN claimed_until TIMESTAMPTZ;
