package sqlite

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/buildgate/buildgate/internal/image"
	"github.com/buildgate/buildgate/internal/secret"
)

func TestRegistriesCRUD(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	c := image.RegistryCredential{Registry: "gcr.io/my-project", Name: "gcr", Username: "_json_key", Type: image.RegistryTypeDockerV2, VerifyTLS: true}
	if err := db.CreateRegistry(ctx, c, "v1:aa:sealed-1"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRegistry(ctx, c, "v1:aa:sealed-2"); image.ErrorCode(err) != image.ECONFLICT {
		t.Fatalf("second create: %v, want a conflict", err)
	}
	got, err := db.Registry(ctx, c.Registry)
	if err != nil {
		t.Fatal(err)
	}
	if got.Username != c.Username || !got.VerifyTLS || got.PasswordSetAt.IsZero() || got.CreatedAt.IsZero() {
		t.Fatalf("record %+v", got)
	}
	set := got.PasswordSetAt

	c.Username, c.VerifyTLS, c.CACert = "other", false, "PEM"
	if err := db.UpdateRegistry(ctx, c, ""); err != nil {
		t.Fatal(err)
	}
	got, _ = db.Registry(ctx, c.Registry)
	if got.Username != "other" || got.VerifyTLS || got.CACert != "PEM" || !got.PasswordSetAt.Equal(set) {
		t.Fatalf("after an update keeping the secret: %+v", got)
	}
	if s, _ := db.RegistrySecret(ctx, c.Registry); s != "v1:aa:sealed-1" {
		t.Fatalf("secret %q after an update that kept it", s)
	}
	if err := db.UpdateRegistry(ctx, c, "v1:aa:sealed-3"); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.RegistrySecret(ctx, c.Registry); s != "v1:aa:sealed-3" {
		t.Fatalf("secret %q after an update that set it", s)
	}
	got, _ = db.Registry(ctx, c.Registry)
	if got.PasswordSetAt.Before(set) {
		t.Fatal("password_set_at went back")
	}

	if err := db.CreateRegistry(ctx, image.RegistryCredential{Registry: "docker.io", Type: image.RegistryTypeDockerV2}, "v1:aa:hub"); err != nil {
		t.Fatal(err)
	}
	list, _ := db.ListRegistries(ctx)
	if len(list) != 2 || list[0].Registry != "docker.io" || list[1].Registry != "gcr.io/my-project" {
		t.Fatalf("list %+v", list)
	}
	secrets, _ := db.RegistrySecrets(ctx)
	if len(secrets) != 2 || secrets["docker.io"] != "v1:aa:hub" {
		t.Fatalf("secrets %v", secrets)
	}

	if err := db.DeleteRegistry(ctx, "docker.io"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"get":    func() error { _, err := db.Registry(ctx, "docker.io"); return err }(),
		"secret": func() error { _, err := db.RegistrySecret(ctx, "docker.io"); return err }(),
		"delete": db.DeleteRegistry(ctx, "docker.io"),
		"update": db.UpdateRegistry(ctx, image.RegistryCredential{Registry: "docker.io"}, ""),
	} {
		if image.ErrorCode(err) != image.ENOTFOUND {
			t.Errorf("%s of a deleted record: %v, want not found", name, err)
		}
	}
}

// TestResealIsAllOrNothing: one secret that cannot be re-sealed leaves
// every secret as it was.
func TestResealIsAllOrNothing(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	for _, r := range []string{"a.example", "b.example", "c.example"} {
		if err := db.CreateRegistry(ctx, image.RegistryCredential{Registry: r, Type: image.RegistryTypeDockerV2}, "old-"+r); err != nil {
			t.Fatal(err)
		}
	}
	_, err := db.ResealSecrets(ctx, func(s string) (string, error) {
		if s == "old-b.example" {
			return "", errors.New("cannot open")
		}
		return "new-" + s, nil
	})
	if err == nil {
		t.Fatal("ResealSecrets succeeded")
	}
	secrets, _ := db.RegistrySecrets(ctx)
	for r, s := range secrets {
		if s != "old-"+r {
			t.Fatalf("after a failed reseal %s holds %q", r, s)
		}
	}
	n, err := db.ResealSecrets(ctx, func(s string) (string, error) { return "new-" + s, nil })
	if err != nil || n != 3 {
		t.Fatalf("reseal: %d, %v", n, err)
	}
	secrets, _ = db.RegistrySecrets(ctx)
	for r, s := range secrets {
		if s != "new-old-"+r {
			t.Fatalf("after a reseal %s holds %q", r, s)
		}
	}
}

// TestNoSecretInTheFile reads the SQLite file and its WAL byte by byte,
// while the store is open and after it is closed: the password is sealed.
func TestNoSecretInTheFile(t *testing.T) {
	const password = "plain-registry-password-0123456789"
	path := filepath.Join(t.TempDir(), "test.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := secret.NewSealer(secret.NewKey())
	sealed, _ := s.Seal([]byte(password))
	ctx := context.Background()
	if err := db.CreateRegistry(ctx, image.RegistryCredential{Registry: "registry.example", Username: "bob", Type: image.RegistryTypeDockerV2}, sealed); err != nil {
		t.Fatal(err)
	}
	resealed, _ := s.Seal([]byte(password))
	if err := db.UpdateRegistry(ctx, image.RegistryCredential{Registry: "registry.example", Username: "bob", Type: image.RegistryTypeDockerV2}, resealed); err != nil {
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
