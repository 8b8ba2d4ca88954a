package audit

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"testing"
	"time"
)

func TestMoveFromBoltKeepsTheSignedLog(t *testing.T) {
	key := testKey(t, 11)
	pub := key.Public().(ed25519.PublicKey)
	path := tempDB(t)
	b := openTestBolt(t, path)
	defer b.Close()
	appendN(t, b, 2500, Options{Signer: key, SignEvery: 100})
	ctx := context.Background()
	segs := openTestSegs(t, filepath.Join(t.TempDir(), "segs"), SegmentOptions{SegmentSize: 1 << 20})
	defer segs.Close()
	// An interrupted move: the first 1000 records only.
	recs, err := b.rawRange(1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	cps, _ := b.Checkpoints(ctx)
	var early []Checkpoint
	for _, c := range cps {
		if c.Seq <= 1000 {
			early = append(early, c)
		}
	}
	if err := segs.Append(ctx, recs, early); err != nil {
		t.Fatal(err)
	}
	n, err := MoveFromBolt(ctx, b, segs)
	if err != nil || n != 1500 {
		t.Fatalf("resumed move: %d %v", n, err)
	}
	if n, err := MoveFromBolt(ctx, b, segs); err != nil || n != 0 {
		t.Fatalf("second move: %d %v", n, err)
	}
	rep := mustVerify(t, segs, pub)
	if !rep.OK() || rep.Records != 2500 || rep.SignedThrough != 2500 {
		t.Fatalf("moved log %+v (break %v)", rep, rep.Break)
	}
	// The gateway's open verifies and continues it.
	l, err := Open(segs, Options{Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	if seq, err := l.Append(ctx, sampleRecord(1)); err != nil || seq != 2501 {
		t.Fatalf("append after the move: %d %v", seq, err)
	}
	l.Close()
}

func TestMoveFromBoltAPrunedLog(t *testing.T) {
	key := testKey(t, 12)
	pub := key.Public().(ed25519.PublicKey)
	b := openTestBolt(t, tempDB(t))
	defer b.Close()
	clock := testClock()
	l, err := Open(b, Options{Now: clock, Signer: key, SignEvery: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 1; i <= 40; i++ {
		l.Append(ctx, sampleRecord(i))
	}
	if res, err := l.Prune(ctx, clock().Add(-15*time.Millisecond)); err != nil || res.Pruned == 0 {
		t.Fatalf("prune: %+v %v", res, err)
	}
	l.Close()
	segs := openTestSegs(t, filepath.Join(t.TempDir(), "segs"), SegmentOptions{})
	defer segs.Close()
	if _, err := MoveFromBolt(ctx, b, segs); err != nil {
		t.Fatal(err)
	}
	want := mustVerify(t, b, pub)
	got := mustVerify(t, segs, pub)
	if !got.OK() || got.First != want.First || got.Last != want.Last || got.Root != want.Root {
		t.Fatalf("moved %+v (break %v), bbolt %+v", got, got.Break, want)
	}
	l, err = Open(segs, Options{Now: clock, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}
