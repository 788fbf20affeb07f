package analysis

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/buildgate/buildgate"
	"github.com/buildgate/buildgate/internal/secret"
)

// memRegistries is an in-memory RegistryStore.
type memRegistries struct {
	recs   map[string]buildgate.RegistryCredential
	sealed map[string]string
}

func newMemRegistries() *memRegistries {
	return &memRegistries{recs: map[string]buildgate.RegistryCredential{}, sealed: map[string]string{}}
}

func (m *memRegistries) CreateRegistry(_ context.Context, c buildgate.RegistryCredential, sealed string) error {
	if _, ok := m.recs[c.Registry]; ok {
		return buildgate.Errorf(buildgate.ECONFLICT, "exists")
	}
	now := time.Now()
	c.CreatedAt, c.UpdatedAt, c.PasswordSetAt = now, now, now
	m.recs[c.Registry], m.sealed[c.Registry] = c, sealed
	return nil
}

func (m *memRegistries) UpdateRegistry(_ context.Context, c buildgate.RegistryCredential, sealed string) error {
	cur, ok := m.recs[c.Registry]
	if !ok {
		return buildgate.Errorf(buildgate.ENOTFOUND, "no")
	}
	c.CreatedAt, c.PasswordSetAt, c.UpdatedAt = cur.CreatedAt, cur.PasswordSetAt, time.Now()
	if sealed != "" {
		m.sealed[c.Registry], c.PasswordSetAt = sealed, time.Now()
	}
	m.recs[c.Registry] = c
	return nil
}

func (m *memRegistries) Registry(_ context.Context, r string) (*buildgate.RegistryCredential, error) {
	c, ok := m.recs[r]
	if !ok {
		return nil, buildgate.Errorf(buildgate.ENOTFOUND, "registry %q not found", r)
	}
	return &c, nil
}

func (m *memRegistries) RegistrySecret(_ context.Context, r string) (string, error) {
	s, ok := m.sealed[r]
	if !ok {
		return "", buildgate.Errorf(buildgate.ENOTFOUND, "no")
	}
	return s, nil
}

func (m *memRegistries) ListRegistries(context.Context) ([]buildgate.RegistryCredential, error) {
	var out []buildgate.RegistryCredential
	for _, c := range m.recs {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Registry < out[j].Registry })
	return out, nil
}

func (m *memRegistries) RegistrySecrets(context.Context) (map[string]string, error) {
	return m.sealed, nil
}

func (m *memRegistries) DeleteRegistry(_ context.Context, r string) error {
	if _, ok := m.recs[r]; !ok {
		return buildgate.Errorf(buildgate.ENOTFOUND, "no")
	}
	delete(m.recs, r)
	delete(m.sealed, r)
	return nil
}

// checkerFunc is a RegistryChecker.
type checkerFunc func(ctx context.Context, c Credential) error

func (f checkerFunc) Login(ctx context.Context, c Credential) error { return f(ctx, c) }

func newTestRegistries(t *testing.T, check checkerFunc) (*Registries, *memRegistries, *int) {
	t.Helper()
	sealer, err := secret.NewSealer(secret.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	store := newMemRegistries()
	r := NewRegistries(store, sealer, check, nil)
	changes := 0
	r.Changed = func() { changes++ }
	return r, store, &changes
}

func TestRegistriesUpdateKeepsWhatIsEmpty(t *testing.T) {
	var seen []Credential
	r, store, changes := newTestRegistries(t, func(_ context.Context, c Credential) error {
		seen = append(seen, c)
		return nil
	})
	ctx := context.Background()
	if _, err := r.Add(ctx, buildgate.RegistryCredential{Registry: "Registry.Example.com:5000/Team", Username: "u", VerifyTLS: true}, "first", true); err == nil {
		t.Fatal("an uppercase path prefix was accepted")
	}
	rec, err := r.Add(ctx, buildgate.RegistryCredential{Registry: "Registry.Example.com:5000/team", Username: "u", VerifyTLS: true}, "first", true)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Registry != "registry.example.com:5000/team" || rec.Name != rec.Registry || rec.Type != buildgate.RegistryTypeDockerV2 {
		t.Fatalf("record %+v", rec)
	}
	if strings.Contains(store.sealed[rec.Registry], "first") {
		t.Fatal("the store holds the password in the clear")
	}
	rec, err = r.Update(ctx, "registry.example.com:5000/team", buildgate.RegistryCredential{VerifyTLS: false}, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Username != "u" || rec.VerifyTLS {
		t.Fatalf("after update %+v", rec)
	}
	if last := seen[len(seen)-1]; string(last.Password) != "first" || last.Username != "u" {
		t.Fatalf("the update was validated with %q/%s, want the stored password", last.Username, last.Password)
	}
	creds, _ := r.Credentials(ctx)
	if len(creds) != 1 || string(creds[0].Password) != "first" {
		t.Fatalf("credentials %+v", creds)
	}
	if err := r.Delete(ctx, "registry.example.com:5000/team"); err != nil {
		t.Fatal(err)
	}
	if *changes != 3 {
		t.Fatalf("%d change notices, want 3 (add, update, delete)", *changes)
	}
}

func TestRegistriesLoginRefusalStoresNothing(t *testing.T) {
	const pw = "the-password-a-registry-echoes"
	r, store, changes := newTestRegistries(t, func(_ context.Context, c Credential) error {
		return errors.New("registry said: bad password " + string(c.Password))
	})
	_, err := r.Add(context.Background(), buildgate.RegistryCredential{Registry: "quay.io", Username: "org+robot"}, pw, true)
	if err == nil || buildgate.ErrorCode(err) != buildgate.EINVALID || !strings.Contains(err.Error(), "quay.io") || strings.Contains(err.Error(), pw) {
		t.Fatalf("Add error %v: want an invalid-input error naming the registry, without the password", err)
	}
	if len(store.recs)+len(store.sealed) != 0 || *changes != 0 {
		t.Fatal("a refused record was stored")
	}
	if _, err := r.Add(context.Background(), buildgate.RegistryCredential{Registry: "quay.io", Username: "org+robot"}, pw, false); err != nil {
		t.Fatalf("Add with validate=false: %v", err)
	}
}

func TestRegistryKeySuggestions(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{in: "index.docker.io", want: "docker.io"},
		{in: "registry-1.docker.io/myorg", want: "docker.io/myorg"},
		{in: "[::1]:5000", want: "[::1]:5000"},
		{in: "https://index.docker.io/v1/", err: `as "docker.io"`},
		{in: "http://gcr.io/my-project/", err: `as "gcr.io/my-project"`},
		{in: "ghcr.io/", err: `ends with /: write it as "ghcr.io"`},
		{in: "user@ghcr.io", err: "characters"},
	}
	for _, tt := range tests {
		got, err := registryKey(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("registryKey(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("registryKey(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
