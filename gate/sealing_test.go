package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"database/sql"
	"encoding/base64"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildgate/buildgate/internal/api"
	"github.com/buildgate/buildgate/internal/secret"
	"github.com/buildgate/buildgate/internal/store/postgres/pgtest"
)

// sealLegacy seals plain as gates did before sealed values were bound to
// their record: format v1, only the key id as additional data.
func sealLegacy(t *testing.T, key []byte, plain string) string {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, aead.NonceSize())
	id := secret.KeyID(key)
	return "v1:" + id + ":" + base64.RawStdEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte(plain), []byte("v1:"+id)))
}

// sealedValue reads one sealed column of one row.
func sealedValue(t *testing.T, db *sql.DB, table, col, key, id string) string {
	t.Helper()
	var v string
	if err := db.QueryRow(`SELECT ` + col + ` FROM ` + table + ` WHERE ` + key + ` = '` + id + `'`).Scan(&v); err != nil {
		t.Fatalf("reading %s.%s of %s: %v", table, col, id, err)
	}
	return v
}

func rawExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestSealedSecretsStayInTheirRecord does what someone who can write the
// gate's database, but has not got its key, could try: with raw SQL it
// copies registry a's sealed password over registry b's, and a webhook
// channel's sealed secret over its sealed URL. The restarted gate opens
// neither where it was moved, says which record, and changes nothing on
// the refused request. A value sealed by an older gate (format v1) is
// bound to its record at start and opens. On SQLite and PostgreSQL.
func TestSealedSecretsStayInTheirRecord(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			keyFile := filepath.Join(dir, secret.KeyFileName)
			key := secret.NewKey()
			if err := secret.WriteKeyFile(keyFile, key); err != nil {
				t.Fatal(err)
			}
			driver, dsn := "sqlite", filepath.Join(dir, "buildgate.db")
			mutate := func(c *Config) { c.DataDir = dir }
			if kind == "postgres" {
				pgtest.Skip(t)
				driver, dsn = "pgx", startPostgres(t).NewDatabase(t)
				mutate = func(c *Config) { c.DataDir, c.Store, c.SecretKeyFile = dir, dsn, keyFile }
			}
			ctx := context.Background()

			g := startGate(t, mutate)
			for _, r := range []string{"a.example", "b.example"} {
				if st, b := g.regCall(t, "POST", "/v1/registries?validate=false", api.RegistryRequest{Registry: r, Username: "u", Password: "pw-of-" + r}, nil); st != http.StatusCreated {
					t.Fatalf("POST %s = %d %s", r, st, b)
				}
			}
			var ch api.Channel
			if err := g.c.Do(ctx, http.MethodPost, "/v1/channels", api.ChannelRequest{Name: "hook", Type: "webhook",
				URL: "http://127.0.0.1:9/hook?token=url-token-123", Secret: "hook-signing-secret"}, &ch); err != nil {
				t.Fatal(err)
			}
			g.Close()

			db, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			sealedA := sealedValue(t, db, "registries", "password_sealed", "registry", "a.example")
			if !strings.HasPrefix(sealedA, "v2:"+secret.KeyID(key)+":") {
				t.Fatalf("a.example's password is sealed as %q, want v2 under the key", sealedA[:10])
			}
			rawExec(t, db, `UPDATE registries SET password_sealed = '`+sealedA+`' WHERE registry = 'b.example'`)
			rawExec(t, db, `UPDATE registries SET password_sealed = '`+sealLegacy(t, key, "legacy-pw")+`' WHERE registry = 'a.example'`)
			rawExec(t, db, `UPDATE channels SET url_sealed = secret_sealed WHERE id = '`+ch.ID+`'`)

			g = startGate(t, mutate)
			// The legacy value opens, bound to its record now.
			if got := storedPassword(t, g, "a.example"); got != "legacy-pw" {
				t.Errorf("the legacy password of a.example opens as %q", got)
			}
			if v := sealedValue(t, db, "registries", "password_sealed", "registry", "a.example"); !strings.HasPrefix(v, "v2:") {
				t.Errorf("a.example's legacy password was not bound at start: %q", v[:3])
			}
			// The moved password does not open in b's record.
			if got := storedPassword(t, g, "b.example"); got != "" {
				t.Fatalf("a.example's password opens as b.example's: %q", got)
			}
			st, b := g.regCall(t, "PUT", "/v1/registries/b.example?validate=false", api.RegistryRequest{Username: "other"}, nil)
			msg := errorMessage(b)
			if st != http.StatusBadRequest || !strings.Contains(msg, `registries.password_sealed of "b.example"`) ||
				!strings.Contains(msg, "sealed for another record") || !strings.Contains(msg, "give the password again") {
				t.Errorf("PUT keeping b.example's moved password = %d %q, want a 400 naming the record and the way out", st, msg)
			}
			if v := sealedValue(t, db, "registries", "password_sealed", "registry", "b.example"); v != sealedA {
				t.Error("the refused PUT changed b.example's stored password")
			}
			if rec, _ := g.Registries.Get(ctx, "b.example"); rec == nil || rec.Username != "u" {
				t.Errorf("the refused PUT changed b.example's record: %+v", rec)
			}
			// The channel's secret does not open as its URL.
			if _, err := g.Alerts.TestChannel(ctx, ch.ID); err == nil || !strings.Contains(err.Error(), "channels.url_sealed") ||
				!strings.Contains(err.Error(), "sealed for another record") {
				t.Errorf("testing a channel whose secret was moved into its url: %v", err)
			}
			// Giving the password again mends the record.
			if st, b := g.regCall(t, "PUT", "/v1/registries/b.example?validate=false", api.RegistryRequest{Password: "new-pw-of-b"}, nil); st != http.StatusOK {
				t.Fatalf("PUT with a new password = %d %s", st, b)
			}
			if got := storedPassword(t, g, "b.example"); got != "new-pw-of-b" {
				t.Errorf("after a new password b.example opens as %q", got)
			}
		})
	}
}
