package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const plain = "hunter2-registry-password"

var rec = RegistryPassword("registry.example/team")

func TestSealOpen(t *testing.T) {
	key := NewKey()
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Seal([]byte(plain), rec)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Seal([]byte(plain), rec)
	if a == b {
		t.Fatal("two seals of one secret are equal: the nonce is not fresh")
	}
	if !strings.HasPrefix(a, "v2:"+KeyID(key)+":") {
		t.Fatalf("sealed %q lacks the v2:<key id>: prefix", a)
	}
	if strings.Contains(a, plain) {
		t.Fatal("sealed text holds the secret")
	}
	if id, _ := SealedKeyID(a); id != s.KeyID() {
		t.Fatalf("SealedKeyID = %q, want %q", id, s.KeyID())
	}
	got, err := s.Open(a, rec)
	if err != nil || string(got) != plain {
		t.Fatalf("Open = %q, %v", got, err)
	}

	other, _ := NewSealer(NewKey())
	if _, err := other.Open(a, rec); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Open under another key: %v, want ErrUnknownKey", err)
	}
	// A sealer with the old key as an older key opens it.
	rotated, _ := NewSealer(NewKey(), key)
	if got, err := rotated.Open(a, rec); err != nil || string(got) != plain {
		t.Fatalf("Open with the old key as older: %q, %v", got, err)
	}

	for name, bad := range map[string]string{
		"tampered":        a[:len(a)-2] + "AA",
		"moved under id":  "v2:" + KeyID(NewKey()) + a[len("v2:")+16:],
		"not sealed":      plain,
		"unknown version": "v9:" + a[3:],
	} {
		if _, err := s.Open(bad, rec); err == nil {
			t.Errorf("%s: Open succeeded", name)
		}
	}
}

// TestSealedForItsRecord moves a sealed value to another row, another
// column and another table: it opens only in its own record, and the
// error names the record.
func TestSealedForItsRecord(t *testing.T) {
	s, _ := NewSealer(NewKey())
	a, _ := s.Seal([]byte(plain), rec)
	for _, elsewhere := range []Record{
		RegistryPassword("registry.example/other"),
		RegistryPassword("registry.example/tea"),
		{Table: "registries", Column: "other_sealed", ID: rec.ID},
		ChannelSecret(rec.ID),
		ChannelURL(rec.ID),
	} {
		_, err := s.Open(a, elsewhere)
		if err == nil {
			t.Errorf("a value sealed for %v opens as %v", rec, elsewhere)
			continue
		}
		if !strings.Contains(err.Error(), elsewhere.String()) || !strings.Contains(err.Error(), "sealed for another record") {
			t.Errorf("opening as %v: %v, want an error naming the record and the cause", elsewhere, err)
		}
	}
	if got, err := s.Open(a, rec); err != nil || string(got) != plain {
		t.Fatalf("Open in its own record = %q, %v", got, err)
	}
}

// sealLegacy seals as gates did before values were bound to their record.
func sealLegacy(t *testing.T, key, plain []byte) string {
	t.Helper()
	aead, err := newAEAD(key)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, aead.NonceSize())
	id := KeyID(key)
	out := aead.Seal(nonce, nonce, plain, []byte("v1:"+id))
	return "v1:" + id + ":" + base64.RawStdEncoding.EncodeToString(out)
}

// TestLegacyValues: a value sealed before records were bound does not
// open as it is, and Reseal binds it to its record, under the same key or
// a new one.
func TestLegacyValues(t *testing.T) {
	key := NewKey()
	s, _ := NewSealer(key)
	old := sealLegacy(t, key, []byte(plain))
	if !IsLegacy(old) {
		t.Fatal("IsLegacy of a v1 value is false")
	}
	if _, err := s.Open(old, rec); !errors.Is(err, ErrLegacy) || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("Open of a legacy value: %v, want ErrLegacy saying what to do", err)
	}
	bound, err := s.Reseal(old, rec, s)
	if err != nil {
		t.Fatal(err)
	}
	if IsLegacy(bound) {
		t.Fatal("Reseal left the value legacy")
	}
	if got, err := s.Open(bound, rec); err != nil || string(got) != plain {
		t.Fatalf("Open of the bound value = %q, %v", got, err)
	}
	if _, err := s.Open(bound, ChannelURL(rec.ID)); err == nil {
		t.Fatal("the bound value opens in another record")
	}
	// A rotation: the old key opens, the new one seals for the record.
	next, _ := NewSealer(NewKey())
	for _, v := range []string{old, bound} {
		moved, err := s.Reseal(v, rec, next)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := next.Open(moved, rec); err != nil || string(got) != plain {
			t.Fatalf("Open after a rotation = %q, %v", got, err)
		}
	}
	// Reseal checks the record of a bound value too.
	if _, err := s.Reseal(bound, ChannelSecret(rec.ID), s); err == nil {
		t.Fatal("Reseal re-bound a value sealed for another record")
	}
	if _, err := next.Reseal(old, rec, next); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Reseal of a legacy value under an unknown key: %v", err)
	}
}

