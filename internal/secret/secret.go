// Package secret seals credentials at rest with AES-256-GCM and keeps them
// out of logs: a Sealer turns a secret into an opaque string that names the
// key that sealed it, and a Secret is a string that never prints itself.
// It imports only the standard library.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// KeySize is the size of a sealing key in bytes (AES-256).
const KeySize = 32

// version prefixes every sealed string, so the format can change.
const version = "v1"

// redacted is what a Secret prints.
const redacted = "[REDACTED]"

// Secret is a string that redacts itself when printed, logged or marshalled
// to JSON. Convert it with string(s) only where the value is sent.
type Secret string

// String returns "[REDACTED]", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString redacts %#v too.
func (s Secret) GoString() string { return `secret.Secret("` + s.String() + `")` }

// MarshalJSON writes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText writes the redacted form (YAML, XML, text logs).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue redacts the secret in log/slog records.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Format redacts every verb of the fmt package, %s %v %q %x alike.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprint(f, s.String())
}

// Redact replaces every occurrence of the secrets in msg with
// "[REDACTED]": a last guard for messages that come from elsewhere (a
// registry's answer, an SDK's error). Secrets shorter than 4 bytes are left
// alone; replacing them would mangle ordinary words.
func Redact(msg string, secrets ...string) string {
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, redacted)
		}
	}
	return msg
}

// Sealer seals with one key and opens with it or any older key it was
// given, choosing the key by the id in the sealed string.
type Sealer struct {
	id    string
	aead  cipher.AEAD
	older map[string]cipher.AEAD
}

// KeyID returns the id of a key: the first 8 bytes of its SHA-256, in hex.
// It identifies the key without revealing it.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret key is %d bytes; it must be %d (AES-256)", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// NewSealer returns a sealer that seals with key and opens what key or any
// of older sealed.
func NewSealer(key []byte, older ...[]byte) (*Sealer, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	s := &Sealer{id: KeyID(key), aead: aead, older: map[string]cipher.AEAD{}}
	for _, k := range older {
		a, err := newAEAD(k)
		if err != nil {
			return nil, err
		}
		if id := KeyID(k); id != s.id {
			s.older[id] = a
		}
	}
	return s, nil
}

// KeyID returns the id of the key the sealer seals with.
func (s *Sealer) KeyID() string { return s.id }

// Seal encrypts plain with a fresh random nonce and returns
// "v1:<key id>:<base64 of nonce and ciphertext>". The key id is also
// authenticated, so a sealed string cannot be moved under another id.
func (s *Sealer) Seal(plain []byte) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("reading a nonce: %w", err)
	}
	out := s.aead.Seal(nonce, nonce, plain, []byte(version+":"+s.id))
	return version + ":" + s.id + ":" + base64.RawStdEncoding.EncodeToString(out), nil
}

// ErrUnknownKey is returned by Open for a string sealed under a key the
// sealer does not have.
var ErrUnknownKey = errors.New("sealed under an unknown key")

// SealedKeyID returns the id of the key that sealed s.
func SealedKeyID(s string) (string, error) {
	v, rest, ok := strings.Cut(s, ":")
	if !ok || v != version {
		return "", errors.New("not a sealed secret")
	}
	id, _, ok := strings.Cut(rest, ":")
	if !ok || id == "" {
		return "", errors.New("not a sealed secret")
	}
	return id, nil
}

// Open decrypts a string Seal returned, with the key named in it.
func (s *Sealer) Open(sealed string) ([]byte, error) {
	id, err := SealedKeyID(sealed)
	if err != nil {
		return nil, err
	}
	aead := s.aead
	if id != s.id {
		if aead = s.older[id]; aead == nil {
			return nil, fmt.Errorf("%w %s (this gate's key is %s): set GATE_SECRET_KEY or <data>/secret.key to that key, or re-enter the credentials", ErrUnknownKey, id, s.id)
		}
	}
	b64 := sealed[len(version)+1+len(id)+1:]
	raw, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(raw) < aead.NonceSize() {
		return nil, errors.New("sealed secret is corrupt")
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(version+":"+id))
	if err != nil {
		return nil, errors.New("sealed secret is corrupt or was sealed under another key with the same id")
	}
	return plain, nil
}
