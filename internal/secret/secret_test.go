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

func TestSealOpen(t *testing.T) {
	key := NewKey()
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Seal([]byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Seal([]byte(plain))
	if a == b {
		t.Fatal("two seals of one secret are equal: the nonce is not fresh")
	}
	if !strings.HasPrefix(a, "v1:"+KeyID(key)+":") {
		t.Fatalf("sealed %q lacks the v1:<key id>: prefix", a)
	}
	if strings.Contains(a, plain) {
		t.Fatal("sealed text holds the secret")
	}
	if id, _ := SealedKeyID(a); id != s.KeyID() {
		t.Fatalf("SealedKeyID = %q, want %q", id, s.KeyID())
	}
	got, err := s.Open(a)
	if err != nil || string(got) != plain {
		t.Fatalf("Open = %q, %v", got, err)
	}

	other, _ := NewSealer(NewKey())
	if _, err := other.Open(a); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Open under another key: %v, want ErrUnknownKey", err)
	}
	// A sealer with the old key as an older key opens it.
	rotated, _ := NewSealer(NewKey(), key)
	if got, err := rotated.Open(a); err != nil || string(got) != plain {
		t.Fatalf("Open with the old key as older: %q, %v", got, err)
	}

	for name, bad := range map[string]string{
		"tampered":        a[:len(a)-2] + "AA",
		"moved under id":  "v1:" + KeyID(NewKey()) + a[len("v1:")+16:],
		"not sealed":      plain,
		"unknown version": "v9:" + a[3:],
	} {
		if _, err := s.Open(bad); err == nil {
			t.Errorf("%s: Open succeeded", name)
		}
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
	sealed, _ := ns.Seal([]byte(plain))
	withNext, _, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := withNext.Open(sealed); err != nil || string(got) != plain {
		t.Fatalf("Open of a secret sealed under secret.key.next: %v", err)
	}
}