func TestSecretRedacts(t *testing.T) {
	s := Secret(plain)
	type holder struct {
		User     string
		Password Secret
	}
	h := holder{User: "u", Password: s}
	js, _ := json.Marshal(h)
	var text, jsonLog bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("x", "password", s, "holder", h)
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("x", "password", s, "holder", h)
	outs := map[string]string{
		"String":    s.String(),
		"%v":        fmt.Sprintf("%v", s),
		"%s":        fmt.Sprintf("%s", s),
		"%q":        fmt.Sprintf("%q", s),
		"%x":        fmt.Sprintf("%x", s),
		"%#v":       fmt.Sprintf("%#v", s),
		"%+v  held": fmt.Sprintf("%+v", h),
		"%#v held":  fmt.Sprintf("%#v", h),
		"json":      string(js),
		"slog text": text.String(),
		"slog json": jsonLog.String(),
	}
	for name, out := range outs {
		if strings.Contains(out, plain) || strings.Contains(out, hex.EncodeToString([]byte(plain))) {
			t.Errorf("%s prints the secret: %s", name, out)
		}
		if !strings.Contains(out, "REDACTED") {
			t.Errorf("%s does not say it redacted: %s", name, out)
		}
	}
	if string(s) != plain {
		t.Fatal("string conversion must give the value")
	}
	if Secret("").String() != "" {
		t.Fatal("an empty secret prints as empty")
	}
	if got := Redact("registry said: bad password "+plain, plain); strings.Contains(got, plain) {
		t.Fatalf("Redact: %s", got)
	}
}

func TestParseKey(t *testing.T) {
	k := NewKey()
	for name, s := range map[string]string{
		"base64":     base64.StdEncoding.EncodeToString(k),
		"raw base64": base64.RawStdEncoding.EncodeToString(k),
		"url base64": base64.URLEncoding.EncodeToString(k),
		"hex":        hex.EncodeToString(k),
		"newline":    base64.StdEncoding.EncodeToString(k) + "\n",
	} {
		got, err := ParseKey(s)
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, s := range map[string]string{
		"empty": "", "short": base64.StdEncoding.EncodeToString(k[:16]), "junk": "not a key!",
	} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("%s: ParseKey accepted %q", name, s)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	s, src, err := Load(dir, "")
	if err != nil || src != SourceCreated {
		t.Fatalf("first Load: %v, %s", err, src)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	again, src, err := Load(dir, "")
	if err != nil || src != SourceFile || again.KeyID() != s.KeyID() {
		t.Fatalf("second Load: %v, %s, %s vs %s", err, src, again.KeyID(), s.KeyID())
	}

	envKey := NewKey()
	envDir := t.TempDir()
	e, src, err := Load(envDir, base64.StdEncoding.EncodeToString(envKey))
	if err != nil || src != SourceEnv || e.KeyID() != KeyID(envKey) {
		t.Fatalf("Load with env key: %v, %s", err, src)
	}
	if _, err := os.Stat(filepath.Join(envDir, KeyFileName)); !os.IsNotExist(err) {
		t.Fatal("Load with an env key wrote a key file")
	}
	if _, _, err := Load(envDir, "too-short"); err == nil || !strings.Contains(err.Error(), EnvKey) {
		t.Fatalf("Load with a bad env key: %v", err)
	}

	os.Chmod(filepath.Join(dir, KeyFileName), 0o644)
	if _, _, err := Load(dir, ""); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("Load of a world-readable key file: %v", err)
	}
	os.Chmod(filepath.Join(dir, KeyFileName), 0o600)

	// A secret.key.next left by an interrupted rotation opens too.
	next := NewKey()
	if err := WriteKeyFile(filepath.Join(dir, NextKeyFileName), next); err != nil {
		t.Fatal(err)
	}
	ns, _ := NewSealer(next)
	sealed, _ := ns.Seal([]byte(plain), rec)
	withNext, _, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := withNext.Open(sealed, rec); err != nil || string(got) != plain {
		t.Fatalf("Open of a secret sealed under secret.key.next: %v", err)
	}
}
