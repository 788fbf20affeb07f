// Package vulndbtest builds a real grype v6 DB archive from the shared
// advisory data (../shared/vulndata next to the module root) for tests, and
// opens vulndb Managers on it.
package vulndbtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/buildgate/buildgate/internal/shareddir"
	"github.com/buildgate/buildgate/internal/vulndb"
)

// SharedEnv names the environment variable SharedDir reads first.
const SharedEnv = shareddir.Env

// Timestamp is the build time of the archive Archive builds.
var Timestamp = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

var (
	once    sync.Once
	result  *vulndb.BuildResult
	errOnce error
)

// SharedDir returns the shared material directory (see package shareddir).
var SharedDir = shareddir.Dir

// BuildConfig returns the build of the shared data: every workspace under
// vulndata/workspaces and every OSV directory under vulndata/osv, into
// outDir, at Timestamp.
func BuildConfig(outDir string) (vulndb.BuildConfig, error) {
	shared, err := SharedDir()
	if err != nil {
		return vulndb.BuildConfig{}, err
	}
	cfg := vulndb.BuildConfig{OutDir: outDir, Timestamp: Timestamp}
	for _, kind := range []string{"workspaces", "osv"} {
		root := filepath.Join(shared, "vulndata", kind)
		entries, err := os.ReadDir(root)
		if err != nil {
			return vulndb.BuildConfig{}, err
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			p := vulndb.ProviderDir{Name: e.Name(), Dir: filepath.Join(root, e.Name())}
			if kind == "osv" {
				cfg.OSV = append(cfg.OSV, p)
			} else {
				cfg.Providers = append(cfg.Providers, p)
			}
		}
	}
	if len(cfg.Providers)+len(cfg.OSV) == 0 {
		return vulndb.BuildConfig{}, errors.New("no providers in the shared vulndata")
	}
	return cfg, nil
}

// Archive returns the path of a DB archive built from the shared data. It is
// built once per test binary into a per-process directory under
// os.TempDir() (buildgate-vulndbtest-<pid>), which outlives each test so
// that every test of the binary can use it. Nothing can remove it when the
// process ends; instead each build removes the directories of test
// processes that are gone (they are about 1.5 MB each).
func Archive(tb testing.TB) string {
	tb.Helper()
	r := build(tb)
	return r.ArchivePath
}

// Result returns the BuildResult of the archive Archive returns.
func Result(tb testing.TB) *vulndb.BuildResult {
	tb.Helper()
	return build(tb)
}

func build(tb testing.TB) *vulndb.BuildResult {
	tb.Helper()
	once.Do(func() {
		removeStale()
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("%s%d", dirPrefix, os.Getpid()))
		if err := os.RemoveAll(dir); err != nil {
			errOnce = err
			return
		}
		cfg, err := BuildConfig(dir)
		if err != nil {
			errOnce = err
			return
		}
		result, errOnce = vulndb.Build(context.Background(), cfg)
	})
	if errOnce != nil {
		tb.Fatalf("building test vulnerability db: %v", errOnce)
	}
	return result
}

const dirPrefix = "buildgate-vulndbtest-"

// removeStale removes the archive directories of test processes that no
// longer run (unix only: signal 0 tells whether a process exists).
func removeStale() {
	if runtime.GOOS == "windows" {
		return
	}
	entries, _ := os.ReadDir(os.TempDir())
	for _, e := range entries {
		pid, err := strconv.Atoi(strings.TrimPrefix(e.Name(), dirPrefix))
		if !e.IsDir() || !strings.HasPrefix(e.Name(), dirPrefix) || err != nil || pid == os.Getpid() {
			continue
		}
		if p, err := os.FindProcess(pid); err == nil {
			if err := p.Signal(syscall.Signal(0)); err == nil || errors.Is(err, syscall.EPERM) {
				continue // still running
			}
		}
		_ = os.RemoveAll(filepath.Join(os.TempDir(), e.Name()))
	}
}

// Manager returns a Manager over a t.TempDir() with the Archive imported,
// closed when the test ends.
func Manager(tb testing.TB) *vulndb.Manager {
	tb.Helper()
	return ManagerWith(tb, vulndb.DefaultOptions())
}

// ManagerWith is Manager with the given options (MatchCacheSize 0 makes
// a manager without a match cache, to compare with).
func ManagerWith(tb testing.TB, opts vulndb.Options) *vulndb.Manager {
	tb.Helper()
	m, err := vulndb.Open(tb.TempDir(), opts)
	if err != nil {
		tb.Fatalf("opening vulnerability db manager: %v", err)
	}
	tb.Cleanup(func() { _ = m.Close() })
	if _, err := m.ImportFile(context.Background(), Archive(tb)); err != nil {
		tb.Fatalf("importing test vulnerability db: %v", err)
	}
	return m
}
