//go:build !unix

package main

// privateUmask does nothing where there is no umask; secureDataDir still
// tightens the data directory at start.
func privateUmask() {}
