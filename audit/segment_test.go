package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// smallSegments makes segments of a few records, so tests cross segment
// boundaries.
const smallSegments = 4096

func openTestSegs(t testing.TB, dir string, opts SegmentOptions) *SegmentStore {
	t.Helper()
	if opts.SegmentSize == 0 {
		opts.SegmentSize = smallSegments
	}
	s, err := OpenSegments(dir, opts)
	if err != nil {
		t.Fatalf("OpenSegments: %v", err)
	}
	return s
}

// segFiles lists the segment files of dir in order.
func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// frameOffsets returns the offsets of the frames of a segment file's data.
func frameOffsets(data []byte) []int {
	var out []int
	for off := segHeaderSize; off+frameHeaderSize <= len(data); {
		fh, zero, err := parseFrameHeader(data[off:])
		if zero || err != nil {
			break
		}
		out = append(out, off)
		off += frameHeaderSize + int(fh.length)
	}
	return out
}

// refreshCRC recomputes the CRC of the frame at off, as an attacker who
// knows the format would.
func refreshCRC(data []byte, off int) {
	fh, _, _ := parseFrameHeader(data[off:])
	p := data[off+frameHeaderSize : off+frameHeaderSize+int(fh.length)]
	h := appendFrame(nil, data[off+16], fh.seq, fh.flags&flagCommitEnd != 0, p)
	copy(data[off:], h[:frameHeaderSize])
}

// segFileOf returns the segment file holding seq.
func segFileOf(t testing.TB, dir string, seq uint64) string {
	t.Helper()
	var hit string
	for _, f := range segFiles(t, dir) {
		first, _ := firstOf(f)
		if first <= seq {
			hit = f
		}
	}
	return hit
}

func firstOf(path string) (uint64, error) {
	return strconv.ParseUint(strings.TrimSuffix(filepath.Base(path), segSuffix), 10, 64)
}

func TestSegmentsAppendVerifyReopen(t *testing.T) {
	key := testKey(t, 3)
	pub := key.Public().(ed25519.PublicKey)
	dir := filepath.Join(t.TempDir(), "bridge.db.audit")
	var syncs atomic.Int64
	s := openTestSegs(t, dir, SegmentOptions{Syncs: &syncs})
	appendN(t, s, 40, Options{Signer: key, SignEvery: 10})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(segFiles(t, dir)); n < 3 {
		t.Fatalf("%d segments, want several at %d bytes each", n, smallSegments)
	}
	s = openTestSegs(t, dir, SegmentOptions{})
	appendN(t, s, 15, Options{Signer: key, SignEvery: 10}) // reopen verifies, continues
	rep := mustVerify(t, s, pub)
	if !rep.OK() || rep.First != 1 || rep.Last != 55 {
		t.Fatalf("report %+v (break %v)", rep, rep.Break)
	}
	cps, err := s.Checkpoints(context.Background())
	if err != nil || len(cps) == 0 {
		t.Fatalf("checkpoints %d %v", len(cps), err)
	}
	for i := 1; i < len(cps); i++ {
		if cps[i].Seq <= cps[i-1].Seq {
			t.Fatalf("checkpoints out of order at %d", i)
		}
	}
	got, err := Get(context.Background(), s, 23)
	if err != nil || got.Tool != "tool_0023" {
		t.Fatalf("Get 23: %+v %v", got.Tool, err)
	}
	s.Close()
}

func TestSegmentsConcurrentAppendsGapFree(t *testing.T) {
	for name, s := range map[string]Store{"mem": NewMemStore(), "segments": openTestSegs(t, t.TempDir(), SegmentOptions{})} {
		t.Run(name, func(t *testing.T) { concurrentGapFree(t, s) })
	}
}

