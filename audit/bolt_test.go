package audit

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestOpenBoltRejectsCorruptFileUntouched(t *testing.T) {
	cases := map[string][]byte{
		"text":      bytes.Repeat([]byte("this is not a bbolt database\n"), 400),
		"zeros":     make([]byte, 16384),
		"short":     []byte("x"),
		"empty":     {},
		"truncated": nil, // filled below: the first 100 bytes of a real log
	}
	real := makeLog(t, 5, nil)
	data, _ := os.ReadFile(real)
	cases["truncated"] = data[:100]
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bridge.db")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, ro := range []bool{false, true} {
				s, err := OpenBolt(path, BoltOptions{ReadOnly: ro})
				if err == nil {
					s.Close()
					t.Fatalf("read-only=%v: opened a corrupt file", ro)
				}
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
					t.Errorf("read-only=%v: error %q should wrap ErrCorrupt and name the file", ro, err)
				}
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, content) {
				t.Fatal("the corrupt file was modified")
			}
		})
	}
}

func TestOpenBoltForeignBuckets(t *testing.T) {
	path := tempDB(t)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket([]byte("audit"))
		return b.Put([]byte("format"), []byte("99"))
	})
	db.Close()
	if _, err := OpenBolt(path, BoltOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unknown format: %v, want ErrCorrupt", err)
	}
}

func TestOpenBoltReadOnly(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.db")
	if _, err := OpenBolt(missing, BoltOptions{ReadOnly: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("read-only open created the file")
	}

	// A database without an audit bucket.
	other := tempDB(t)
	db, _ := bolt.Open(other, 0o600, nil)
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("approvals")); return err })
	db.Close()
	if _, err := OpenBolt(other, BoltOptions{ReadOnly: true}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no audit bucket: %v", err)
	}

	path := makeLog(t, 3, nil)
	s, err := OpenBolt(path, BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Append(context.Background(), nil, nil); err == nil {
		t.Fatal("append on a read-only store succeeded")
	}
	if rep := mustVerify(t, s, nil); !rep.OK() || rep.Records != 3 {
		t.Fatalf("report %+v", rep)
	}
}

func TestOpenBoltLocked(t *testing.T) {
	path := tempDB(t)
	s := openTestBolt(t, path)
	defer s.Close()
	_, err := OpenBolt(path, BoltOptions{Timeout: 1}) // 1ns: fail at once
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second open: %v, want a lock error", err)
	}
}

func TestNewBoltStoreSharesDB(t *testing.T) {
	db, err := bolt.Open(tempDB(t), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("approvals")); return err })
	s, err := NewBoltStore(db)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 4, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close left the shared DB open.
	if err := db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("approvals")) == nil {
			return errors.New("approvals bucket gone")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s2, _ := NewBoltStore(db)
	if rep := mustVerify(t, s2, nil); !rep.OK() || rep.Records != 4 {
		t.Fatalf("report %+v", rep)
	}
}

func TestStoreRejectsChainConflict(t *testing.T) {
	for name, s := range map[string]Store{"bolt": openTestBolt(t, tempDB(t)), "mem": NewMemStore()} {
		t.Run(name, func(t *testing.T) {
			defer s.Close()
			err := s.Append(context.Background(), []Record{{Seq: 2, Kind: KindRequest}}, nil)
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("append at seq 2 of an empty store: %v", err)
			}
		})
	}
}

func TestRangeAcrossChunks(t *testing.T) {
	s := openTestBolt(t, tempDB(t))
	defer s.Close()
	recs := make([]Record, rangeChunk*2+10)
	for i := range recs {
		recs[i] = *sampleRecord(i)
	}
	fillStore(t, s, recs, testClock())
	var n, last uint64
	err := s.Range(context.Background(), 5, rangeChunk*2+3, func(r Record) error {
		if r.Seq != last+1 && last != 0 {
			t.Fatalf("seq %d after %d", r.Seq, last)
		}
		last = r.Seq
		n++
		return nil
	})
	if err != nil || n != rangeChunk*2-1 || last != rangeChunk*2+3 {
		t.Fatalf("range: n=%d last=%d err=%v", n, last, err)
	}
}
