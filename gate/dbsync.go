package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/buildgate/buildgate"
)

// Replicas sharing a store (PostgreSQL) share one vulnerability DB: the
// gate that imports or updates one publishes its archive in the store
// before it swaps it in (vulndb.Options.Publish), and every gate loads the
// newest stored archive within --db-sync-interval. A re-match runs on a
// gate that has its DB loaded, so no verdict mixes two DBs.

// storeSource is the source of a DB loaded from the store: such a DB is
// not published again.
const storeSource = "store:"

// publishDB stores the archive at path as the cluster's DB unless it
// holds the DB the store has already (a gate loading the store's DB, or
// one updating to the same build as another).
func (m *Main) publishDB(ctx context.Context, path string, info buildgate.DBInfo, source string) error {
	if strings.HasPrefix(source, storeSource) {
		return nil
	}
	cur, err := m.Store.LatestDBArchive(ctx)
	if err != nil {
		return err
	}
	if cur != nil && cur.Built.Equal(info.Built) {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	a, err := m.Store.PutDBArchive(ctx, f, info.Built)
	if err != nil {
		return err
	}
	m.Log.Info("vulnerability DB published to the replicas", "built", a.Built, "checksum", a.Checksum, "bytes", a.Size, "generation", a.Generation)
	return nil
}

// syncDB loads the store's DB now and every interval until ctx ends, on a
// shared store only.
func (m *Main) syncDB(ctx context.Context) {
	if !m.sharedStore {
		return
	}
	t := time.NewTicker(m.Config.DBSyncInterval)
	defer t.Stop()
	for {
		if err := m.loadStoredDB(ctx); err != nil && ctx.Err() == nil {
			m.Log.Warn("loading the replicas' vulnerability DB from the store; keeping the current DB", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// loadStoredDB loads the newest DB archive of the store unless it is the
// DB in use, then requests the re-match against it.
func (m *Main) loadStoredDB(ctx context.Context) error {
	a, err := m.Store.LatestDBArchive(ctx)
	if err != nil || a == nil {
		return err
	}
	if a.Built.Equal(m.VulnDB.Info().Built) {
		return nil
	}
	f, err := os.CreateTemp(m.Config.DataDir, "db-sync-*.archive")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = m.Store.ReadDBArchive(ctx, a, f) // checked against its checksum
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("reading archive %s (built %s): %w", a.ID, a.Built.Format(time.RFC3339), err)
	}
	info, err := m.VulnDB.ImportFileAs(ctx, f.Name(), storeSource+a.ID)
	if err != nil {
		return err
	}
	m.Log.Info("vulnerability DB loaded from the store", "built", info.Built, "generation", a.Generation)
	// Analyses this gate finished with its older DB join the re-match;
	// the same request of another gate's keeps its claim.
	return m.requestRematch(ctx)
}
