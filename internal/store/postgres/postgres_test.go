package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/buildgate/buildgate/internal/store"
	"github.com/buildgate/buildgate/internal/store/postgres"
	"github.com/buildgate/buildgate/internal/store/postgres/pgtest"
	"github.com/buildgate/buildgate/internal/store/storetest"
)

var _ store.Store = (*postgres.DB)(nil)

var server *pgtest.Server

func TestMain(m *testing.M) {
	if pgtest.Available() == "" {
		var err error
		if server, err = pgtest.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "starting PostgreSQL:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if server != nil {
		server.Stop()
	}
	os.Exit(code)
}

func open(t *testing.T, url string, now func() time.Time) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, postgres.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	pgtest.Skip(t)
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		return open(t, server.NewDatabase(t), now)
	})
}

// TestConcurrentMigrations starts several stores on one empty database at
// once, as replicas starting together do: the advisory lock lets one
// migrate while the others wait, and every one opens.
func TestConcurrentMigrations(t *testing.T) {
	pgtest.Skip(t)
	url := server.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := postgres.Open(context.Background(), url)
			if err == nil {
				_, err = db.CountTokens(context.Background())
				db.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("store %d: %v", i, err)
		}
	}
}

func TestOpenErrorsRedactThePassword(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"unreachable", "postgres://gate:s3cret-pw@127.0.0.1:1/gate?sslmode=disable&connect_timeout=2", "postgres://gate:xxxxx@127.0.0.1:1/gate"},
		{"password in the query", "postgres://gate@127.0.0.1:1/gate?sslmode=disable&password=s3cret-pw&connect_timeout=2", "password=xxxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := postgres.Open(context.Background(), tt.url)
			if err == nil {
				t.Fatal("opened an unreachable database")
			}
			if strings.Contains(err.Error(), "s3cret-pw") || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "connect") {
				t.Errorf("error = %v, want the redacted URL %q and the driver's reason", err, tt.want)
			}
		})
	}
}
