package main

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// Modes of everything under the data directory: only the gate's user may
// read the store, the sealing key, the vulnerability DB and the work space.
const (
	dataDirMode  fs.FileMode = 0o700
	dataFileMode fs.FileMode = 0o600
)

// secureDataDir creates the data directory 0700 and tightens what is in it
// already: directories to 0700, files to 0600. Each change is logged as a
// warning naming the path and its old mode. Symbolic links are left alone
// (their mode means nothing; what they point at is not ours to change).
func secureDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, dataDirMode); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("tightening data directory: %w", err)
		}
		want := dataFileMode
		switch {
		case d.IsDir():
			want = dataDirMode
		case !d.Type().IsRegular():
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("tightening data directory: %w", err)
		}
		if info.Mode().Perm() == want {
			return nil
		}
		if err := os.Chmod(path, want); err != nil {
			return fmt.Errorf("tightening data directory: %w", err)
		}
		log.Warn("tightened the mode of a data file others could read",
			"path", path, "was", fmt.Sprintf("%04o", info.Mode().Perm()), "now", fmt.Sprintf("%04o", want))
		return nil
	})
}
