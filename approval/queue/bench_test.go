package queue

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkLifecycle measures one approval's whole life (Create, Decide to
// approved, FindForCall, Claim) on the in-memory store, the baseline, and
// on bbolt with its fsync per transaction, in the same run:
//
//	go test -run '^$' -bench Lifecycle ./approval/queue/
//
// The bolt/mem ratio is the cost of durability.
func BenchmarkLifecycle(b *testing.B) {
	run := func(b *testing.B, s Store) {
		ctx := context.Background()
		q := newQueue(b, s, newClock())
		req := call(1)
		b.ReportAllocs()
		for b.Loop() {
			r, err := q.Create(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := q.Decide(ctx, r.ID, bob, Approve, "", nil); err != nil {
				b.Fatal(err)
			}
			if _, err := q.Claim(ctx, r.ID); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("mem", func(b *testing.B) { run(b, NewMemStore()) })
	b.Run("bolt", func(b *testing.B) {
		s, err := OpenBolt(filepath.Join(b.TempDir(), "bridge.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		run(b, s)
	})
}

// BenchmarkFindForCall measures the lookup every retried call makes, with
// 1000 other requests in the bbolt file; it reads only the call's index.
func BenchmarkFindForCall(b *testing.B) {
	ctx := context.Background()
	s, err := OpenBolt(filepath.Join(b.TempDir(), "bridge.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// 1000 pending requests of one requester, past the default cap, to
	// measure the lookup among many.
	q, err := New(s, Options{Now: newClock().Now, MaxPendingPerRequester: 2000})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		r := call(1)
		r.Tool = "tool_" + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
		mustCreate(b, q, r)
	}
	target := mustCreate(b, q, call(1))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := q.FindForCall(ctx, alice.Subject, "github", "create_pull_request", target.ArgsDigest); err != nil {
			b.Fatal(err)
		}
	}
}
