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

func TestPartialPruneVerifies(t *testing.T) {
	// The anchor is written, then deletion stops part-way.
	s := NewMemStore()
	clock := testClock()
	appendN(t, s, 20, Options{Now: clock})
	l, _ := Open(s, Options{Now: clock})
	ctx := context.Background()
	r10, _ := Get(ctx, s, 10)
	anchor := &Record{Kind: KindAnchor, Anchor: &Anchor{PrunedFrom: 1, PrunedThrough: 10, PrunedCount: 10, PrunedHash: r10.Hash}}
	if _, err := l.append(ctx, anchor); err != nil {
		t.Fatal(err)
	}
	l.Close()
	s.DeleteRange(ctx, 1, 4)
	if rep := mustVerify(t, s, nil); !rep.OK() {
		t.Fatalf("partial prune: %v", rep.Break)
	}
	// Deleting beyond what the anchor covers is still caught.
	s.DeleteRange(ctx, 5, 12)
	wantBreak(t, mustVerify(t, s, nil), 13, BreakUnanchored)
}