func concurrentGapFree(t *testing.T, s Store) {
	defer s.Close()
	l, err := Open(s, Options{Now: testClock(), Signer: testKey(t, 4)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	seen := make([]atomic.Bool, 16*40+1)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				seq, err := l.Append(context.Background(), sampleRecord(w*100+i))
				if err != nil {
					t.Error(err)
					return
				}
				if seq < uint64(len(seen)) {
					seen[seq].Store(true)
				}
			}
		}()
	}
	wg.Wait()
	l.Close()
	rep := mustVerify(t, s, testKey(t, 4).Public().(ed25519.PublicKey))
	if !rep.OK() || rep.Records != 640 {
		t.Fatalf("report %+v (break %v)", rep, rep.Break)
	}
}

func TestSegmentsDurabilityOSSkipsTheSync(t *testing.T) {
	var syncs atomic.Int64
	s := openTestSegs(t, t.TempDir(), SegmentOptions{Durability: DurabilityOS, SegmentSize: 1 << 20, Syncs: &syncs})
	l, err := Open(s, Options{Now: testClock()})
	if err != nil {
		t.Fatal(err)
	}
	before := syncs.Load()
	for i := range 20 {
		if _, err := l.Append(context.Background(), sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := syncs.Load() - before; n != 0 {
		t.Fatalf("durability os issued %d syncs for 20 records", n)
	}
	l.Close()
	if err := s.Close(); err != nil || syncs.Load() != before+1 {
		t.Fatalf("close: %v, %d syncs (want one at close)", err, syncs.Load()-before)
	}

	var gsyncs atomic.Int64
	g := openTestSegs(t, t.TempDir(), SegmentOptions{SegmentSize: 1 << 20, Syncs: &gsyncs})
	defer g.Close()
	l, _ = Open(g, Options{Now: testClock(), MaxLinger: -1})
	before = gsyncs.Load()
	for i := range 20 {
		l.Append(context.Background(), sampleRecord(i))
	}
	l.Close()
	if n := gsyncs.Load() - before; n != 20 {
		t.Fatalf("durability group: %d syncs for 20 sequential records, want 20", n)
	}
}

func TestSegmentsUnknownDurability(t *testing.T) {
	if _, err := OpenSegments(t.TempDir(), SegmentOptions{Durability: "fast"}); err == nil || !strings.Contains(err.Error(), `"fast"`) {
		t.Fatalf("got %v", err)
	}
}

func TestSegmentsReadOnlyWaitsForTheWriter(t *testing.T) {
	dir := t.TempDir()
	w := openTestSegs(t, dir, SegmentOptions{})
	_, err := OpenSegments(dir, SegmentOptions{ReadOnly: true, Timeout: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("read-only open beside a writer: %v", err)
	}
	w.Close()
	r, err := OpenSegments(dir, SegmentOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := OpenSegments(filepath.Join(dir, "absent"), SegmentOptions{ReadOnly: true}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("absent dir read-only: %v", err)
	}
}

// TestSegmentsTornTailIsCutAndKept writes half of a commit after the last
// whole one, as a crash during a write leaves it: the log opens without
// it, the next append saves it aside and clears it, and the log verifies.
func TestSegmentsTornTailIsCutAndKept(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t, 5)
	s := openTestSegs(t, dir, SegmentOptions{SegmentSize: 1 << 20})
	appendN(t, s, 10, Options{Signer: key})
	s.Close()
	files := segFiles(t, dir)
	last := files[len(files)-1]
	data, _ := os.ReadFile(last)
	offs := frameOffsets(data)
	end := offs[len(offs)-1]
	fh, _, _ := parseFrameHeader(data[end:])
	end += frameHeaderSize + int(fh.length)
	rec := sampleRecord(99)
	rec.Seq = 11
	enc, _ := EncodeRecord(rec)
	torn := appendFrame(nil, frameRecord, 11, true, enc)
	copy(data[end:], torn[:len(torn)/2])
	os.WriteFile(last, data, 0o600)

	s = openTestSegs(t, dir, SegmentOptions{SegmentSize: 1 << 20})
	if r, ok, err := s.Last(context.Background()); err != nil || !ok || r.Seq != 10 {
		t.Fatalf("last after a torn commit: %d %v %v", r.Seq, ok, err)
	}
	appendN(t, s, 5, Options{Signer: key})
	if rep := mustVerify(t, s, key.Public().(ed25519.PublicKey)); !rep.OK() || rep.Last != 15 {
		t.Fatalf("after repair %+v (break %v)", rep, rep.Break)
	}
	s.Close()
	kept, _ := filepath.Glob(last + ".torn-*")
	if len(kept) != 1 {
		t.Fatalf("torn bytes kept in %v", kept)
	}
	if b, _ := os.ReadFile(kept[0]); len(b) != len(torn)/2 {
		t.Fatalf("kept %d torn bytes, want %d", len(b), len(torn)/2)
	}
	// And it stays whole across another reopen.
	s = openTestSegs(t, dir, SegmentOptions{SegmentSize: 1 << 20})
	defer s.Close()
	if rep := mustVerify(t, s, key.Public().(ed25519.PublicKey)); !rep.OK() || rep.Last != 15 {
		t.Fatalf("reopened %+v (break %v)", rep, rep.Break)
	}
}

func TestSegmentsPruneDeletesWholeSegments(t *testing.T) {
	key := testKey(t, 6)
	pub := key.Public().(ed25519.PublicKey)
	dir := t.TempDir()
	s := openTestSegs(t, dir, SegmentOptions{})
	clock := testClock()
	l, err := Open(s, Options{Now: clock, Signer: key, SignEvery: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var cut time.Time
	for i := 1; i <= 60; i++ {
		rec := sampleRecord(i)
		l.Append(ctx, rec)
		if i == 30 {
			cut = rec.Time.Add(time.Nanosecond)
		}
	}
	before := len(segFiles(t, dir))
	res, err := l.Prune(ctx, cut)
	if err != nil || res.Through != 30 {
		t.Fatalf("prune %+v %v", res, err)
	}
	first, _, _ := s.First(ctx)
	if n := len(segFiles(t, dir)); n >= before || first.Seq == 1 || first.Seq > 31 {
		t.Fatalf("after prune: %d segments (from %d), first record %d", n, before, first.Seq)
	}
	rep := mustVerify(t, s, pub)
	if !rep.OK() || rep.Anchor == nil || rep.Anchor.PrunedThrough != 30 {
		t.Fatalf("report after prune %+v (break %v)", rep, rep.Break)
	}
	// A second prune finishes what the first left in a shared segment.
	for i := 61; i <= 80; i++ {
		l.Append(ctx, sampleRecord(i))
	}
	if _, err := l.Prune(ctx, clock().Add(-5*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep := mustVerify(t, s, pub); !rep.OK() {
		t.Fatalf("after second prune: %v", rep.Break)
	}
	s.Close()
	// A restarted gateway accepts the pruned log.
	s = openTestSegs(t, dir, SegmentOptions{})
	defer s.Close()
	l, err = Open(s, Options{Now: clock, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// TestSegmentsDamageInsideTheNewestSegmentIsNotATornEnd changes a byte of a
// record with whole commits after it in the newest segment: that is damage,
// not a crash, so the records after it are not cut, verify names the
// record, and the store refuses to write over them.
func TestSegmentsDamageInsideTheNewestSegmentIsNotATornEnd(t *testing.T) {
	dir := t.TempDir()
	s := openTestSegs(t, dir, SegmentOptions{SegmentSize: 1 << 20})
	appendN(t, s, 20, Options{})
	s.Close()
	editFrame(t, dir, 7, false, func(p []byte) { p[len(p)/2] ^= 1 })
	s = openTestSegs(t, dir, SegmentOptions{SegmentSize: 1 << 20})
	defer s.Close()
	wantBreak(t, mustVerify(t, s, nil), 7, BreakCorrupt)
	err := s.Append(context.Background(), []Record{{Seq: 7, Kind: KindRequest}}, nil)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "record 7") {
		t.Fatalf("append over damage: %v", err)
	}
	if kept, _ := filepath.Glob(filepath.Join(dir, "*.torn-*")); len(kept) != 0 {
		t.Fatalf("damage was treated as a torn end: %v", kept)
	}
}
