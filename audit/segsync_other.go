//go:build !linux

package audit

import "os"

// fdatasync flushes f to stable storage (fsync where fdatasync is not
// offered).
func fdatasync(f *os.File) error { return f.Sync() }
