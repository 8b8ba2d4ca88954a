package audit

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

const crashEnv = "BRIDGE_AUDIT_CRASH_CHILD_DB"

// TestCrashKeepsAckedRecords runs a child process (this test binary) that
// appends from 16 goroutines and prints every acknowledged seq, kills it
// with SIGKILL mid-load, then reopens the file: it must verify and hold
// every acknowledged record.
func TestCrashKeepsAckedRecords(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path)
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("SIGKILL crash test runs on Linux only")
	}
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	path := tempDB(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKeepsAckedRecords$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var maxAcked uint64
	acked := 0
	killed := false
	for sc.Scan() {
		seq, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			continue // test framework chatter
		}
		acked++
		maxAcked = max(maxAcked, seq)
		if acked == 1500 && !killed {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("child exited after %d acks before it was killed", acked)
	}

	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	rep := mustVerify(t, s, nil)
	if !rep.OK() {
		t.Fatalf("log after SIGKILL does not verify: %v", rep.Break)
	}
	// The chain is gap-free from 1, so every acked seq <= Last is present.
	if rep.First != 1 || rep.Last < maxAcked {
		t.Fatalf("log holds %d..%d but seq %d was acknowledged", rep.First, rep.Last, maxAcked)
	}
	t.Logf("%d acks read, highest %d; log holds %d records", acked, maxAcked, rep.Records)
	// The log keeps going after the crash.
	l, err := Open(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if seq, err := l.Append(context.Background(), sampleRecord(0)); err != nil || seq != rep.Last+1 {
		t.Fatalf("append after crash: %d %v", seq, err)
	}
	l.Close()
}

func crashChild(path string) {
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l, err := Open(s, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				seq, err := l.Append(context.Background(), sampleRecord(w*1_000_000+i))
				if err != nil {
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "%d\n", seq) // unbuffered: one write per ack
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}
