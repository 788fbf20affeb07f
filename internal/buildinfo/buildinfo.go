// Package buildinfo holds the version, commit and build date stamped into
// every buildgate binary at link time:
//
//	go build -ldflags "-X github.com/buildgate/buildgate/internal/buildinfo.Version=v1.2.3
//	  -X github.com/buildgate/buildgate/internal/buildinfo.Commit=<sha>
//	  -X github.com/buildgate/buildgate/internal/buildinfo.Date=<RFC 3339>"
//
// The Makefile passes them from the git tag, so they are right even when
// CI builds with -buildvcs=false. Without them a binary says "dev" and
// falls back to the VCS stamp the Go toolchain recorded, if any.
package buildinfo

import (
	"fmt"
	"runtime/debug"
)

// Version is the release version (the git tag), "dev" when not stamped.
var Version = "dev"

// Commit is the git commit the binary was built from.
var Commit = ""

// Date is the build date (the commit time for reproducible builds), RFC 3339.
var Date = ""

// Info is what a binary says about its build.
type Info struct {
	Version, Commit, Date string
}

// Get returns the stamped build information, filling an unstamped commit
// and date from the toolchain's VCS stamp.
func Get() Info {
	i := Info{Version: Version, Commit: Commit, Date: Date}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && i.Commit == "":
				i.Commit = s.Value
			case s.Key == "vcs.time" && i.Date == "":
				i.Date = s.Value
			}
		}
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	if i.Date == "" {
		i.Date = "unknown"
	}
	return i
}

// String is the one line `NAME --version` prints:
// "gate v1.2.3 (commit 0123abc, built 2026-01-02T03:04:05Z)".
func String(name string) string {
	i := Get()
	return fmt.Sprintf("%s %s (commit %s, built %s)", name, i.Version, i.Commit, i.Date)
}
