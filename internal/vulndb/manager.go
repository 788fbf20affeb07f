package vulndb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v6 "github.com/anchore/grype/grype/db/v6"
	"github.com/anchore/grype/grype/vulnerability"

	"github.com/buildgate/buildgate"
)

// ErrNotReady is returned by Match when no vulnerability DB is installed.
var ErrNotReady = errors.New("vulnerability db not ready: none installed (import one or run an update)")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("vulnerability db manager closed")

// Layout of the data directory, under <data>/vulndb.
const (
	dirName        = "vulndb"
	currentLink    = "current"          // symlink to the active db-* directory
	dbDirPrefix    = "db-"              // one directory per installed DB, never changed once active
	stagingPrefix  = "staging-"         // scratch space of an import or update
	lastUpdateFile = "last_update.json" // the last update attempt and its error
)

// Options configure a Manager.
type Options struct {
	// HTTPClient fetches listings and archives in Update.
	HTTPClient *http.Client
	// MaxArchiveSize bounds an imported or downloaded archive in bytes;
	// zero or less means no bound.
	MaxArchiveSize int64
	// Now is the clock the DB's age is measured with; nil means the wall clock.
	Now func() time.Time
	// Publish, when set, is given each validated archive (its path, the
	// DB it holds and where it came from: "import", a path or the update's
	// archive URL, or what ImportFileAs names) before the DB is swapped in;
	// an error refuses the archive. Gates sharing a store publish there
	// the DB every replica loads.
	Publish func(ctx context.Context, archivePath string, info buildgate.DBInfo, source string) error
	// MatchCacheSize bounds, in estimated bytes, what each package was
	// found to match in the DB in use, kept so that a package many images
	// share is matched once per DB, and the metadata of the
	// vulnerabilities they match (a quarter of it); zero or less keeps
	// nothing.
	MatchCacheSize int64
	// WarmBudget bounds the time an import or update spends, before it
	// swaps the new DB in, matching in it the packages the DB in use has
	// matched, most recently used first (what its match cache holds): the
	// images a gate sees are mostly built on what it has seen, and are
	// then not matched from scratch after the swap. Zero or less warms
	// nothing.
	WarmBudget time.Duration
}

// DefaultWarmBudget is the warming an import or update does unless told
// otherwise (Options.WarmBudget).
const DefaultWarmBudget = 10 * time.Second

// DefaultOptions returns the options a Manager uses unless told otherwise:
// a plain HTTP client with a 10-minute timeout and a 4 GiB archive bound
// (grype's official v6 archive is about 200 MB).
func DefaultOptions() Options {
	return Options{
		HTTPClient:     &http.Client{Timeout: 10 * time.Minute},
		MaxArchiveSize: 4 << 30,
		MatchCacheSize: DefaultMatchCacheSize,
		WarmBudget:     DefaultWarmBudget,
	}
}

// Status describes the installed DB and the last update attempt.
type Status struct {
	Ready         bool                 `json:"ready"`
	SchemaVersion string               `json:"schema_version,omitempty"`
	Built         time.Time            `json:"built,omitzero"`
	Age           time.Duration        `json:"age"`
	Providers     []buildgate.Provider `json:"providers,omitempty"`
	Distros       []string             `json:"distros,omitempty"`
	// LastUpdateAttempt is when Update last ran, if ever.
	LastUpdateAttempt *time.Time `json:"last_update_attempt,omitempty"`
	// LastUpdateError is why that attempt failed; empty when it succeeded.
	LastUpdateError string `json:"last_update_error,omitempty"`
	// Path is the SQLite file in use.
	Path string `json:"path,omitempty"`
	// Error says why an installed DB could not be opened, if so.
	Error string `json:"error,omitempty"`
	// Warmed is what the DB in use was warmed with before it was swapped
	// in (Options.WarmBudget); nil for a DB opened at start.
	Warmed *Warmed `json:"warmed,omitempty"`
}

// Warmed is what an import or update matched in its new DB before the
// swap: the packages the DB it replaced had matched.
type Warmed struct {
	// Packages is how many were matched (one per package and matcher), of
	// Held, what the replaced DB's match cache held.
	Packages int `json:"packages"`
	Held     int `json:"held"`
	// Took is the time it took; Complete is false when WarmBudget cut it.
	Took     time.Duration `json:"took"`
	Complete bool          `json:"complete"`
}

