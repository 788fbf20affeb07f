package steptest

import "syscall"

// dieWithParent makes the gate die with the test binary, even when a test
// times out or panics before Cleanup.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
