package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/secret"
	"github.com/buildgate/buildgate/internal/store/sqlite"
)

// TestNoSecretInTheFile reads the SQLite file and its WAL byte by byte,
// while the store is open and after it is closed: the password is sealed.
func TestNoSecretInTheFile(t *testing.T) {
	const password = "plain-registry-password-0123456789"
	path := filepath.Join(t.TempDir(), "test.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := secret.NewSealer(secret.NewKey())
	sealed, _ := s.Seal([]byte(password), secret.RegistryPassword("registry.example"))
	ctx := context.Background()
	if err := db.CreateRegistry(ctx, buildgate.RegistryCredential{Registry: "registry.example", Username: "bob", Type: buildgate.RegistryTypeDockerV2}, sealed); err != nil {
		t.Fatal(err)
	}
	resealed, _ := s.Seal([]byte(password), secret.RegistryPassword("registry.example"))
	if err := db.UpdateRegistry(ctx, buildgate.RegistryCredential{Registry: "registry.example", Username: "bob", Type: buildgate.RegistryTypeDockerV2}, resealed); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		var all []byte
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			b, err := os.ReadFile(f)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(password)) {
				t.Errorf("%s: %s holds the password", when, filepath.Base(f))
			}
			all = append(all, b...)
		}
		if !bytes.Contains(all, []byte("registry.example")) || !bytes.Contains(all, []byte(sealed[:20])) {
			t.Fatalf("%s: the files lack the record: the test reads the wrong files", when)
		}
	}
	check("open")
	db.Close()
	check("closed")
}
