package vulndb_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"

	"github.com/buildgate/buildgate/internal/vulndb"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

func dataRoot(m *vulndb.Manager) string {
	return filepath.Dir(filepath.Dir(m.Status().Path))
}

func TestOpenWithoutDB(t *testing.T) {
	data := t.TempDir()
	m, err := vulndb.Open(data, vulndb.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if m.Ready() {
		t.Error("Ready() = true with no DB")
	}
	if s := m.Status(); s.Ready || s.Path != "" || s.Error != "" {
		t.Errorf("Status() = %+v, want not ready, no path, no error", s)
	}
	if _, _, err := m.Match(context.Background(), []byte("{}")); !errors.Is(err, vulndb.ErrNotReady) {
		t.Errorf("Match error = %v, want ErrNotReady", err)
	}
	info, err := m.ImportFile(context.Background(), vulndbtest.Archive(t))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Ready() || !info.Built.Equal(vulndbtest.Timestamp) {
		t.Errorf("after import: Ready() = %v, built %v", m.Ready(), info.Built)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Match(context.Background(), []byte("{}")); !errors.Is(err, vulndb.ErrClosed) {
		t.Errorf("Match after Close: %v, want ErrClosed", err)
	}

	// the DB outlives the manager
	m2, err := vulndb.Open(data, vulndb.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	s := m2.Status()
	if !s.Ready || !s.Built.Equal(vulndbtest.Timestamp) || len(s.Providers) == 0 || s.SchemaVersion == "" {
		t.Errorf("reopened Status() = %+v, want the imported DB", s)
	}
	if _, err := os.Stat(s.Path); err != nil {
		t.Errorf("status path: %v", err)
	}
}

// tarGz makes a tar.gz holding the given files.
func tarGz(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImportRejectsBadArchives(t *testing.T) {
	m := vulndbtest.Manager(t)
	before := m.Status()
	sbom := syftJSON(t, dpkgOnly)
	want, _, err := m.Match(context.Background(), sbom)
	if err != nil {
		t.Fatal(err)
	}

	good, err := os.ReadFile(vulndbtest.Archive(t))
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 64<<10)
	_, _ = rand.Read(random)
	var gzOnly bytes.Buffer
	gz := gzip.NewWriter(&gzOnly)
	_, _ = gz.Write([]byte("just some compressed text"))
	_ = gz.Close()

	tests := []struct {
		name  string
		input []byte
		want  string
	}{
		{"random bytes", random, "not a DB archive"},
		{"empty", nil, "not a DB archive"},
		{"truncated gzip", good[:len(good)/2], "unexpected EOF"},
		{"compressed, not an archive", gzOnly.Bytes(), "not a DB archive"},
		{"tar without the db", tarGz(t, map[string][]byte{"README": []byte("hello")}), "archive holds no vulnerability.db"},
		{"db that is not sqlite", tarGz(t, map[string][]byte{"vulnerability.db": []byte("not a database")}), "not a SQLite database"},
		{"import.json digest mismatch", tarGz(t, map[string][]byte{
			"vulnerability.db": []byte("SQLite format 3\x00 and then garbage"),
			"import.json":      []byte(`{"digest":"xxh64:0000000000000000","client_version":"6.1.10"}`),
		}), "checksum mismatch"},
		{"sqlite but not a grype db", tarGz(t, map[string][]byte{"vulnerability.db": emptySQLite(t)}), "not a v6 database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Import(context.Background(), bytes.NewReader(tt.input))
			if err == nil {
				t.Fatal("Import succeeded, want an error")
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			after := m.Status()
			if !after.Ready || after.Path != before.Path || !after.Built.Equal(before.Built) {
				t.Errorf("status changed after a failed import: %+v", after)
			}
			got, _, err := m.Match(context.Background(), sbom)
			if err != nil || len(got) != len(want) {
				t.Errorf("old DB after a failed import: %d matches, %v; want %d", len(got), err, len(want))
			}
			assertNoLeftovers(t, m)
		})
	}
}

// emptySQLite returns a SQLite database file that is not a grype DB.
func emptySQLite(t *testing.T) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "other.db")
	db, err := gorm.Open(sqlite.Open(p), &gorm.Config{Logger: gormlogger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("CREATE TABLE things (name TEXT)").Error; err != nil {
		t.Fatal(err)
	}
	if d, err := db.DB(); err == nil {
		_ = d.Close()
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func assertNoLeftovers(t *testing.T, m *vulndb.Manager) {
	t.Helper()
	entries, err := os.ReadDir(dataRoot(m))
	if err != nil {
		t.Fatal(err)
	}
	dbs := 0
	for _, e := range entries {
		switch n := e.Name(); {
		case strings.HasPrefix(n, "db-"):
			dbs++
		case n == "current" || n == "last_update.json":
		default:
			t.Errorf("leftover %s in the db directory", n)
		}
	}
	if dbs != 1 {
		t.Errorf("%d db directories, want 1", dbs)
	}
}

// TestImportSwapWhileMatching imports again and again while matches run:
// every match succeeds against whichever DB it started with, and replaced
// DBs are closed and removed. Run with -race.
func TestImportSwapWhileMatching(t *testing.T) {
	m := vulndbtest.Manager(t)
	sbom := syftJSON(t, dpkgOnly)
	want, _, err := m.Match(context.Background(), sbom)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	runs := 0
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				got, info, err := m.Match(context.Background(), sbom)
				if err != nil {
					t.Errorf("Match during swap: %v", err)
					return
				}
				if len(got) != len(want) || info.Built.IsZero() {
					t.Errorf("Match during swap: %d matches (built %v), want %d", len(got), info.Built, len(want))
					return
				}
				mu.Lock()
				runs++
				mu.Unlock()
			}
		}()
	}
	paths := map[string]bool{m.Status().Path: true}
	for range 3 {
		if _, err := m.ImportFile(context.Background(), vulndbtest.Archive(t)); err != nil {
			t.Error(err)
		}
		paths[m.Status().Path] = true
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	t.Logf("%d matches ran across %d DB swaps", runs, len(paths)-1)
	if len(paths) != 4 {
		t.Errorf("%d distinct DB paths after 3 imports, want 4", len(paths))
	}
	for p := range paths {
		if _, err := os.Stat(p); (p == m.Status().Path) != (err == nil) {
			t.Errorf("%s: stat error %v (current: %v)", p, err, p == m.Status().Path)
		}
	}
	assertNoLeftovers(t, m)
}

// listingServer serves the test archive and listings in a directory.
type listingServer struct {
	dir     string
	archive string // base name of the good archive
	srv     *httptest.Server
	listing map[string]any
}

func newListingServer(t *testing.T) *listingServer {
	t.Helper()
	r := vulndbtest.Result(t)
	dir := t.TempDir()
	raw, err := os.ReadFile(r.ArchivePath)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(r.ArchivePath)
	if err := os.WriteFile(filepath.Join(dir, name), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	lraw, err := os.ReadFile(r.ListingPath)
	if err != nil {
		t.Fatal(err)
	}
	var listing map[string]any
	if err := json.Unmarshal(lraw, &listing); err != nil {
		t.Fatal(err)
	}
	ls := &listingServer{dir: dir, archive: name, listing: listing}
	ls.write(t, "latest.json", nil)
	ls.srv = httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(ls.srv.Close)
	return ls
}

// write writes the listing with the given fields changed to dir/name.
func (ls *listingServer) write(t *testing.T, name string, change map[string]any) {
	t.Helper()
	doc := map[string]any{}
	for k, v := range ls.listing {
		doc[k] = v
	}
	for k, v := range change {
		doc[k] = v
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(ls.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestUpdate(t *testing.T) {
	ls := newListingServer(t)
	later := vulndbtest.Timestamp.Add(time.Hour).Format(time.RFC3339)
	ls.write(t, "newer.json", map[string]any{"built": later})
	ls.write(t, "v6/latest.json", map[string]any{"path": "../" + ls.archive})
	ls.write(t, "missing.json", map[string]any{"built": later, "path": "vulnerability-db_missing.tar.gz"})
	ls.write(t, "badsum.json", map[string]any{"built": later, "checksum": "sha256:" + strings.Repeat("0", 64)})
	ls.write(t, "nosum.json", map[string]any{"built": later, "checksum": ""})
	ls.write(t, "v5.json", map[string]any{"built": later, "schemaVersion": "v5.1.0"})

	type step struct {
		url         string
		wantUpdated bool
		wantErr     string // substring; "" for success
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"install then nothing newer", []step{
			{ls.srv.URL + "/latest.json", true, ""},
			{ls.srv.URL + "/latest.json", false, ""},
			{ls.srv.URL + "/newer.json", true, ""},
		}},
		{"base URL resolves to v6/latest.json as grype does", []step{
			{ls.srv.URL, true, ""},
		}},
		{"file URL and plain path", []step{
			{"file://" + filepath.Join(ls.dir, "latest.json"), true, ""},
			{filepath.Join(ls.dir, "newer.json"), true, ""},
			{ls.dir, false, ""}, // a directory: its latest.json, not newer
		}},
		{"missing archive", []step{
			{ls.srv.URL + "/latest.json", true, ""},
			{ls.srv.URL + "/missing.json", false, "404 Not Found"},
		}},
		{"checksum mismatch", []step{
			{ls.srv.URL + "/latest.json", true, ""},
			{ls.srv.URL + "/badsum.json", false, "checksum mismatch"},
		}},
		{"no checksum", []step{
			{ls.srv.URL + "/nosum.json", false, "no archive checksum"},
		}},
		{"other schema", []step{
			{ls.srv.URL + "/v5.json", false, "schema v5"},
		}},
		{"no listing", []step{
			{ls.srv.URL + "/nothing.json", false, "404 Not Found"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := vulndb.Open(t.TempDir(), vulndb.DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for i, s := range tt.steps {
				before := m.Status()
				start := time.Now()
				updated, err := m.Update(context.Background(), s.url)
				after := m.Status()
				if after.LastUpdateAttempt == nil || after.LastUpdateAttempt.Before(start.Add(-time.Second)) {
					t.Errorf("step %d: last attempt %v not recorded", i, after.LastUpdateAttempt)
				}
				if s.wantErr == "" {
					if err != nil || updated != s.wantUpdated {
						t.Fatalf("step %d: Update(%s) = %v, %v; want %v, nil", i, s.url, updated, err, s.wantUpdated)
					}
					if after.LastUpdateError != "" {
						t.Errorf("step %d: last error %q after success", i, after.LastUpdateError)
					}
					if !after.Ready {
						t.Errorf("step %d: not ready after update", i)
					}
					if updated == (after.Path == before.Path) {
						t.Errorf("step %d: updated=%v but path %s -> %s", i, updated, before.Path, after.Path)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), s.wantErr) {
					t.Fatalf("step %d: Update(%s) error = %v, want one mentioning %q", i, s.url, err, s.wantErr)
				}
				if updated {
					t.Errorf("step %d: updated = true on error", i)
				}
				if !strings.Contains(after.LastUpdateError, s.wantErr) {
					t.Errorf("step %d: Status().LastUpdateError = %q, want %q", i, after.LastUpdateError, s.wantErr)
				}
				if after.Ready != before.Ready || after.Path != before.Path {
					t.Errorf("step %d: DB changed by a failed update: %s -> %s", i, before.Path, after.Path)
				}
				if before.Ready {
					assertNoLeftovers(t, m)
				}
			}
		})
	}
}

func TestReadListing(t *testing.T) {
	ls := newListingServer(t)
	l, err := vulndb.ReadListing(context.Background(), nil, ls.srv.URL+"/latest.json")
	if err != nil {
		t.Fatal(err)
	}
	if !l.Built.Equal(vulndbtest.Timestamp) || !strings.HasPrefix(l.Checksum, "sha256:") || l.Path != ls.archive || !strings.HasPrefix(l.SchemaVersion, "v6.") {
		t.Errorf("listing = %+v", l)
	}
	loc, err := l.ArchiveLocation()
	if err != nil || loc != ls.srv.URL+"/"+ls.archive {
		t.Errorf("ArchiveLocation() = %q, %v; want %s/%s", loc, err, ls.srv.URL, ls.archive)
	}
	if vulndb.DefaultUpdateURL != "https://grype.anchore.io/databases/v6/latest.json" {
		t.Errorf("DefaultUpdateURL = %s", vulndb.DefaultUpdateURL)
	}
}
