package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzSegmentOpen writes arbitrary bytes after a valid segment header and
// opens the log: open never fails or panics on damage, and reading either
// yields consecutive records or stops with a *CorruptRecordError.
func FuzzSegmentOpen(f *testing.F) {
	var seed []byte
	for i := 1; i <= 3; i++ {
		r := sampleRecord(i)
		r.Seq = uint64(i)
		enc, _ := EncodeRecord(r)
		seed = appendFrame(seed, frameRecord, uint64(i), i != 2, enc)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add(append(append([]byte{}, seed...), seed...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := t.TempDir()
		data := append(segHeader(1), body...)
		if err := os.WriteFile(filepath.Join(dir, segName(1)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "LOCK"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenSegments(dir, SegmentOptions{ReadOnly: true})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer s.Close()
		next := uint64(1)
		err = s.Range(context.Background(), 1, 0, func(r Record) error {
			if r.Seq != next {
				t.Fatalf("record %d where %d belongs", r.Seq, next)
			}
			next++
			return nil
		})
		var cre *CorruptRecordError
		if err != nil && !errors.As(err, &cre) {
			t.Fatalf("range: %v", err)
		}
		if _, err := s.Checkpoints(context.Background()); err != nil {
			t.Fatalf("checkpoints: %v", err)
		}
	})
}
