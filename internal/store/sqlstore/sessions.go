package sqlstore

import (
	"context"
	"fmt"

	"github.com/buildgate/buildgate"
)

// SaveConsoleSession stores a new console session and drops the expired
// ones.
func (s *DB) SaveConsoleSession(ctx context.Context, cs buildgate.ConsoleSession) error {
	err := s.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE expires_at <= ?`, s.now()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO console_sessions (id_hash, token_sealed, created_at, expires_at) VALUES (?, ?, ?, ?)`,
			cs.IDHash, cs.SealedToken, cs.CreatedAt.UTC(), cs.ExpiresAt.UTC())
		return err
	})
	if err != nil {
		return fmt.Errorf("storing a console session: %w", err)
	}
	return nil
}

// ConsoleSession returns the unexpired session whose id hashes to idHash;
// it is not found once expired or deleted.
func (s *DB) ConsoleSession(ctx context.Context, idHash string) (*buildgate.ConsoleSession, error) {
	cs := buildgate.ConsoleSession{IDHash: idHash}
	err := s.db.QueryRowContext(ctx, `SELECT token_sealed, created_at, expires_at FROM console_sessions WHERE id_hash = ? AND expires_at > ?`,
		idHash, s.now()).Scan(&cs.SealedToken, &cs.CreatedAt, &cs.ExpiresAt)
	if isNoRows(err) {
		return nil, buildgate.Errorf(buildgate.ENOTFOUND, "console session not found or expired")
	}
	if err != nil {
		return nil, fmt.Errorf("reading a console session: %w", err)
	}
	cs.CreatedAt, cs.ExpiresAt = cs.CreatedAt.UTC(), cs.ExpiresAt.UTC()
	return &cs, nil
}

// DeleteConsoleSession ends a session (sign-out, a revoked token).
func (s *DB) DeleteConsoleSession(ctx context.Context, idHash string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM console_sessions WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("deleting a console session: %w", err)
	}
	return nil
}
