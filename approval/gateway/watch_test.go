package gateway

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWatchFile drives the watcher's ticks by hand and waits for each
// check to finish, so it never sleeps and never races the ticker.
func TestWatchFile(t *testing.T) {
	later := time.Now().Add(time.Hour)
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
		want   bool
	}{
		{"no change", func(*testing.T, string) {}, false},
		{"content and size", func(t *testing.T, p string) { write(t, p, "a: 22\n") }, true},
		{"modification time only", func(t *testing.T, p string) {
			if err := os.Chtimes(p, later, later); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"replaced by an editor", func(t *testing.T, p string) {
			tmp := p + ".tmp"
			write(t, tmp, "a: 333\n")
			if err := os.Rename(tmp, p); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"removed", func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gateway.yaml")
			write(t, path, "a: 1\n")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ticks, changes, checked := make(chan time.Time), make(chan struct{}, 1), make(chan struct{})
			go watchFile(ctx, path, ticks, changes, func() { checked <- struct{}{} })
			tick := func() { ticks <- time.Time{}; <-checked }

			tick() // a check with nothing changed
			if len(changes) != 0 {
				t.Fatal("a reload without a change")
			}
			tt.change(t, path)
			tick()
			if got := len(changes) == 1; got != tt.want {
				t.Fatalf("reload asked = %v, want %v", got, tt.want)
			}
			if tt.want {
				<-changes
				tick() // the same state again asks for nothing more
				if len(changes) != 0 {
					t.Error("a second reload for one change")
				}
			}
		})
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