// handle is one open DB. Matches hold a reference while they run; a
// replaced handle is closed once its last match is done.
type handle struct {
	dir      string
	reader   v6.Reader
	provider vulnerability.Provider
	info     buildgate.DBInfo
	refs     sync.WaitGroup
	// packages are the matches of packages in this DB.
	packages *packageCache
	// warmed is what the DB was warmed with, if it was.
	warmed *Warmed
}

func openHandle(dir string, cacheBytes int64) (*handle, error) {
	r, err := v6.NewReader(v6.Config{DBDirPath: dir})
	if err != nil {
		return nil, fmt.Errorf("opening db in %q: %w", dir, err)
	}
	info, err := describe(r)
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("reading db in %q: %w", dir, err)
	}
	return &handle{
		dir:      dir,
		reader:   r,
		provider: withMetadataCache(v6.NewVulnerabilityProvider(r), cacheBytes/metadataShare),
		info:     info,
		packages: newPackageCache(cacheBytes - cacheBytes/metadataShare),
	}, nil
}

// close waits for the handle's matches to finish, then closes it.
func (h *handle) close() error {
	h.refs.Wait()
	return h.provider.Close()
}

// Manager owns the vulnerability DB under <data>/vulndb: it imports and
// updates it, swapping a new DB in atomically, and matches SBOMs against the
// DB it keeps open. Its methods are safe for concurrent use.
type Manager struct {
	root string
	opts Options

	// install serialises Import and Update.
	install sync.Mutex

	mu          sync.RWMutex
	cur         *handle
	closed      bool
	openErr     error
	lastAttempt *time.Time
	lastErr     string
}

// lastUpdate is the on-disk form of the last update attempt.
type lastUpdate struct {
	Attempt time.Time `json:"attempt"`
	Error   string    `json:"error,omitempty"`
}

// Open opens the DB manager whose data lives in <dataDir>/vulndb, creating
// the directory if needed. Having no DB yet is fine: the manager is then
// not Ready until an Import or Update succeeds. A DB that is installed but
// cannot be opened is reported in Status().Error, not as an error here.
// Leftovers of interrupted imports are removed.
func Open(dataDir string, opts Options) (*Manager, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = DefaultOptions().HTTPClient
	}
	root, err := filepath.Abs(filepath.Join(dataDir, dirName))
	if err != nil {
		return nil, fmt.Errorf("resolving data directory %q: %w", dataDir, err)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("creating db directory %q: %w", root, err)
	}
	m := &Manager{root: root, opts: opts}

	active := ""
	if target, err := os.Readlink(filepath.Join(root, currentLink)); err == nil {
		active = filepath.Base(target)
		h, err := openHandle(filepath.Join(root, active), opts.MatchCacheSize)
		if err != nil {
			m.openErr = err
		} else {
			m.cur = h
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		m.openErr = fmt.Errorf("reading %q: %w", filepath.Join(root, currentLink), err)
	}

	// remove what an interrupted import or swap left behind
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("reading db directory %q: %w", root, err)
	}
	for _, e := range entries {
		n := e.Name()
		stale := strings.HasPrefix(n, stagingPrefix) ||
			strings.HasPrefix(n, currentLink+".") ||
			(strings.HasPrefix(n, dbDirPrefix) && n != active)
		if stale {
			_ = os.RemoveAll(filepath.Join(root, n))
		}
	}

	if raw, err := os.ReadFile(filepath.Join(root, lastUpdateFile)); err == nil {
		var lu lastUpdate
		if json.Unmarshal(raw, &lu) == nil && !lu.Attempt.IsZero() {
			m.lastAttempt, m.lastErr = &lu.Attempt, lu.Error
		}
	}
	return m, nil
}

// Ready reports whether a DB is installed and open.
func (m *Manager) Ready() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cur != nil
}

// Info describes the DB in use; it is zero when none is.
func (m *Manager) Info() buildgate.DBInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.cur == nil {
		return buildgate.DBInfo{}
	}
	return m.cur.info
}

// Status describes the DB in use and the last update attempt.
func (m *Manager) Status() Status {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := Status{
		LastUpdateAttempt: m.lastAttempt,
		LastUpdateError:   m.lastErr,
	}
	if m.openErr != nil {
		s.Error = m.openErr.Error()
	}
	if m.cur != nil {
		s.Ready = true
		s.SchemaVersion = m.cur.info.SchemaVersion
		s.Built = m.cur.info.Built
		s.Age = age(m.cur.info.Built, m.now())
		s.Providers = m.cur.info.Providers
		s.Distros = m.cur.info.Distros
		s.Path = filepath.Join(m.cur.dir, v6.VulnerabilityDBFileName)
		s.Warmed = m.cur.warmed
	}
	return s
}

