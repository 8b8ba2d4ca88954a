package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

const segCrashEnv = "BRIDGE_AUDIT_SEGMENT_CRASH_CHILD_DIR"

// TestSegmentCrashMidGroupKeepsAckedRecords runs a child process (this
// test binary) that appends from 16 goroutines to a signed segment log and
// prints every acknowledged seq. Once 300 are acknowledged, the child
// stops inside the write of a group commit of several records, half of it
// written, and says so; the test kills it with SIGKILL there. The reopened
// log must verify, hold every acknowledged record, leave the torn commit
// out, keep its bytes aside on the next write and go on.
func TestSegmentCrashMidGroupKeepsAckedRecords(t *testing.T) {
	if dir := os.Getenv(segCrashEnv); dir != "" {
		segCrashChild(dir)
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("SIGKILL crash test runs on Linux only")
	}
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	dir := filepath.Join(t.TempDir(), "bridge.db.audit")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSegmentCrashMidGroupKeepsAckedRecords$", "-test.count=1")
	cmd.Env = append(os.Environ(), segCrashEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	acked := map[uint64]bool{}
	killed := false
	for sc.Scan() {
		if sc.Text() == "TORN" {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			continue
		}
		if seq, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
			acked[seq] = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("child exited after %d acks without reaching a torn commit", len(acked))
	}

	key := testKey(t, 9)
	s, err := OpenSegments(dir, SegmentOptions{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	// The gateway's open: verify against the key, then continue.
	l, err := Open(s, Options{Signer: key})
	if err != nil {
		t.Fatalf("open after SIGKILL: %v", err)
	}
	last := l.Head().Seq
	for seq := range acked {
		if seq > last {
			t.Fatalf("seq %d was acknowledged but the log ends at %d", seq, last)
		}
	}
	if seq, err := l.Append(context.Background(), sampleRecord(0)); err != nil || seq != last+1 {
		t.Fatalf("append after crash: %d %v", seq, err)
	}
	l.Close()
	rep := mustVerify(t, s, key.Public().(ed25519.PublicKey))
	if !rep.OK() || rep.First != 1 {
		t.Fatalf("log after SIGKILL: %+v (break %v)", rep, rep.Break)
	}
	kept, _ := filepath.Glob(filepath.Join(dir, "*.torn-*"))
	if len(kept) != 1 {
		t.Fatalf("the torn commit was not kept aside: %v", kept)
	}
	t.Logf("%d acks, log holds %d records, torn commit kept in %s", len(acked), rep.Records, filepath.Base(kept[0]))
}

func segCrashChild(dir string) {
	var acks atomic.Int64
	var stop atomic.Bool
	opts := SegmentOptions{SegmentSize: 64 << 10}
	opts.midWrite = func(frames int) {
		if frames >= 3 && acks.Load() >= 300 && stop.CompareAndSwap(false, true) {
			fmt.Fprintln(os.Stdout, "TORN")
			select {} // killed here, half the commit written
		}
	}
	s, err := OpenSegments(dir, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var k [32]byte
	for i := range k {
		k[i] = 9
	}
	l, err := Open(s, Options{Signer: ed25519.NewKeyFromSeed(k[:])})
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
				fmt.Fprintf(os.Stdout, "%d\n", seq)
				mu.Unlock()
				acks.Add(1)
			}
		}()
	}
	wg.Wait()
}
