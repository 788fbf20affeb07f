// Package sqlite is buildgate's store on embedded SQLite (modernc.org/sqlite,
// no cgo): one process, one file. The database/sql driver is
// github.com/glebarez/go-sqlite, a thin driver over modernc.org/sqlite's
// engine: grype already links it and registers the "sqlite" driver name, so
// registering modernc's own driver as well would panic. The queries are
// internal/store/sqlstore's; this package opens the file and brings the
// SQLite migrations (embedded .sql files applied in order, each inside a
// transaction).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	_ "github.com/glebarez/go-sqlite" // registers the "sqlite" driver

	"github.com/buildgate/buildgate/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is the store.
type DB struct {
	*sqlstore.DB
}

// Option configures Open.
type Option = sqlstore.Option

// WithClock makes the store stamp rows with now instead of the wall clock;
// the gate passes the one clock every part of it shares.
func WithClock(now func() time.Time) Option { return sqlstore.WithClock(now) }

// Dialect is SQLite's: "?" placeholders, no row locks (one connection
// serialises writers), no migration lock (one process owns the file).
var Dialect = sqlstore.Dialect{
	Name:        "sqlite",
	Migrations:  migrationFS,
	TablesQuery: `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`,
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
	s, err := sqlstore.New(ctx, db, Dialect, opts...)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening %q: %w", path, err)
	}
	return &DB{s}, nil
}
