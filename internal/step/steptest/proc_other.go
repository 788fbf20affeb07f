//go:build !linux

package steptest

import "syscall"

func dieWithParent() *syscall.SysProcAttr { return nil }