// Close closes the DB once running matches are done. Later calls fail with
// ErrClosed.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	h := m.cur
	m.cur = nil
	m.mu.Unlock()
	if h == nil {
		return nil
	}
	if err := h.close(); err != nil {
		return fmt.Errorf("closing db: %w", err)
	}
	return nil
}

// acquire returns the current handle with a reference the caller must
// release with h.refs.Done().
func (m *Manager) acquire() (*handle, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	if m.cur == nil {
		return nil, ErrNotReady
	}
	m.cur.refs.Add(1)
	return m.cur, nil
}

// Import installs the DB archive read from r (as written by Build or
// published by Anchore: a tar.gz/tar.zst/tar.xz holding vulnerability.db,
// or a bare vulnerability.db). The archive is streamed to a temporary file
// and validated — unpacked, checked against its import.json digest when it
// has one, hydrated (indexes), opened and its providers read — before it
// replaces the DB in use. On any error the DB in use is untouched.
// Matches running during the swap finish on the old DB.
func (m *Manager) Import(ctx context.Context, r io.Reader) (buildgate.DBInfo, error) {
	return m.importFrom(ctx, r, "import")
}

// ImportFile is Import reading the archive at path.
func (m *Manager) ImportFile(ctx context.Context, path string) (buildgate.DBInfo, error) {
	return m.ImportFileAs(ctx, path, path)
}

// ImportFileAs is ImportFile recording source as where the DB came from.
func (m *Manager) ImportFileAs(ctx context.Context, path, source string) (buildgate.DBInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return buildgate.DBInfo{}, fmt.Errorf("importing db: %w", err)
	}
	defer f.Close()
	return m.importFrom(ctx, f, source)
}

func (m *Manager) importFrom(ctx context.Context, r io.Reader, source string) (buildgate.DBInfo, error) {
	m.install.Lock()
	defer m.install.Unlock()

	staging, err := m.staging()
	if err != nil {
		return buildgate.DBInfo{}, err
	}
	defer os.RemoveAll(staging)

	archive := filepath.Join(staging, "archive")
	if err := writeFile(ctx, archive, limitReader(r, m.opts.MaxArchiveSize)); err != nil {
		return buildgate.DBInfo{}, fmt.Errorf("importing db: reading archive: %w", err)
	}
	info, err := m.installArchive(ctx, staging, archive, source)
	if err != nil {
		return buildgate.DBInfo{}, fmt.Errorf("importing db: %w", err)
	}
	return info, nil
}

func (m *Manager) staging() (string, error) {
	m.mu.RLock()
	closed := m.closed
	m.mu.RUnlock()
	if closed {
		return "", ErrClosed
	}
	dir, err := os.MkdirTemp(m.root, stagingPrefix)
	if err != nil {
		return "", fmt.Errorf("creating staging directory: %w", err)
	}
	return dir, nil
}

