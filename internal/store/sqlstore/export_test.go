package sqlstore

import "context"

// Bytes reads the one value query selects as it is stored.
func (s *DB) Bytes(ctx context.Context, query string) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, query).Scan(&b)
	return b, err
}

// Exec runs a statement on the store's database: tests write rows there
// as an older gate wrote them.
func (s *DB) Exec(ctx context.Context, query string, args ...any) error {
	_, err := s.db.ExecContext(ctx, query, args...)
	return err
}

// Gzipped compresses a document as gates before zstd stored it.
var Gzipped = gzipped
