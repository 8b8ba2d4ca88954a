package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestAppendChainsAndVerifies(t *testing.T) {
	s := openTestBolt(t, tempDB(t))
	defer s.Close()
	l, err := Open(s, Options{Now: testClock()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var prev string
	for i := 1; i <= 5; i++ {
		rec := sampleRecord(i)
		seq, err := l.Append(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		if seq != uint64(i) || rec.Seq != seq || rec.PrevHash != prev || rec.Hash == "" {
			t.Fatalf("append %d: seq %d rec %+v", i, seq, rec)
		}
		prev = rec.Hash
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, sampleRecord(9)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
	rep := mustVerify(t, s, nil)
	if !rep.OK() || rep.Records != 5 || rep.First != 1 || rep.Last != 5 {
		t.Fatalf("report %+v", rep)
	}

	// Reopening continues the chain.
	l, err = Open(s, Options{Now: testClock()})
	if err != nil {
		t.Fatal(err)
	}
	if seq, err := l.Append(ctx, sampleRecord(6)); err != nil || seq != 6 {
		t.Fatalf("append after reopen: %d, %v", seq, err)
	}
	l.Close()
	if rep := mustVerify(t, s, nil); !rep.OK() || rep.Last != 6 {
		t.Fatalf("report %+v", rep)
	}
}

func TestAppendRejectsBadRecords(t *testing.T) {
	l, err := Open(NewMemStore(), Options{Now: testClock()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if _, err := l.Append(ctx, &Record{Kind: "bogus"}); err == nil {
		t.Error("unknown kind accepted")
	}
	if _, err := l.Append(ctx, &Record{Kind: KindAnchor}); err == nil {
		t.Error("anchor accepted from a caller")
	}
	if _, err := l.Append(ctx, &Record{Kind: KindRequest, Message: []byte("{not json")}); err == nil {
		t.Error("invalid message accepted")
	}
	// The chain is unharmed.
	if seq, err := l.Append(ctx, sampleRecord(1)); err != nil || seq != 1 {
		t.Fatalf("append: %d %v", seq, err)
	}
}

func TestConcurrentAppendsGapFree(t *testing.T) {
	s := openTestBolt(t, tempDB(t))
	defer s.Close()
	key := testKey(t, 1)
	l, err := Open(s, Options{Now: testClock(), Signer: key, SignEvery: 50})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 32, 40
	var wg sync.WaitGroup
	seqs := make([][]uint64, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				seq, err := l.Append(context.Background(), sampleRecord(w*each+i))
				if err != nil {
					t.Error(err)
					return
				}
				seqs[w] = append(seqs[w], seq)
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for _, ss := range seqs {
		for _, q := range ss {
			if seen[q] {
				t.Fatalf("seq %d returned twice", q)
			}
			seen[q] = true
		}
	}
	for q := uint64(1); q <= writers*each; q++ {
		if !seen[q] {
			t.Fatalf("seq %d never returned", q)
		}
	}
	rep := mustVerify(t, s, key.Public().(ed25519.PublicKey))
	if !rep.OK() || rep.Records != writers*each || rep.SignedThrough != writers*each {
		t.Fatalf("report %+v", rep)
	}
}

// flakyStore is a Store whose writes fail while fail is set.
type flakyStore struct {
	Store
	fail   atomic.Bool
	writes atomic.Int64
}

var errDiskFull = errors.New("disk full")

func (f *flakyStore) Append(ctx context.Context, recs []Record, cps []Checkpoint) error {
	f.writes.Add(1)
	if f.fail.Load() {
		return errDiskFull
	}
	return f.Store.Append(ctx, recs, cps)
}

func (f *flakyStore) Last(ctx context.Context) (Record, bool, error) {
	if f.fail.Load() {
		return Record{}, false, errDiskFull
	}
	return f.Store.Last(ctx)
}

func TestFailingStoreFailsClosedAndRecovers(t *testing.T) {
	fs := &flakyStore{Store: openTestBolt(t, tempDB(t))}
	defer fs.Store.Close()
	l, err := Open(fs, Options{Now: testClock()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		if _, err := l.Append(ctx, sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}

	fs.fail.Store(true)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = l.Append(ctx, sampleRecord(100+i))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrWriteFailed) || !errors.Is(err, errDiskFull) {
			t.Fatalf("append %d while failing: %v, want ErrWriteFailed wrapping the cause", i, err)
		}
	}
	// Still failing: the head cannot be reloaded either.
	if _, err := l.Append(ctx, sampleRecord(200)); !errors.Is(err, ErrWriteFailed) {
		t.Fatalf("append while failing: %v", err)
	}

	fs.fail.Store(false)
	seq, err := l.Append(ctx, sampleRecord(4))
	if err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
	if seq != 4 {
		t.Fatalf("seq after recovery = %d, want 4 (no gap)", seq)
	}
	if rep := mustVerify(t, fs, nil); !rep.OK() || rep.Records != 4 {
		t.Fatalf("report %+v", rep)
	}
}

func TestFollowSeesExistingAndNewRecords(t *testing.T) {
	l, err := Open(NewMemStore(), Options{Now: testClock()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 1; i <= 3; i++ {
		l.Append(ctx, sampleRecord(i))
	}
	got := make(chan uint64, 10)
	done := make(chan error, 1)
	go func() {
		done <- l.Follow(ctx, 1, func(r Record) error {
			got <- r.Seq
			return nil
		})
	}()
	for _, want := range []uint64{2, 3} {
		if s := <-got; s != want {
			t.Fatalf("followed %d, want %d", s, want)
		}
	}
	l.Append(ctx, sampleRecord(4))
	if s := <-got; s != 4 {
		t.Fatalf("followed %d, want 4", s)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow returned %v", err)
	}
	l.Close()
}

func TestCloseSignsHead(t *testing.T) {
	s := NewMemStore()
	key := testKey(t, 2)
	appendN(t, s, 7, Options{Signer: key, SignEvery: 5})
	cps, _ := s.Checkpoints(context.Background())
	// The genesis head (size 0) is signed when the log is created.
	if len(cps) != 3 || cps[0].Seq != 0 || cps[1].Seq != 5 || cps[2].Seq != 7 {
		t.Fatalf("checkpoints %+v, want at 0, 5 and 7", cps)
	}
	rep := mustVerify(t, s, key.Public().(ed25519.PublicKey))
	if !rep.OK() || rep.SignedThrough != 7 {
		t.Fatalf("report %+v", rep)
	}
	// Opening and closing a log with nothing new re-signs the same head.
	appendN(t, s, 0, Options{Signer: key})
	if cps, _ := s.Checkpoints(context.Background()); len(cps) != 3 {
		t.Fatalf("checkpoints %d after an idle open/close, want 3", len(cps))
	}
}
