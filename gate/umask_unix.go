//go:build unix

package main

import "syscall"

// privateUmask makes every file the gate process creates (the store, the
// vulnerability DB, layouts and uploads) readable by its user only.
func privateUmask() { syscall.Umask(0o077) }
