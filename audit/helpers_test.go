package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"github.com/seed-3f9f6f16/bridge/audit/merkle"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// testClock returns a clock that starts at a fixed instant and moves 1ms per
// reading, so tests never depend on real time.
func testClock() func() time.Time {
	base := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	var n atomic.Int64
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Millisecond) }
}

func testKey(t testing.TB, seed byte) ed25519.PrivateKey {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s)
}

func openTestBolt(t testing.TB, path string) *BoltStore {
	t.Helper()
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	return s
}

func tempDB(t testing.TB) string { return filepath.Join(t.TempDir(), "bridge.db") }

func sampleRecord(i int) *Record {
	return &Record{
		Kind:      KindRequest,
		Direction: ToServer,
		Session:   fmt.Sprintf("s-%d", i%3),
		Identity:  Identity{Subject: "00u1", Email: "alice@example.com", Groups: []string{"engineering"}, ClientName: "claude-code", ClientVersion: "1.0"},
		Server:    "github",
		Method:    "tools/call",
		Tool:      fmt.Sprintf("tool_%04d", i),
		RequestID: fmt.Sprint(i),
		Message:   json.RawMessage(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"tool_%04d"}}`, i, i)),
	}
}

// appendN appends n sample records through a Log and closes it.
func appendN(t testing.TB, s Store, n int, opts Options) {
	t.Helper()
	if opts.Now == nil {
		opts.Now = testClock()
	}
	l, err := Open(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 1; i <= n; i++ {
		if _, err := l.Append(ctx, sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// fillStore chains recs and writes them straight to s in large batches (fast
// setup for benchmarks).
func fillStore(t testing.TB, s Store, recs []Record, now func() time.Time) {
	t.Helper()
	last, ok, err := s.Last(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seq, prev := uint64(0), ""
	if ok {
		seq, prev = last.Seq, last.Hash
	}
	for start := 0; start < len(recs); start += 1000 {
		end := min(start+1000, len(recs))
		batch := recs[start:end]
		for i := range batch {
			seq++
			batch[i].Seq, batch[i].Time, batch[i].PrevHash = seq, now(), prev
			enc, err := batch[i].seal()
			if err != nil {
				t.Fatal(err)
			}
			batch[i].enc = enc
			prev = batch[i].Hash
		}
		if err := s.Append(context.Background(), batch, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func mustVerify(t testing.TB, s Store, pub ed25519.PublicKey) *VerifyReport {
	t.Helper()
	rep, err := Verify(context.Background(), s, pub)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func wantBreak(t testing.TB, rep *VerifyReport, seq uint64, reason BreakReason) {
	t.Helper()
	if rep.Break == nil {
		t.Fatalf("Verify passed (%+v), want a break at seq %d (%s)", rep, seq, reason)
	}
	if rep.Break.Seq != seq || rep.Break.Reason != reason {
		t.Fatalf("break = %v, want seq %d (%s)", rep.Break, seq, reason)
	}
}

// LeafHashForTest is some valid Merkle hash.
func LeafHashForTest() merkle.Hash { return merkle.LeafHash([]byte("test")) }
