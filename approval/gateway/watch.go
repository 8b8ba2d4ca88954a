package gateway

import (
	"context"
	"os"
	"time"
)

// WatchFile asks for a reload on changes whenever the file at path changes
// (size or modification time), checking every interval until ctx ends.
// Editors that replace the file are covered, since only the path is kept.
func WatchFile(ctx context.Context, path string, interval time.Duration, changes chan<- struct{}) {
	stamp := func() (time.Time, int64) {
		fi, err := os.Stat(path)
		if err != nil {
			return time.Time{}, -1
		}
		return fi.ModTime(), fi.Size()
	}
	mod, size := stamp()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m, s := stamp()
			if m.Equal(mod) && s == size {
				continue
			}
			mod, size = m, s
			select {
			case changes <- struct{}{}:
			default: // a reload is already queued
			}
		}
	}
}
