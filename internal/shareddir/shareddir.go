// Package shareddir finds the shared test material (real advisory data,
// Debian images): $BUILDGATE_SHARED, or ../shared next to the module root.
// It imports nothing heavy, so every test package can use it.
package shareddir

import (
	"fmt"
	"os"
	"path/filepath"
)

// Env names the environment variable that, when set, is the shared
// directory (the one holding vulndata/) instead of ../shared next to the
// module root.
const Env = "BUILDGATE_SHARED"

// Dir returns the shared material directory: $BUILDGATE_SHARED, or
// ../shared next to the directory holding go.mod (found by walking up from
// the working directory, which go test sets to the package's directory).
func Dir() (string, error) {
	if d := os.Getenv(Env); d != "" {
		return d, nil
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				shared := filepath.Join(filepath.Dir(d), "shared")
				if _, err := os.Stat(filepath.Join(shared, "vulndata")); err == nil {
					return shared, nil
				}
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("no shared directory: set %s or put shared/ next to the module root", Env)
}
