package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// modes maps every path under dir (relative) to its permission bits.
func modes(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	out := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel] = info.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func checkPrivate(t *testing.T, when string, got map[string]fs.FileMode, dir string) {
	t.Helper()
	for rel, m := range got {
		info, err := os.Stat(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		want := fs.FileMode(0o600)
		if info.IsDir() {
			want = 0o700
		}
		if m != want {
			t.Errorf("%s: %s has mode %04o, want %04o", when, rel, m, want)
		}
	}
}

// TestDataDirModes: a new data directory is created private (the store,
// its WAL, the secret key, the vulnerability DB), and an old one left
// readable by others is tightened at start, with a warning per path.
func TestDataDirModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	g := startRegistryGate(t, dir, true, nil)
	// Write something, so the WAL exists.
	if _, err := g.c.DBStatus(t.Context()); err != nil {
		t.Fatal(err)
	}
	fresh := modes(t, dir)
	for _, name := range []string{".", "buildgate.db", "buildgate.db-wal", "secret.key"} {
		if _, ok := fresh[name]; !ok {
			t.Fatalf("the data directory has no %s: %v", name, fresh)
		}
	}
	checkPrivate(t, "new data directory", fresh, dir)
	g.Close()
	fresh = modes(t, dir)

	// An install made before the gate tightened anything.
	loose := 0
	for rel := range fresh {
		p := filepath.Join(dir, rel)
		info, _ := os.Stat(p)
		mode := fs.FileMode(0o644)
		if info.IsDir() {
			mode = 0o755
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		loose++
	}
	var logs syncBuffer
	startRegistryGate(t, dir, false, &logs)
	checkPrivate(t, "after restart", modes(t, dir), dir)
	warned := strings.Count(logs.String(), "tightened the mode")
	if warned < loose {
		t.Errorf("%d warnings for %d loosened paths:\n%s", warned, loose, logs.String())
	}
	for _, name := range []string{"buildgate.db", "secret.key"} {
		if !strings.Contains(logs.String(), filepath.Join(dir, name)+" was=0644 now=0600") {
			t.Errorf("no warning names %s:\n%s", name, logs.String())
		}
	}
}
