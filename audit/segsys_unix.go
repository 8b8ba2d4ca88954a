//go:build unix

package audit

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// lockFile takes an exclusive (or, when shared, a shared) advisory lock on
// f, waiting up to timeout.
func lockFile(f *os.File, shared bool, timeout time.Duration) error {
	how := syscall.LOCK_EX
	if shared {
		how = syscall.LOCK_SH
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return errLocked
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncDir makes a directory's entries (created, renamed, removed files)
// durable.
func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
