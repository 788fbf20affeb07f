// Package sqlite is buildgate's store on embedded SQLite (modernc.org/sqlite,
// no cgo). The database/sql driver is github.com/glebarez/go-sqlite, a thin
// driver over modernc.org/sqlite's engine: grype already links it and
// registers the "sqlite" driver name, so registering modernc's own driver as
// well would panic. Migrations are embedded .sql files applied in order, each inside
// a transaction. The SQL outside this package's helpers stays portable so a
// PostgreSQL store can follow.
package sqlite

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	_ "github.com/glebarez/go-sqlite" // registers the "sqlite" driver

	"github.com/buildgate/buildgate/internal/image"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is the store.
type DB struct {
	db  *sql.DB
	now func() time.Time
}

// Option configures Open.
type Option func(*DB)

// WithClock makes the store stamp rows with now instead of the wall clock;
// the gate passes the one clock every part of it shares.
func WithClock(now func() time.Time) Option {
	return func(s *DB) { s.now = func() time.Time { return now().UTC() } }
}

// Open opens (creating if needed, with mode 0600) the SQLite file at path
// and migrates it. SQLite gives its -wal and -shm files the database
// file's mode, so none of them is readable by others.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("creating %q: %w", path, err)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening %q: %w", path, err)
	}
	// One connection serialises writers; SQLite allows one writer anyway.
	db.SetMaxOpenConns(1)
	s := &DB{db: db, now: func() time.Time { return time.Now().UTC() }}
	for _, o := range opts {
		o(s)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrating %q: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

func (s *DB) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMP NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		body, err := migrationFS.ReadFile(name)
		if err != nil {
			return err
		}
		if err := s.tx(ctx, func(tx *sql.Tx) error {
			for _, stmt := range strings.Split(string(body), ";\n") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`, name, s.now())
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

func (s *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func gunzip(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, nil
	}
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func gzJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return gz(b), nil
}

func ungzJSON(b []byte, v any) error {
	raw, err := gunzip(b)
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, v)
}

func notFound(what, id string) error {
	return image.Errorf(image.ENOTFOUND, "%s %q not found", what, id)
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
