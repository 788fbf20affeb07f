package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/buildgate/buildgate/internal/image"
)

// CreateToken stores a token record under the hash of its secret.
func (s *DB) CreateToken(ctx context.Context, t image.Token, hash string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO tokens (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?)`,
		t.ID, t.Name, t.Role, hash, t.CreatedAt)
	if err != nil {
		return fmt.Errorf("creating token %q: %w", t.Name, err)
	}
	return nil
}

// TokenByHash finds the token whose secret hashes to hash and records its use.
func (s *DB) TokenByHash(ctx context.Context, hash string) (*image.Token, error) {
	var t image.Token
	var used sql.NullTime
	err := s.db.QueryRowContext(ctx, `SELECT id, name, role, created_at, last_used_at FROM tokens WHERE hash = ?`, hash).
		Scan(&t.ID, &t.Name, &t.Role, &t.CreatedAt, &used)
	if isNoRows(err) {
		return nil, image.Errorf(image.EUNAUTHORIZED, "unknown token")
	}
	if err != nil {
		return nil, fmt.Errorf("looking up token: %w", err)
	}
	if used.Valid {
		u := used.Time.UTC()
		t.LastUsedAt = &u
	}
	return &t, nil
}

// TouchToken records that a token was used now.
func (s *DB) TouchToken(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, s.now(), id)
	return err
}

// CountTokens counts stored tokens.
func (s *DB) CountTokens(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens`).Scan(&n)
	return n, err
}
