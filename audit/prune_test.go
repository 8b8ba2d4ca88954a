package audit

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"
)

func TestPruneKeepsChainVerifiable(t *testing.T) {
	key := testKey(t, 7)
	pub := key.Public().(ed25519.PublicKey)
	for name, s := range map[string]Store{"bolt": openTestBolt(t, tempDB(t)), "mem": NewMemStore()} {
		t.Run(name, func(t *testing.T) {
			defer s.Close()
			clock := testClock()
			l, err := Open(s, Options{Now: clock, Signer: key, SignEvery: 10})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			var cut time.Time
			for i := 1; i <= 50; i++ {
				rec := sampleRecord(i)
				l.Append(ctx, rec)
				if i == 30 {
					cut = rec.Time.Add(time.Nanosecond) // prune 1..30
				}
			}
			res, err := l.Prune(ctx, cut)
			if err != nil {
				t.Fatal(err)
			}
			if res.Pruned != 30 || res.Through != 30 || res.AnchorSeq != 51 {
				t.Fatalf("prune result %+v", res)
			}
			rep := mustVerify(t, s, pub)
			if !rep.OK() || rep.First != 31 || rep.Anchor == nil || rep.Anchor.PrunedThrough != 30 {
				t.Fatalf("report after prune %+v (break %v)", rep, rep.Break)
			}

			// Prune again, past the first anchor.
			for i := 51; i <= 60; i++ {
				l.Append(ctx, sampleRecord(i))
			}
			res, err = l.Prune(ctx, clock().Add(-5*time.Millisecond))
			if err != nil || res.Pruned == 0 {
				t.Fatalf("second prune %+v %v", res, err)
			}
			l.Close()
			rep = mustVerify(t, s, pub)
			if !rep.OK() || rep.First != res.Through+1 {
				t.Fatalf("report after second prune %+v (break %v)", rep, rep.Break)
			}
			// Nothing old enough: no anchor.
			l, _ = Open(s, Options{Now: clock})
			if res, err := l.Prune(ctx, time.Time{}); err != nil || res.AnchorSeq != 0 {
				t.Fatalf("empty prune %+v %v", res, err)
			}
			l.Close()
		})
	}
}

func TestPruneWithoutAnchorIsDetected(t *testing.T) {
	s := NewMemStore()
	appendN(t, s, 20, Options{})
	s.DeleteRange(context.Background(), 1, 5)
	wantBreak(t, mustVerify(t, s, nil), 6, BreakUnanchored)
}

// stopDeleting deletes only the first n records DeleteRange is asked for,
// then fails, as a crash part-way through retention would leave the store.
type stopDeleting struct {
	Store
	n uint64
}

func (s *stopDeleting) DeleteRange(ctx context.Context, from, to uint64) error {
	if err := s.Store.DeleteRange(ctx, from, min(to, from+s.n-1)); err != nil {
		return err
	}
	return errDiskFull
}

func TestPartialPruneVerifies(t *testing.T) {
	key := testKey(t, 8)
	pub := key.Public().(ed25519.PublicKey)
	mem := NewMemStore()
	s := &stopDeleting{Store: mem, n: 4}
	clock := testClock()
	l, err := Open(s, Options{Now: clock, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var cut time.Time
	for i := 1; i <= 20; i++ {
		rec := sampleRecord(i)
		l.Append(ctx, rec)
		if i == 10 {
			cut = rec.Time.Add(time.Nanosecond)
		}
	}
	if _, err := l.Prune(ctx, cut); err == nil {
		t.Fatal("prune did not report the failed deletion")
	}
	l.Close()
	if rep := mustVerify(t, mem, pub); !rep.OK() {
		t.Fatalf("partial prune: %v", rep.Break)
	}
	// The gateway reopens over it and a later prune finishes the job.
	l, err = Open(mem, Options{Now: clock, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Prune(ctx, cut); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep := mustVerify(t, mem, pub); !rep.OK() || rep.First != 11 {
		t.Fatalf("after finishing the prune: %+v %v", rep, rep.Break)
	}
	// Records deleted beyond what the anchor covers are caught at the
	// first one missing.
	mem.recs = mem.recs[2:]
	wantBreak(t, mustVerify(t, mem, pub), 11, BreakMissing)
}
