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
	t := time.NewTicker(interval)
	defer t.Stop()
	watchFile(ctx, path, t.C, changes, nil)
}

// watchFile checks path on every tick; checked, if set, is told after each
// check, so tests drive the ticks and know when one was handled.
func watchFile(ctx context.Context, path string, ticks <-chan time.Time, changes chan<- struct{}, checked func()) {
	stamp := func() (time.Time, int64) {
		fi, err := os.Stat(path)
		if err != nil {
			return time.Time{}, -1
		}
		return fi.ModTime(), fi.Size()
	}
	mod, size := stamp()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			if m, s := stamp(); !m.Equal(mod) || s != size {
				mod, size = m, s
				select {
				case changes <- struct{}{}:
				default: // a reload is already queued
				}
			}
			if checked != nil {
				checked()
			}
		}
	}
}
