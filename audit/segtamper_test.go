package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// segAttackLog is a signed segment log with a file witness, closed.
type segAttackLog struct {
	dir, heads string
	key        ed25519.PrivateKey
	pub        ed25519.PublicKey
}

func newSegAttackLog(t *testing.T, n int) *segAttackLog {
	t.Helper()
	base := t.TempDir()
	a := &segAttackLog{dir: filepath.Join(base, "bridge.db.audit"), heads: filepath.Join(base, "heads.jsonl"), key: testKey(t, 43)}
	a.pub = a.key.Public().(ed25519.PublicKey)
	s := openTestSegs(t, a.dir, SegmentOptions{})
	appendN(t, s, n, Options{Signer: a.key, SignEvery: 10, Witnesses: []Witness{NewFileWitness(a.heads)}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *segAttackLog) verify(t *testing.T) *VerifyReport {
	t.Helper()
	s, err := OpenSegments(a.dir, SegmentOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := NewFileWitness(a.heads).Latest()
	if err != nil || h == nil {
		t.Fatalf("witness: %v %v", h, err)
	}
	rep, err := VerifyWith(context.Background(), s, VerifyOptions{PublicKeys: []ed25519.PublicKey{a.pub}, Heads: []Checkpoint{*h}})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func (a *segAttackLog) reopen(t *testing.T) error {
	t.Helper()
	s := openTestSegs(t, a.dir, SegmentOptions{})
	defer s.Close()
	h, _ := NewFileWitness(a.heads).Latest()
	l, err := Open(s, Options{Signer: a.key, Heads: []Checkpoint{*h}, Witnesses: []Witness{NewFileWitness(a.heads)}})
	if err == nil {
		l.Close()
	}
	return err
}

// editFrame changes the file holding record seq: fn edits the frame's
// payload in place; fix recomputes the frame's CRC.
func editFrame(t *testing.T, dir string, seq uint64, fix bool, fn func(payload []byte)) {
	t.Helper()
	path := segFileOf(t, dir, seq)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range frameOffsets(data) {
		fh, _, _ := parseFrameHeader(data[off:])
		if fh.kind == frameRecord && fh.seq == seq {
			fn(data[off+frameHeaderSize : off+frameHeaderSize+int(fh.length)])
			if fix {
				refreshCRC(data, off)
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("record %d not found in %s", seq, path)
}

// cutFile truncates a segment file inside the frame of record seq.
func cutInside(t *testing.T, dir string, seq uint64) {
	t.Helper()
	path := segFileOf(t, dir, seq)
	data, _ := os.ReadFile(path)
	for _, off := range frameOffsets(data) {
		if fh, _, _ := parseFrameHeader(data[off:]); fh.kind == frameRecord && fh.seq == seq {
			if err := os.Truncate(path, int64(off+frameHeaderSize+5)); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("record %d not found", seq)
}

// firstSeqs returns the first record seq of each segment.
func firstSeqs(t *testing.T, dir string) []uint64 {
	var out []uint64
	for _, f := range segFiles(t, dir) {
		n, err := firstOf(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// TestSegmentTamperNamesTheRecord edits, cuts and removes segment files
// and checks that verify (with the witness's head) names the first record
// that is not what was written, and that a restarted gateway refuses the
// log and signs nothing.
func TestSegmentTamperNamesTheRecord(t *testing.T) {
	const n = 60
	cases := []struct {
		name   string
		attack func(t *testing.T, dir string) uint64 // returns the seq to be named
		reason BreakReason
		// also is another reason that is right too.
		also BreakReason
	}{
		{"a changed byte (CRC left as it was)", func(t *testing.T, dir string) uint64 {
			editFrame(t, dir, 17, false, func(p []byte) { p[bytes.Index(p, []byte("tool_0017"))+8] = '9' })
			return 17
		}, BreakCorrupt, ""},
		{"a changed byte with the CRC recomputed", func(t *testing.T, dir string) uint64 {
			editFrame(t, dir, 17, true, func(p []byte) { p[bytes.Index(p, []byte("tool_0017"))+8] = '9' })
			return 17
		}, BreakEdited, ""},
		{"an older segment cut short inside a record", func(t *testing.T, dir string) uint64 {
			s := firstSeqs(t, dir)
			cutInside(t, dir, s[2]-2)
			return s[2] - 2
		}, BreakCorrupt, ""},
		{"the newest records cut off", func(t *testing.T, dir string) uint64 {
			// Corrupt if the close's checkpoint started a segment after
			// the one cut, truncated if that one is the newest.
			cutInside(t, dir, n-1)
			return n - 1
		}, BreakTruncated, BreakCorrupt},
		{"a segment in the middle removed", func(t *testing.T, dir string) uint64 {
			s := firstSeqs(t, dir)
			os.Remove(filepath.Join(dir, segName(s[2])))
			return s[2]
		}, BreakMissing, ""},
		{"the oldest segment removed", func(t *testing.T, dir string) uint64 {
			// Named as verify names a deleted prefix: the first record left,
			// which no retention anchor accounts for.
			s := firstSeqs(t, dir)
			os.Remove(filepath.Join(dir, segName(s[0])))
			return s[1]
		}, BreakUnanchored, ""},
		{"the newest segment removed", func(t *testing.T, dir string) uint64 {
			s := firstSeqs(t, dir)
			os.Remove(filepath.Join(dir, segName(s[len(s)-1])))
			return s[len(s)-1]
		}, BreakTruncated, ""},
		{"a segment renamed to another first record", func(t *testing.T, dir string) uint64 {
			s := firstSeqs(t, dir)
			os.Rename(filepath.Join(dir, segName(s[1])), filepath.Join(dir, segName(s[1]+1)))
			return s[1]
		}, BreakCorrupt, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newSegAttackLog(t, n)
			if rep := a.verify(t); !rep.OK() || rep.Last != n {
				t.Fatalf("before the attack: %+v %v", rep, rep.Break)
			}
			if len(segFiles(t, a.dir)) < 4 {
				t.Fatal("the log needs several segments for this test")
			}
			seq := tc.attack(t, a.dir)
			rep := a.verify(t)
			if tc.also != "" && rep.Break != nil && rep.Break.Reason == tc.also {
				tc.reason = tc.also
			}
			wantBreak(t, rep, seq, tc.reason)
			before, _ := os.ReadFile(a.heads)
			err := a.reopen(t)
			var be *BrokenError
			if !errors.As(err, &be) || be.Break.Seq != seq {
				t.Fatalf("reopen: %v, want a BrokenError at %d", err, seq)
			}
			if after, _ := os.ReadFile(a.heads); !bytes.Equal(before, after) {
				t.Error("the refused log signed a head to the witness")
			}
		})
	}
}
