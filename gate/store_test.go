package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/secret"
	"github.com/buildgate/buildgate/internal/server/anchore"
	"github.com/buildgate/buildgate/internal/store/postgres/pgtest"
)

// startPostgres starts a PostgreSQL that outlives the gates the test
// starts after it (cleanups run last-in, first-out).
func startPostgres(t testing.TB) *pgtest.Server {
	t.Helper()
	srv, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}

// TestStoreFlagRefusals: a bad --store, an unreachable PostgreSQL, and a
// PostgreSQL gate without the shared secret key or with the wrong one all
// fail at start, saying what to change; no password is shown.
func TestStoreFlagRefusals(t *testing.T) {
	pgtest.Skip(t)
	srv := startPostgres(t)
	pgURL := srv.NewDatabase(t)
	keyA, keyB := filepath.Join(t.TempDir(), "a.key"), filepath.Join(t.TempDir(), "b.key")
	for _, k := range []string{keyA, keyB} {
		if err := secret.WriteKeyFile(k, secret.NewKey()); err != nil {
			t.Fatal(err)
		}
	}
	// A gate with key A stores a registry credential.
	g := startGate(t, func(c *Config) { c.Store, c.SecretKeyFile = pgURL, keyA })
	if err := g.c.Do(context.Background(), http.MethodPost, "/v1/registries?validate=false",
		api.RegistryRequest{Registry: "r.example", Username: "u", Password: "registry-pw"}, nil); err != nil {
		t.Fatal(err)
	}
	g.Close()

	tests := []struct {
		name          string
		store, keyEnv string
		keyFile       string
		want          []string
	}{
		{"unknown scheme", "mysql://db/gate", "", "", []string{`invalid --store "mysql://db/gate"`, "sqlite:PATH or postgres://"}},
		{"unreachable", "postgres://gate:db-pw-123@127.0.0.1:1/gate?sslmode=disable&connect_timeout=2", "", keyA,
			[]string{"postgres://gate:xxxxx@127.0.0.1:1/gate", "connect"}},
		{"no key", pgURL, "", "", []string{"GATE_SECRET_KEY or --secret-key-file"}},
		{"wrong key", pgURL, "", keyB, []string{"cannot open the stored credential of registry \"r.example\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(secret.EnvKey, tt.keyEnv)
			cfg := DefaultConfig()
			cfg.Addr, cfg.DataDir, cfg.DBUpdateURL, cfg.AdminToken = "127.0.0.1:0", t.TempDir(), "", testToken
			cfg.Store, cfg.SecretKeyFile = tt.store, tt.keyFile
			m := &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := m.Open(context.Background())
			m.Close()
			if err == nil {
				t.Fatal("the gate started")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "db-pw-123") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// TestStoreCopyToPostgres copies a SQLite gate that scanned an image and
// holds a registry credential into PostgreSQL: every count matches, and a
// gate on the copy (same key) answers the same verdict and opens the
// credential.
func TestStoreCopyToPostgres(t *testing.T) {
	pgtest.Skip(t)
	if testing.Short() {
		t.Skip("scans an image")
	}
	srv := startPostgres(t)
	ctx := context.Background()
	reg := testRegistry(t)
	ref := reg + "/team/app:v1"
	push(t, ref, sharedImage(t, "bullseye-dpkgonly"))

	old := startGate(t, nil)
	img := old.submitAndWait(t, ref)
	var before map[string]any
	if err := old.c.Do(ctx, http.MethodGet, "/v1/images/"+img.Digest+"/check?tag="+ref, nil, &before); err != nil {
		t.Fatal(err)
	}
	if err := old.c.Do(ctx, http.MethodPost, "/v1/registries?validate=false",
		api.RegistryRequest{Registry: "r.example", Username: "u", Password: "registry-pw"}, nil); err != nil {
		t.Fatal(err)
	}
	old.Close()

	pgURL := srv.NewDatabase(t)
	var out bytes.Buffer
	if err := copyStore(ctx, defaultStore(old.Config.DataDir), pgURL, false, &out); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) != 3 || f[1] != f[2] {
			t.Errorf("copy count %q: source and copied differ", line)
		}
		if f[0] == "images" || f[0] == "analyses" || f[0] == "evaluations" || f[0] == "registries" {
			if f[1] == "0" {
				t.Errorf("copy count %q: nothing to copy", line)
			}
		}
	}
	if err := copyStore(ctx, defaultStore(old.Config.DataDir), pgURL, false, io.Discard); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a second copy: %v, want a refusal of the non-empty target", err)
	}

	keyFile := filepath.Join(old.Config.DataDir, secret.KeyFileName)
	g := startGate(t, func(c *Config) { c.Store, c.SecretKeyFile = pgURL, keyFile })
	got, err := g.c.Image(ctx, img.Digest)
	if err != nil || got.Status != api.StatusAnalyzed {
		t.Fatalf("the copied image = %+v %v", got, err)
	}
	var after map[string]any
	if err := g.c.Do(ctx, http.MethodGet, "/v1/images/"+img.Digest+"/check?tag="+ref, nil, &after); err != nil {
		t.Fatal(err)
	}
	if before["final_action"] == nil || before["final_action"] != after["final_action"] {
		t.Errorf("verdict before the copy %v, after %v", before["final_action"], after["final_action"])
	}
	creds, err := g.Registries.Credentials(ctx)
	if err != nil || len(creds) != 1 || creds[0].Password != "registry-pw" {
		t.Fatalf("copied credentials = %d %v", len(creds), err)
	}
}

// TestPostgresOutage: PostgreSQL stops under a running gate: /readyz
// fails, requests (the API's, the Anchore subset's, the console's) answer
// 503, not 500, and the gate keeps running; when PostgreSQL is back the
// gate is ready again, serves what it stored before (the console session
// too) and takes new work.
func TestPostgresOutage(t *testing.T) {
	pgtest.Skip(t)
	srv := startPostgres(t)
	pgURL := srv.NewDatabase(t)
	key := filepath.Join(t.TempDir(), "secret.key")
	if err := secret.WriteKeyFile(key, secret.NewKey()); err != nil {
		t.Fatal(err)
	}
	g := startGate(t, func(c *Config) { c.Store, c.SecretKeyFile = pgURL, key })
	docs := sbomVariants(t, "bullseye-dpkgonly", 2)
	call := func(method, path string, body []byte) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, g.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testToken)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	upload := func(doc []byte) string {
		t.Helper()
		resp, b := call(http.MethodPost, "/v1/sboms", doc)
		var img api.Image
		if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &img) != nil {
			t.Fatalf("POST /v1/sboms = %s %s", resp.Status, b)
		}
		return img.Digest
	}
	before := upload(docs[0])
	sameVerdictFromStore(t, g, before) // PostgreSQL keeps times to the microsecond
	u := newConsoleUser(t)
	u.signIn(g.URL)

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	if resp, b := call(http.MethodGet, "/readyz", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz without PostgreSQL = %s %s, want 503", resp.Status, b)
	}
	for _, r := range []struct {
		method, path string
		body         []byte
	}{
		{http.MethodGet, "/v1/images/" + before, nil},
		{http.MethodPost, "/v1/sboms", docs[1]},
		{http.MethodGet, "/v1/policies", nil},
		{http.MethodGet, anchore.Prefix + "/images", nil},
	} {
		resp, b := call(r.method, r.path, r.body)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s without PostgreSQL = %s (Retry-After %q) %s; want 503 with Retry-After", r.method, r.path, resp.Status, resp.Header.Get("Retry-After"), b)
		}
	}
	if code, _ := u.page(g.URL, "/ui/repositories"); code != http.StatusServiceUnavailable {
		t.Errorf("a console page without PostgreSQL = %d, want 503", code)
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the gate to be ready again", time.Minute, func() bool {
		resp, _ := call(http.MethodGet, "/readyz", nil)
		return resp.StatusCode == http.StatusOK
	})
	if err := g.runCtx.Err(); err != nil {
		t.Fatalf("the gate stopped during the outage: %v", context.Cause(g.runCtx))
	}
	if img, err := g.c.Image(context.Background(), before); err != nil || img.Status != api.StatusAnalyzed {
		t.Fatalf("the image stored before the outage: %+v %v", img, err)
	}
	if code, _ := u.page(g.URL, "/ui/repositories"); code != http.StatusOK {
		t.Errorf("the console after the outage = %d, want the page of the user still signed in", code)
	}
	after := upload(docs[1])
	if v, err := g.c.Vulnerabilities(context.Background(), after, "all"); err != nil || v.DBBuilt == nil {
		t.Fatalf("the SBOM sent after the outage: %+v %v", v, err)
	}
}
