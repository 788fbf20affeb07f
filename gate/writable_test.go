package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnwritableDataDirStopsTheGate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  string
	}{
		{"under a file", filepath.Join(file, "data")},
	}
	if os.Getuid() != 0 {
		ro := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct{ name, dir string }{"read-only", ro})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Addr, cfg.DataDir = "127.0.0.1:0", tt.dir
			m := &Main{Config: cfg}
			err := m.Open(context.Background())
			if err == nil {
				m.Close()
				t.Fatal("the gate opened an unwritable data directory")
			}
			if !strings.Contains(err.Error(), "data directory "+tt.dir) || !strings.Contains(err.Error(), "uid") {
				t.Errorf("error %q: want the path and how to fix it", err)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out := captureStdout(t, func() error { return run(context.Background(), args) })
		if !strings.HasPrefix(out, "gate dev (commit ") || !strings.Contains(out, ", built ") {
			t.Errorf("gate %v printed %q, want \"gate dev (commit ..., built ...)\"", args, out)
		}
	}
}

// captureStdout runs fn with os.Stdout going to a pipe and returns what it
// printed.
func captureStdout(t *testing.T, fn func() error) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	err = fn()
	os.Stdout = old
	w.Close()
	b, _ := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
