package vulndb_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v6 "github.com/anchore/grype/grype/db/v6"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/vulndb"
	"github.com/buildgate/buildgate/internal/vulndb/vulndbtest"
)

func TestBuildSharedData(t *testing.T) {
	r := vulndbtest.Result(t)

	if !strings.HasPrefix(filepath.Base(r.ArchivePath), "vulnerability-db_v6.") || !strings.HasSuffix(r.ArchivePath, ".tar.gz") {
		t.Errorf("archive path = %s, want vulnerability-db_v6.*.tar.gz", r.ArchivePath)
	}
	if filepath.Base(r.ListingPath) != "latest.json" || filepath.Dir(r.ListingPath) != filepath.Dir(r.ArchivePath) {
		t.Errorf("listing path = %s, want latest.json next to the archive", r.ListingPath)
	}
	if !r.Built.Equal(vulndbtest.Timestamp) {
		t.Errorf("built = %v, want %v", r.Built, vulndbtest.Timestamp)
	}
	if len(r.Providers) == 0 || r.Providers[0].Name != "nvd" {
		t.Fatalf("providers = %+v, want nvd first", r.Providers)
	}
	got := map[string]buildgate.Provider{}
	for _, p := range r.Providers {
		got[p.Name] = p
		t.Logf("provider %s: %d records, captured %v", p.Name, p.Records, p.DateCaptured)
	}
	for _, name := range []string{"nvd", "debian", "github", "kev", "govulndb"} {
		p, ok := got[name]
		if !ok {
			t.Errorf("provider %s missing", name)
			continue
		}
		if p.Records <= 0 {
			t.Errorf("provider %s has %d records, want > 0", name, p.Records)
		}
		if p.DateCaptured == nil || p.DateCaptured.IsZero() {
			t.Errorf("provider %s has no capture date", name)
		}
	}
	for _, d := range []string{"debian:11", "debian:12"} {
		if !contains(r.Distros, d) {
			t.Errorf("distros = %v, want %s", r.Distros, d)
		}
	}
	t.Logf("distros %v", r.Distros)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestBuildErrors(t *testing.T) {
	shared, err := vulndbtest.SharedDir()
	if err != nil {
		t.Skip(err)
	}
	ws := func(name string) string { return filepath.Join(shared, "vulndata", "workspaces", name) }

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyWS := t.TempDir()
	if err := os.WriteFile(filepath.Join(emptyWS, "metadata.json"), []byte(`{"provider":"empty","version":1,"store":"flat-file"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(emptyWS, "results"), 0o700); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		cfg  vulndb.BuildConfig
		want []string // substrings of the error
	}{
		{"no providers", vulndb.BuildConfig{}, []string{"no providers"}},
		{"missing metadata", vulndb.BuildConfig{Providers: []vulndb.ProviderDir{{Name: "nometa", Dir: t.TempDir()}}}, []string{`"nometa"`, "missing metadata.json"}},
		{"not a directory", vulndb.BuildConfig{Providers: []vulndb.ProviderDir{{Name: "afile", Dir: file}}}, []string{`"afile"`, "not a directory"}},
		{"no such directory", vulndb.BuildConfig{Providers: []vulndb.ProviderDir{{Name: "gone", Dir: filepath.Join(t.TempDir(), "gone")}}}, []string{`"gone"`, "no such file"}},
		{"no records", vulndb.BuildConfig{Providers: []vulndb.ProviderDir{{Dir: emptyWS}}}, []string{`"empty"`, "no records"}},
		{"no OSV records", vulndb.BuildConfig{OSV: []vulndb.ProviderDir{{Name: "osvempty", Dir: t.TempDir()}}}, []string{`"osvempty"`, "no records"}},
		{"name mismatch", vulndb.BuildConfig{Providers: []vulndb.ProviderDir{{Name: "ubuntu", Dir: ws("debian")}}}, []string{`"ubuntu"`, `says provider "debian"`}},
		{"given twice", vulndb.BuildConfig{Providers: []vulndb.ProviderDir{{Dir: ws("kev")}, {Dir: ws("kev")}}}, []string{`"kev"`, "twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.OutDir = t.TempDir()
			_, err := vulndb.Build(context.Background(), tt.cfg)
			if err == nil {
				t.Fatal("Build succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			left, _ := os.ReadDir(tt.cfg.OutDir)
			if len(left) != 0 {
				t.Errorf("output directory holds %d entries after a failed build", len(left))
			}
		})
	}
}

// TestBuildNVDSeveritiesReachDebian builds debian before nvd (as given) and
// checks that Build still processes nvd first: Debian's records carry no
// severity of their own, so any they have came from NVD.
func TestBuildNVDSeveritiesReachDebian(t *testing.T) {
	shared, err := vulndbtest.SharedDir()
	if err != nil {
		t.Skip(err)
	}
	ws := func(name string) string { return filepath.Join(shared, "vulndata", "workspaces", name) }
	r, err := vulndb.Build(context.Background(), vulndb.BuildConfig{
		OutDir:    t.TempDir(),
		Providers: []vulndb.ProviderDir{{Dir: ws("debian")}, {Dir: ws("nvd")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Providers[0].Name != "nvd" {
		t.Fatalf("providers processed as %+v, want nvd first", r.Providers)
	}

	m, err := vulndb.Open(t.TempDir(), vulndb.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.ImportFile(context.Background(), r.ArchivePath); err != nil {
		t.Fatal(err)
	}
	rd, err := v6.NewReader(v6.Config{DBDirPath: filepath.Dir(m.Status().Path)})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	vulns, err := rd.GetVulnerabilities(&v6.VulnerabilitySpecifier{Providers: []string{"debian"}}, &v6.GetVulnerabilityOptions{Preload: true})
	if err != nil {
		t.Fatal(err)
	}
	withSeverity := 0
	for _, v := range vulns {
		if v.BlobValue != nil && len(v.BlobValue.Severities) > 0 {
			withSeverity++
		}
	}
	t.Logf("%d of %d debian records carry an NVD severity", withSeverity, len(vulns))
	// PROVENANCE.md: 60 of the 88 stored Debian CVE records have CVSS in NVD
	if len(vulns) == 0 || withSeverity < 50 {
		t.Errorf("%d of %d debian records have a severity, want most (nvd first)", withSeverity, len(vulns))
	}
}

// TestBuildWorkspaceWithoutListing builds from a read-only workspace that
// has no listing file: Build generates one in a copy, never in the
// workspace.
func TestBuildWorkspaceWithoutListing(t *testing.T) {
	shared, err := vulndbtest.SharedDir()
	if err != nil {
		t.Skip(err)
	}
	ws := filepath.Join(t.TempDir(), "debian")
	if err := os.CopyFS(ws, os.DirFS(filepath.Join(shared, "vulndata", "workspaces", "debian"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(ws, "results", "listing.xxh64")); err != nil {
		t.Fatal(err)
	}
	var walk func(string) error
	walk = func(dir string) error { // make it read-only, as /work/shared is
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			if e.IsDir() {
				if err := walk(p); err != nil {
					return err
				}
				continue
			}
			if err := os.Chmod(p, 0o444); err != nil {
				return err
			}
		}
		return os.Chmod(dir, 0o555)
	}
	if err := walk(ws); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = filepath.WalkDir(ws, func(p string, d os.DirEntry, err error) error { return os.Chmod(p, 0o755) })
	})

	r, err := vulndb.Build(context.Background(), vulndb.BuildConfig{OutDir: t.TempDir(), Providers: []vulndb.ProviderDir{{Dir: ws}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Providers) != 1 || r.Providers[0].Name != "debian" || r.Providers[0].Records == 0 {
		t.Errorf("providers = %+v", r.Providers)
	}
	if _, err := os.Stat(filepath.Join(ws, "results", "listing.xxh64")); !os.IsNotExist(err) {
		t.Errorf("a listing appeared in the workspace: %v", err)
	}
}
