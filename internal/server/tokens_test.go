package server

import (
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestCheckSuppliedToken(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		ok     bool
		says   string
	}{
		{name: "a word", secret: "admin", says: "is 5 characters"},
		{name: "the old test token", secret: "bg_test_admin_token", says: "32 random bytes"},
		{name: "a repeat", secret: strings.Repeat("a", 64), says: "guessable"},
		{name: "two letters", secret: strings.Repeat("ab", 40), says: "guessable"},
		{name: "hex", secret: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", ok: true},
		{name: "base64", secret: "q1kNbGx8t0zT4Ww8cF2o3rRz1vXw5JpQy9mLk7aZbHs=", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckSuppliedToken(tt.secret)
			if tt.ok != (err == nil) {
				t.Fatalf("CheckSuppliedToken(%q) = %v, want ok %v", tt.secret, err, tt.ok)
			}
			if err != nil && (!strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), "--admin-token")) {
				t.Errorf("error %q does not say %q and name the flag", err, tt.says)
			}
		})
	}
}

// TestCheckSuppliedTokenAcceptsRandom: 32 random bytes, in any usual
// encoding, always pass (a fixed seed keeps the test deterministic).
func TestCheckSuppliedTokenAcceptsRandom(t *testing.T) {
	r := rand.New(rand.NewChaCha8([32]byte{1}))
	b := make([]byte, 32)
	for i := range 20000 {
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		for _, s := range []string{
			base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
			tokenPrefix + base64.RawURLEncoding.EncodeToString(b), hex.EncodeToString(b),
		} {
			if err := CheckSuppliedToken(s); err != nil {
				t.Fatalf("random token %d %q refused: %v", i, s, err)
			}
		}
	}
}