// installArchive validates the archive at archivePath (inside staging) and
// swaps it in. The caller holds m.install.
func (m *Manager) installArchive(ctx context.Context, staging, archivePath, source string) (buildgate.DBInfo, error) {
	dbDir := filepath.Join(staging, "db")
	if err := extractDB(ctx, archivePath, dbDir); err != nil {
		return buildgate.DBInfo{}, err
	}
	if m.opts.Publish == nil {
		_ = os.Remove(archivePath)
	}
	if err := ctx.Err(); err != nil {
		return buildgate.DBInfo{}, err
	}

	dbFile := filepath.Join(dbDir, v6.VulnerabilityDBFileName)
	if _, err := os.Stat(filepath.Join(dbDir, v6.ImportMetadataFileName)); err == nil {
		im, err := v6.ReadImportMetadata(osFS, dbDir)
		if err != nil {
			return buildgate.DBInfo{}, fmt.Errorf("reading the archive's import metadata: %w", err)
		}
		got, err := v6.CalculateDBDigest(osFS, dbFile)
		if err != nil {
			return buildgate.DBInfo{}, err
		}
		if got != im.Digest {
			return buildgate.DBInfo{}, fmt.Errorf("db checksum mismatch: import.json says %s, vulnerability.db is %s", im.Digest, got)
		}
	}
	if err := checkSQLite(dbFile); err != nil {
		return buildgate.DBInfo{}, err
	}

	// create the indexes grype drops for distribution, as grype's curator does
	if err := v6.Hydrater()(dbDir); err != nil {
		return buildgate.DBInfo{}, fmt.Errorf("opening db: %w", err)
	}
	if _, err := v6.WriteImportMetadata(osFS, dbDir, source); err != nil {
		return buildgate.DBInfo{}, fmt.Errorf("writing import metadata: %w", err)
	}
	info, err := describeDir(dbDir)
	if err != nil {
		return buildgate.DBInfo{}, err
	}
	if m.opts.Publish != nil {
		if err := m.opts.Publish(ctx, archivePath, info, source); err != nil {
			return buildgate.DBInfo{}, fmt.Errorf("publishing db: %w", err)
		}
		_ = os.Remove(archivePath)
	}
	if err := ctx.Err(); err != nil {
		return buildgate.DBInfo{}, err
	}

	// move into its own directory: an open DB's path never changes (grype
	// opens SQLite immutable and with a shared cache keyed by path)
	final := filepath.Join(m.root, dbDirPrefix+info.Built.UTC().Format("20060102T150405Z")+"-"+buildgate.NewID()[:8])
	if err := os.Rename(dbDir, final); err != nil {
		return buildgate.DBInfo{}, fmt.Errorf("activating db: %w", err)
	}
	h, err := openHandle(final, m.opts.MatchCacheSize)
	if err != nil {
		_ = os.RemoveAll(final)
		return buildgate.DBInfo{}, err
	}
	m.warm(ctx, h)
	if err := m.swap(h); err != nil {
		_ = h.provider.Close()
		_ = os.RemoveAll(final)
		return buildgate.DBInfo{}, err
	}
	return h.info, nil
}

// warm matches in h's DB, for at most Options.WarmBudget, the packages
// the DB in use has matched (packageCache.warm), and records it in h.
// The caller holds m.install, so the DB in use is not swapped meanwhile.
func (m *Manager) warm(ctx context.Context, h *handle) {
	m.mu.RLock()
	old := m.cur
	m.mu.RUnlock()
	if old == nil || old.packages == nil || h.packages == nil || m.opts.WarmBudget <= 0 {
		return
	}
	vm, err := NewVulnerabilityMatcher(h.provider)
	if err != nil {
		return // the images' matching reports it
	}
	ctx, cancel := context.WithTimeout(ctx, m.opts.WarmBudget)
	defer cancel()
	start := time.Now()
	n, held := h.packages.warm(ctx, old.packages, vm.Matchers, h.provider)
	h.warmed = &Warmed{Packages: n, Held: held, Took: time.Since(start), Complete: n == held}
}

// swap points the current symlink and the manager at h, then closes and
// removes the DB it replaced once its running matches are done.
func (m *Manager) swap(h *handle) error {
	tmp := filepath.Join(m.root, currentLink+"."+buildgate.NewID()[:8])
	if err := os.Symlink(filepath.Base(h.dir), tmp); err != nil {
		return fmt.Errorf("activating db: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(m.root, currentLink)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("activating db: %w", err)
	}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	old := m.cur
	m.cur, m.openErr = h, nil
	m.mu.Unlock()

	if old != nil {
		// errors closing a replaced read-only DB change nothing for callers
		_ = old.close()
		_ = os.RemoveAll(old.dir)
	}
	return nil
}

// checkSQLite fails unless path starts like a SQLite 3 database.
func checkSQLite(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil || string(head) != string(sqliteHeader) {
		return fmt.Errorf("%s in the archive is not a SQLite database", v6.VulnerabilityDBFileName)
	}
	return nil
}

// recordAttempt remembers an update attempt, in memory and on disk.
func (m *Manager) recordAttempt(at time.Time, err error) {
	lu := lastUpdate{Attempt: at.UTC()}
	if err != nil {
		lu.Error = err.Error()
	}
	m.mu.Lock()
	m.lastAttempt, m.lastErr = &lu.Attempt, lu.Error
	m.mu.Unlock()
	if raw, jerr := json.Marshal(lu); jerr == nil {
		tmp := filepath.Join(m.root, lastUpdateFile+".tmp")
		if os.WriteFile(tmp, raw, 0o600) == nil {
			_ = os.Rename(tmp, filepath.Join(m.root, lastUpdateFile))
		}
	}
}

func (m *Manager) now() time.Time {
	if m.opts.Now != nil {
		return m.opts.Now()
	}
	return time.Now()
}
