//go:build !linux

package handoff

import (
	"context"
	"errors"
	"runtime"
)

var errNotImplemented = errors.New("handoff: not implemented on " + runtime.GOOS)

// WaitDevice is not implemented outside Linux.
func WaitDevice(context.Context, string) error { return errNotImplemented }

// Mount is not implemented outside Linux.
func Mount(Root, string, []string) (string, error) { return "", errNotImplemented }

// Unmount is not implemented outside Linux.
func Unmount(string) error { return errNotImplemented }

// SwitchRoot is not implemented outside Linux.
func SwitchRoot(string, string, []string, []string) error { return errNotImplemented }

// KexecLoad is not implemented outside Linux.
func KexecLoad(string, string, string) error { return errNotImplemented }

// KexecReboot is not implemented outside Linux.
func KexecReboot() error { return errNotImplemented }
