package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/client"
	"github.com/buildgate/buildgate/internal/server/anchore"
	"github.com/buildgate/buildgate/internal/testclock"
)

// startGateAt runs a gate (no vulnerability DB) whose one clock is clock.
func startGateAt(t *testing.T, clock *testclock.Clock) *testGate {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.DBUpdateURL = ""
	cfg.AdminToken = testToken
	m := &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clock.Now}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &testGate{Main: m, c: client.New(m.URL, testToken, nil)}
}

// send sends a request with a bearer token and returns the status and body.
func send(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWeakAdminTokenRefused: a supplied admin token must carry 32 random
// bytes; the gate does not start with "admin" or a repeat, and says why.
func TestWeakAdminTokenRefused(t *testing.T) {
	for _, weak := range []string{"admin", strings.Repeat("a", 64), "bg_test_admin_token"} {
		cfg := DefaultConfig()
		cfg.Addr = "127.0.0.1:0"
		cfg.DataDir = t.TempDir()
		cfg.DBUpdateURL = ""
		cfg.AdminToken = weak
		m := &Main{Config: cfg}
		err := m.Open(context.Background())
		if err == nil {
			m.Close()
			t.Fatalf("the gate started with admin token %q", weak)
		}
		if !strings.Contains(err.Error(), "--admin-token") || !strings.Contains(err.Error(), "32 random bytes") && !strings.Contains(err.Error(), "guessable") {
			t.Errorf("admin token %q: error %q does not name the flag and the rule", weak, err)
		}
	}
}

// TestTokens: /v1/tokens lists, creates (with an expiry) and revokes
// tokens; an expired or revoked token is refused by every face with a
// clear message; last_used_at is recorded at most once a minute; gate
// token list and revoke work on the data directory.
func TestTokens(t *testing.T) {
	clock := testclock.New(time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC))
	g := startGateAt(t, clock)
	v1 := g.URL + "/v1"

	status, body := send(t, "POST", v1+"/tokens", testToken, `{"name": "ci-1h", "role": "ci", "expires_in": "1h"}`)
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/tokens = %d %s", status, body)
	}
	var made api.CreatedToken
	if err := json.Unmarshal([]byte(body), &made); err != nil {
		t.Fatal(err)
	}
	if made.Secret == "" || made.ExpiresAt == nil || !made.ExpiresAt.Equal(clock.Now().Add(time.Hour)) || made.Role != "ci" {
		t.Fatalf("created token = %+v", made)
	}
	for _, tt := range []struct {
		name, body, says string
	}{
		{name: "no name", body: `{"role": "ci"}`, says: "name"},
		{name: "bad role", body: `{"name": "x", "role": "root"}`, says: "role"},
		{name: "bad expiry", body: `{"name": "x", "role": "ci", "expires_in": "-1h"}`, says: "expires_in"},
	} {
		if status, body := send(t, "POST", v1+"/tokens", testToken, tt.body); status != http.StatusBadRequest || !strings.Contains(body, tt.says) {
			t.Errorf("%s: POST /v1/tokens = %d %s, want 400 naming %s", tt.name, status, body, tt.says)
		}
	}
	if status, _ := send(t, "GET", v1+"/tokens", made.Secret, ""); status != http.StatusForbidden {
		t.Errorf("ci GET /v1/tokens = %d, want 403", status)
	}

	lastUsed := func(name string) *time.Time {
		t.Helper()
		status, body := send(t, "GET", v1+"/tokens", testToken, "")
		if status != http.StatusOK {
			t.Fatalf("GET /v1/tokens = %d %s", status, body)
		}
		if strings.Contains(body, made.Secret) || strings.Contains(body, "secret") {
			t.Fatalf("the token list shows a secret: %s", body)
		}
		var ts []api.Token
		json.Unmarshal([]byte(body), &ts)
		for _, tk := range ts {
			if tk.Name == name {
				return tk.LastUsedAt
			}
		}
		t.Fatalf("no token %s in %s", name, body)
		return nil
	}
	first := clock.Now() // the refused GET /v1/tokens used it
	if status, body := send(t, "GET", v1+"/images", made.Secret, ""); status != http.StatusOK {
		t.Fatalf("the new ci token: %d %s", status, body)
	}
	clock.Advance(30 * time.Second)
	send(t, "GET", v1+"/images", made.Secret, "")
	if u := lastUsed("ci-1h"); u == nil || !u.Equal(first) {
		t.Fatalf("last_used_at after two uses 30s apart = %v, want %v (written at most once a minute)", u, first)
	}
	clock.Advance(31 * time.Second)
	send(t, "GET", v1+"/images", made.Secret, "")
	if u := lastUsed("ci-1h"); u == nil || !u.Equal(clock.Now()) {
		t.Fatalf("last_used_at a minute later = %v, want %v", u, clock.Now())
	}

	// An hour on, the token is refused by /v1 and the Anchore API.
	clock.Advance(time.Hour)
	if status, body := send(t, "GET", v1+"/images", made.Secret, ""); status != http.StatusUnauthorized || !strings.Contains(body, "expired") {
		t.Errorf("expired token on /v1 = %d %s, want 401 saying expired", status, body)
	}
	if status, body := send(t, "GET", g.URL+anchore.Prefix+"/images", made.Secret, ""); status != http.StatusUnauthorized || !strings.Contains(body, "expired") {
		t.Errorf("expired token on the Anchore API = %d %s, want 401 saying expired", status, body)
	}

	// Revoking: a token stops working at once; the last admin token stays.
	status, body = send(t, "POST", v1+"/tokens", testToken, `{"name": "ci-forever", "role": "ci"}`)
	var forever api.CreatedToken
	json.Unmarshal([]byte(body), &forever)
	if status != http.StatusCreated || forever.ExpiresAt != nil {
		t.Fatalf("POST /v1/tokens without expiry = %d %s", status, body)
	}
	if status, body := send(t, "DELETE", v1+"/tokens/"+forever.ID, testToken, ""); status != http.StatusNoContent {
		t.Fatalf("DELETE /v1/tokens/%s = %d %s", forever.ID, status, body)
	}
	if status, _ := send(t, "GET", v1+"/images", forever.Secret, ""); status != http.StatusUnauthorized {
		t.Errorf("revoked token = %d, want 401", status)
	}
	if status, body := send(t, "DELETE", v1+"/tokens/admin", testToken, ""); status != http.StatusConflict || !strings.Contains(body, "last admin token") {
		t.Errorf("revoking the last admin token = %d %s, want 409", status, body)
	}
	if status, _ := send(t, "GET", v1+"/images", testToken, ""); status != http.StatusOK {
		t.Errorf("the admin token after a refused revoke = %d", status)
	}

	// The CLI, on the data directory (the gate is stopped first: one writer).
	g.Close()
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := tokenCommandTo(&out).ParseAndRun(context.Background(), args); err != nil {
			t.Fatalf("gate token %v: %v", args, err)
		}
		return out.String()
	}
	secret := strings.TrimSpace(run("create", "--name", "cli-ci", "--role", "ci", "--expires", "24h", "--data", g.Config.DataDir))
	list := run("list", "--data", g.Config.DataDir)
	if !strings.Contains(list, "cli-ci") || !strings.Contains(list, "ci-1h") || strings.Contains(list, secret) {
		t.Fatalf("gate token list:\n%s", list)
	}
	if out := run("revoke", "--data", g.Config.DataDir, "cli-ci"); !strings.Contains(out, "revoked token") {
		t.Fatalf("gate token revoke: %s", out)
	}
	if list := run("list", "--data", g.Config.DataDir); strings.Contains(list, "cli-ci") {
		t.Fatalf("gate token list after revoke:\n%s", list)
	}
}
