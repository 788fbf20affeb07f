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

// version prefixes every sealed string, so the format can change. v2
// binds a value to its record; legacy (v1) values were bound to nothing but
// their key and are only opened to be sealed again (Reseal).
const (
	version = "v2"
	legacy  = "v1"
)

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

// Record names where a sealed value is stored: its table, its column and
// the key of its row. A value is sealed for one record, which is part of
// the AES-GCM additional data, so it opens only there: copied into another
// row or column it does not open. Rows are named by keys that a copy of the
// store keeps (a registry, a channel's id), never by a row number.
type Record struct{ Table, Column, ID string }

// String names the record in errors.
func (r Record) String() string { return fmt.Sprintf("%s.%s of %q", r.Table, r.Column, r.ID) }

// RegistryPassword is the record of a registry credential's password.
func RegistryPassword(registry string) Record {
	return Record{Table: "registries", Column: "password_sealed", ID: registry}
}

// ChannelSecret is the record of an alert channel's secret.
func ChannelSecret(id string) Record {
	return Record{Table: "channels", Column: "secret_sealed", ID: id}
}

// ChannelURL is the record of a webhook channel's URL.
func ChannelURL(id string) Record {
	return Record{Table: "channels", Column: "url_sealed", ID: id}
}

// additionalData is what a value sealed by key id for rec authenticates
// besides its text: the format, the key id and the record. The record's
// key comes last, so no choice of key can pass for another table or column.
func additionalData(id string, rec Record) []byte {
	return []byte(version + ":" + id + ":" + rec.Table + "." + rec.Column + ":" + rec.ID)
}

// Seal encrypts plain for rec with a fresh random nonce and returns
// "v2:<key id>:<base64 of nonce and ciphertext>". The key id and the
// record are authenticated too, so a sealed string cannot be moved under
// another id or into another record.
func (s *Sealer) Seal(plain []byte, rec Record) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("reading a nonce: %w", err)
	}
	out := s.aead.Seal(nonce, nonce, plain, additionalData(s.id, rec))
	return version + ":" + s.id + ":" + base64.RawStdEncoding.EncodeToString(out), nil
}

// ErrUnknownKey is returned by Open for a string sealed under a key the
// sealer does not have.
var ErrUnknownKey = errors.New("sealed under an unknown key")

// ErrLegacy is returned by Open for a value sealed before values were
// bound to their record (format v1).
var ErrLegacy = errors.New("sealed without its record (format v1)")

// parse splits a sealed string into its version, key id and the base64 of
// nonce and ciphertext.
func parse(s string) (v, id, b64 string, err error) {
	v, rest, ok := strings.Cut(s, ":")
	if !ok || (v != version && v != legacy) {
		return "", "", "", errors.New("not a sealed secret")
	}
	id, b64, ok = strings.Cut(rest, ":")
	if !ok || id == "" {
		return "", "", "", errors.New("not a sealed secret")
	}
	return v, id, b64, nil
}

// SealedKeyID returns the id of the key that sealed s.
func SealedKeyID(s string) (string, error) {
	_, id, _, err := parse(s)
	return id, err
}

// IsLegacy says whether s was sealed before values were bound to their
// record (format v1); Reseal binds it.
func IsLegacy(s string) bool {
	v, _, _, err := parse(s)
	return err == nil && v == legacy
}

// Open decrypts a string Seal returned for rec, with the key named in it.
// A value sealed for another record, or a legacy one, does not open.
func (s *Sealer) Open(sealed string, rec Record) ([]byte, error) {
	v, _, _, err := parse(sealed)
	if err != nil {
		return nil, err
	}
	plain, err := s.open(sealed, rec)
	if err == nil && v == legacy {
		return nil, fmt.Errorf("%s: %w; the gate binds such values when it starts: restart it, or enter the secret again", rec, ErrLegacy)
	}
	return plain, err
}

// open decrypts a legacy value, or a current one sealed for rec.
func (s *Sealer) open(sealed string, rec Record) ([]byte, error) {
	v, id, b64, err := parse(sealed)
	if err != nil {
		return nil, err
	}
	aead := s.aead
	if id != s.id {
		if aead = s.older[id]; aead == nil {
			return nil, fmt.Errorf("%s: %w %s (this gate's key is %s): set GATE_SECRET_KEY or <data>/secret.key to that key, or re-enter the credentials", rec, ErrUnknownKey, id, s.id)
		}
	}
	raw, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(raw) < aead.NonceSize() {
		return nil, fmt.Errorf("%s: sealed secret is corrupt", rec)
	}
	ad := []byte(legacy + ":" + id)
	if v == version {
		ad = additionalData(id, rec)
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], ad)
	if err != nil {
		return nil, fmt.Errorf("%s: the sealed value does not open there: it was sealed for another record (moved or copied from another row or column), is corrupt, or was sealed under another key with the same id", rec)
	}
	return plain, nil
}

// Reseal opens sealed, a value sealed for rec or a legacy one, and seals it
// again for rec with to: a key rotation (to holds the new key), or the
// binding of a legacy value (to is s).
func (s *Sealer) Reseal(sealed string, rec Record, to *Sealer) (string, error) {
	plain, err := s.open(sealed, rec)
	if err != nil {
		return "", err
	}
	return to.Seal(plain, rec)
}
