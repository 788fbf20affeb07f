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

// prepareDataDir makes the data directory and proves the gate can write
// into it, so that a volume the gate's user does not own stops the gate at
// once with the path and the reason, rather than at the first write.
func prepareDataDir(dir string) error {
	hint := fmt.Sprintf("the gate runs as uid %d: give that user the directory (the image's user is 65532; "+
		"Kubernetes: securityContext.fsGroup; docker: a named volume, or chown the host directory)", os.Getuid())
	if err := os.MkdirAll(dir, dataDirMode); err != nil {
		return fmt.Errorf("data directory %s cannot be created: %w; %s", dir, err, hint)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w; %s", dir, err, hint)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("data directory %s: removing %s: %w", dir, filepath.Base(name), err)
	}
	return nil
}
