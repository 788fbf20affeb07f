// Package sqlstore is the portable SQL behind buildgate's stores: every
// query of the store contract, written once over database/sql with "?"
// placeholders. The adapters (internal/store/sqlite, internal/store/postgres)
// open a connection, bring their own migrations and describe their dialect
// in a Dialect; this package knows no driver.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
)

// Dialect is what differs between the SQL engines an adapter speaks.
type Dialect struct {
	// Name names the engine in errors ("sqlite", "postgres").
	Name string
	// Numbered rewrites "?" placeholders as $1, $2... (PostgreSQL).
	Numbered bool
	// SkipLocked is appended to the SELECT that picks a job or delivery
	// to claim (" FOR UPDATE SKIP LOCKED" on PostgreSQL), so concurrent
	// claimers pass over rows another transaction is claiming.
	SkipLocked string
	// MigrationLock, when set, runs first in every migration transaction:
	// a lock that serialises migrations of processes starting at once
	// (PostgreSQL: an advisory transaction lock).
	MigrationLock string
	// Migrations holds the ordered .sql files under migrations/.
	Migrations fs.FS
	// TablesQuery lists the names of the store's tables.
	TablesQuery string
}

// DB is the store over one database/sql handle.
type DB struct {
	db      *conn
	raw     *sql.DB
	dialect Dialect
	now     func() time.Time
}

// Option configures New.
type Option func(*DB)

// WithClock makes the store stamp rows with now instead of the wall clock;
// the gate passes the one clock every part of it shares.
func WithClock(now func() time.Time) Option {
	return func(s *DB) { s.now = func() time.Time { return now().UTC() } }
}

// New returns the store over db, migrated. It owns db: Close closes it.
func New(ctx context.Context, db *sql.DB, d Dialect, opts ...Option) (*DB, error) {
	s := &DB{db: &conn{q: db, numbered: d.Numbered}, raw: db, dialect: d, now: func() time.Time { return time.Now().UTC() }}
	for _, o := range opts {
		o(s)
	}
	if err := s.migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrating the %s store: %w", d.Name, err)
	}
	return s, nil
}

// Close closes the database.
func (s *DB) Close() error { return s.raw.Close() }

// Ping checks that the database answers.
func (s *DB) Ping(ctx context.Context) error { return s.raw.PingContext(ctx) }

// Now returns the store's clock reading, in UTC.
func (s *DB) Now() time.Time { return s.now() }

func (s *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(s.dialect.Migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		body, err := fs.ReadFile(s.dialect.Migrations, name)
		if err != nil {
			return err
		}
		if err := s.tx(ctx, func(tx *Tx) error {
			if s.dialect.MigrationLock != "" {
				if _, err := tx.ExecContext(ctx, s.dialect.MigrationLock); err != nil {
					return fmt.Errorf("taking the migration lock: %w", err)
				}
			}
			if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMP NOT NULL)`); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
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

func (s *DB) tx(ctx context.Context, fn func(*Tx) error) error {
	tx, err := s.raw.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(&Tx{conn{q: tx, numbered: s.dialect.Numbered}}); err != nil {
		if rerr := tx.Rollback(); rerr != nil {
			return errors.Join(err, fmt.Errorf("rolling back: %w", rerr))
		}
		return err
	}
	return tx.Commit()
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs the portable queries, rewriting placeholders for the dialect.
type conn struct {
	q        querier
	numbered bool
}

// Tx is a transaction of the store.
type Tx struct{ conn }

func (c *conn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.q.ExecContext(ctx, c.bind(query), args...)
}

func (c *conn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.q.QueryContext(ctx, c.bind(query), args...)
}

func (c *conn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return c.q.QueryRowContext(ctx, c.bind(query), args...)
}

// bind rewrites "?" as $1, $2... outside quoted strings when the dialect
// numbers its placeholders.
func (c *conn) bind(q string) string {
	if !c.numbered || !strings.Contains(q, "?") {
		return q
	}
	return Rebind(q)
}

// Rebind rewrites the "?" placeholders of q as $1, $2..., leaving quoted
// strings and identifiers alone.
func Rebind(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		ch := q[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '\'' || ch == '"':
			quote = ch
		case ch == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(ch)
	}
	return b.String()
}

func notFound(what, id string) error {
	return buildgate.Errorf(buildgate.ENOTFOUND, "%s %q not found", what, id)
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
