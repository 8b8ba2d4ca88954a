package gateway

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWatchFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte("a: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan struct{}, 1)
	go WatchFile(ctx, path, 5*time.Millisecond, changes)
	time.Sleep(20 * time.Millisecond)
	select {
	case <-changes:
		t.Fatal("a reload without a change")
	default:
	}
	if err := os.WriteFile(path, []byte("a: 22\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
	case <-time.After(10 * time.Second):
		t.Fatal("the change was not noticed")
	}
}
