//go:build unix

package bridge_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/bridge"
)

// alive reports whether pid is a process that has not exited (a zombie
// awaiting its reaper counts as gone).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) && syscall.Kill(pid, 0) == nil
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i > 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// eventually polls cond until it holds, failing the test after a generous
// bound (a bound on a hang, not a measurement).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readPids waits for the shell to write its grandchildren's pids.
func readPids(t *testing.T, files ...string) []int {
	t.Helper()
	var pids []int
	for _, f := range files {
		var pid int
		eventually(t, "pid file "+filepath.Base(f), func() bool {
			b, err := os.ReadFile(f)
			if err != nil || !strings.HasSuffix(string(b), "\n") {
				return false
			}
			pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
			return err == nil
		})
		pids = append(pids, pid)
	}
	return pids
}

// TestCommandCloseKillsProcessGroup starts a shell upstream that starts two
// grandchildren, one holding the shell's stdout open and one detached from
// it (as the node behind npx, or a daemon, would be), and checks that both
// are gone once the connection is closed.
func TestCommandCloseKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	held, detached := filepath.Join(dir, "held"), filepath.Join(dir, "detached")
	script := `sleep 1000 & echo $! > "$HELD.tmp"; mv "$HELD.tmp" "$HELD"
sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > "$DETACHED.tmp"; mv "$DETACHED.tmp" "$DETACHED"
read line`
	conn, err := bridge.Command{
		Path: "/bin/sh", Args: []string{"-c", script},
		Env:         []string{"PATH=" + os.Getenv("PATH"), "HELD=" + held, "DETACHED=" + detached},
		StopTimeout: 50 * time.Millisecond,
	}.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pids := readPids(t, held, detached)
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("grandchild %d is not running before Close", pid)
		}
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		eventually(t, "grandchild "+strconv.Itoa(pid)+" to end", func() bool { return !alive(pid) })
	}
}

// TestCommandExitKillsDetachedChildren: an upstream that exits on its own
// leaves no detached child behind either.
func TestCommandExitKillsDetachedChildren(t *testing.T) {
	dir := t.TempDir()
	detached := filepath.Join(dir, "detached")
	script := `sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > "$DETACHED.tmp"; mv "$DETACHED.tmp" "$DETACHED"; read line; exit 3`
	conn, err := bridge.Command{
		Path: "/bin/sh", Args: []string{"-c", script},
		Env: []string{"PATH=" + os.Getenv("PATH"), "DETACHED=" + detached},
	}.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pid := readPids(t, detached)[0]
	// A line on stdin makes the shell exit by itself.
	if err := conn.(interface{ WriteRaw([]byte) error }).WriteRaw([]byte(`{"jsonrpc":"2.0","method":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Recv(context.Background()); err == nil {
		t.Fatal("Recv after the upstream exited returned a message, want the end")
	}
	eventually(t, "the detached grandchild to end", func() bool { return !alive(pid) })
}
