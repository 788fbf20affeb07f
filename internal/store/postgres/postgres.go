// Package postgres is buildgate's store on PostgreSQL (pgx v5 through
// database/sql), for several gate replicas sharing one database. The
// queries are internal/store/sqlstore's; this package opens the
// connection, brings the PostgreSQL migrations and describes the dialect:
// numbered placeholders, claims that skip rows another replica is claiming
// (FOR UPDATE SKIP LOCKED), and migrations serialised by an advisory lock so
// replicas starting at once are safe.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"net/url"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/buildgate/buildgate/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLockKey names buildgate's advisory lock on migrations.
const migrationLockKey = 0x6275696c64 // "build"

// Dialect is PostgreSQL's.
var Dialect = sqlstore.Dialect{
	Name:          "postgres",
	Numbered:      true,
	SkipLocked:    " FOR UPDATE SKIP LOCKED",
	MigrationLock: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLockKey),
	Migrations:    migrationFS,
	TablesQuery:   `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`,
}

// DB is the store.
type DB struct {
	*sqlstore.DB
}

// Option configures Open.
type Option = sqlstore.Option

// WithClock makes the store stamp rows with now instead of the wall clock;
// the gate passes the one clock every part of it shares.
func WithClock(now func() time.Time) Option { return sqlstore.WithClock(now) }

// Open connects to the database at dsn (postgres://user:pass@host/db?...),
// checks that it answers and migrates it. Errors name the URL with its
// password redacted.
func Open(ctx context.Context, dsn string, opts ...Option) (*DB, error) {
	name := Redact(dsn)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", name, err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to %s: %w", name, err)
	}
	s, err := sqlstore.New(ctx, db, Dialect, opts...)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening %s: %w", name, err)
	}
	return &DB{s}, nil
}

// Redact returns dsn with its password replaced by "xxxxx", for errors and
// logs; a dsn that is not a URL is replaced whole.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "(unparsable PostgreSQL URL)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
