package sqlstore

import (
	"context"
	"fmt"
	"time"
)

// ClaimRound claims the round of once-per-cluster work name (tag polling)
// starting at at, unless a gate started one after at-every: of replicas
// that tick together, one does the work. It reports whether the caller
// claimed the round.
func (s *DB) ClaimRound(ctx context.Context, name string, at time.Time, every time.Duration) (bool, error) {
	at = at.UTC()
	res, err := s.db.ExecContext(ctx, `INSERT INTO rounds (name, started_at) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET started_at = excluded.started_at WHERE rounds.started_at <= ?`,
		name, at, at.Add(-every))
	if err != nil {
		return false, fmt.Errorf("claiming a round of %s: %w", name, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
