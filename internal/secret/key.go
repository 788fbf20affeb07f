package secret

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// EnvKey is the environment variable that holds the sealing key, base64 or
// hex. When it is set the key file is not used.
const EnvKey = "GATE_SECRET_KEY"

// KeyFileName is the key file's name in the data directory.
const KeyFileName = "secret.key"

// NextKeyFileName holds the new key while a rotation is under way; a
// rotation that was cut short leaves it behind, and the gate opens secrets
// with it too until the rotation is run again.
const NextKeyFileName = "secret.key.next"

// ParseKey reads a 32-byte key written as base64 (standard or URL, padded
// or not) or as 64 hex digits.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("the secret key is empty")
	}
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != KeySize {
				return nil, fmt.Errorf("the secret key decodes to %d bytes; it must be %d (generate one with: head -c 32 /dev/urandom | base64)", len(k), KeySize)
			}
			return k, nil
		}
	}
	return nil, fmt.Errorf("the secret key is neither base64 nor 64 hex digits (generate one with: head -c 32 /dev/urandom | base64)")
}

// NewKey returns a random key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return k
}

// EncodeKey writes a key the way key files hold it: base64 and a newline.
func EncodeKey(k []byte) []byte {
	return []byte(base64.StdEncoding.EncodeToString(k) + "\n")
}

// ReadKeyFile reads a key file, refusing one that others may read.
func ReadKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret key file %s has mode %04o: others may read it; chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("reading secret key file %s: %w", path, err)
	}
	return k, nil
}

// WriteKeyFile writes k to path with mode 0600, through a temporary file
// renamed into place, so a reader sees the old key or the new one whole.
func WriteKeyFile(path string, k []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secret-key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(EncodeKey(k)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	_ = d.Sync() // not every file system syncs directories; the rename stands
	return nil
}

// Source says where a gate's key came from.
type Source string

// Key sources.
const (
	SourceEnv     Source = "env"
	SourceFile    Source = "file"
	SourceCreated Source = "created"
)

// Load returns the sealer of a data directory: the key comes from
// GATE_SECRET_KEY (env, as given) when it is set, otherwise from
// <dataDir>/secret.key, which is created with mode 0600 when missing. A
// secret.key.next left by an interrupted rotation is added as an older key.
func Load(dataDir, env string) (*Sealer, Source, error) {
	var key []byte
	var src Source
	if strings.TrimSpace(env) != "" {
		k, err := ParseKey(env)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", EnvKey, err)
		}
		key, src = k, SourceEnv
	} else {
		path := filepath.Join(dataDir, KeyFileName)
		k, err := ReadKeyFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			k = NewKey()
			src = SourceCreated
			if err := createKeyFile(path, k); errors.Is(err, fs.ErrExist) {
				// Another gate created it first: use its key.
				if k, err = ReadKeyFile(path); err != nil {
					return nil, "", err
				}
				src = SourceFile
			} else if err != nil {
				return nil, "", fmt.Errorf("creating secret key file %s: %w", path, err)
			}
		case err != nil:
			return nil, "", err
		default:
			src = SourceFile
		}
		key = k
	}
	var older [][]byte
	if next, err := ReadKeyFile(filepath.Join(dataDir, NextKeyFileName)); err == nil {
		older = append(older, next)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	s, err := NewSealer(key, older...)
	return s, src, err
}

// createKeyFile creates path exclusively, so two gates starting at once do
// not each write a key.
func createKeyFile(path string, k []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(EncodeKey(k))
	if err2 := f.Sync(); err == nil {
		err = err2
	}
	if err2 := f.Close(); err == nil {
		err = err2
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}
