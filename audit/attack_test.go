package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// attackLog is a signed log in a bbolt file with a file witness, as the
// gateway writes it, closed.
type attackLog struct {
	path, heads string
	key         ed25519.PrivateKey
	pub         ed25519.PublicKey
}

func newAttackLog(t *testing.T, n int) *attackLog {
	t.Helper()
	dir := t.TempDir()
	a := &attackLog{path: filepath.Join(dir, "bridge.db"), heads: filepath.Join(dir, "heads.jsonl"), key: testKey(t, 42)}
	a.pub = a.key.Public().(ed25519.PublicKey)
	s := openTestBolt(t, a.path)
	appendN(t, s, n, Options{Signer: a.key, SignEvery: 10, Witnesses: []Witness{NewFileWitness(a.heads)}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return a
}

// witnessHead is the witness file's latest head.
func (a *attackLog) witnessHead(t *testing.T) Checkpoint {
	t.Helper()
	h, err := NewFileWitness(a.heads).Latest()
	if err != nil || h == nil {
		t.Fatalf("witness: %v %v", h, err)
	}
	return *h
}

// verify checks the file against the key and the witness's head.
func (a *attackLog) verify(t *testing.T) *VerifyReport {
	t.Helper()
	s, err := OpenBolt(a.path, BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rep, err := VerifyWith(context.Background(), s, VerifyOptions{PublicKeys: []ed25519.PublicKey{a.pub}, Heads: []Checkpoint{a.witnessHead(t)}})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// reopen opens the tampered file as a restarted gateway does.
func (a *attackLog) reopen(t *testing.T) error {
	t.Helper()
	s := openTestBolt(t, a.path)
	defer s.Close()
	l, err := Open(s, Options{Signer: a.key, Heads: []Checkpoint{a.witnessHead(t)}, Witnesses: []Witness{NewFileWitness(a.heads)}})
	if err == nil {
		l.Close()
	}
	return err
}

// rehashFrom re-chains records from seq on after fn edits them, as a
// careful attacker without the key would.
func rehashFrom(recs *bolt.Bucket, from uint64, fn func(r *Record)) error {
	prev, _ := DecodeRecord(recs.Get(seqKey(from - 1)))
	c := recs.Cursor()
	for k, v := c.Seek(seqKey(from)); k != nil; k, v = c.Next() {
		r, err := DecodeRecord(v)
		if err != nil {
			return err
		}
		fn(&r)
		r.PrevHash = prev.Hash
		r.Hash, _ = r.ComputeHash()
		b, _ := EncodeRecord(&r)
		if err := recs.Put(k, b); err != nil {
			return err
		}
		prev = r
	}
	return nil
}

func TestAttacksFailVerifyNamingTheRecord(t *testing.T) {
	cases := []struct {
		name   string
		attack func(t *testing.T, a *attackLog)
		seq    uint64
		reason BreakReason
	}{
		{"rewrite a tool and re-hash the chain", func(t *testing.T, a *attackLog) {
			tamper(t, a.path, func(recs, _ *bolt.Bucket) error {
				return rehashFrom(recs, 17, func(r *Record) {
					if r.Seq == 17 {
						r.Tool = "echo"
					}
				})
			})
		}, 17, BreakCheckpoint},
		{"delete a record and re-hash the chain", func(t *testing.T, a *attackLog) {
			tamper(t, a.path, func(recs, _ *bolt.Bucket) error {
				for seq := uint64(12); seq < 30; seq++ {
					r, _ := DecodeRecord(recs.Get(seqKey(seq + 1)))
					r.Seq = seq
					b, _ := EncodeRecord(&r)
					recs.Put(seqKey(seq), b)
				}
				recs.Delete(seqKey(30))
				return rehashFrom(recs, 12, func(*Record) {})
			})
		}, 12, BreakChain},
		{"delete a record, strip the signatures after it, re-hash", func(t *testing.T, a *attackLog) {
			tamper(t, a.path, func(recs, cps *bolt.Bucket) error {
				for seq := uint64(12); seq < 30; seq++ {
					r, _ := DecodeRecord(recs.Get(seqKey(seq + 1)))
					r.Seq, r.Signed = seq, nil
					b, _ := EncodeRecord(&r)
					recs.Put(seqKey(seq), b)
				}
				recs.Delete(seqKey(30))
				cps.Delete(seqKey(20))
				cps.Delete(seqKey(30))
				return rehashFrom(recs, 12, func(*Record) {})
			})
			// The head in record 11 covers 1..10; 11 itself was vouched for
			// only by the deleted record 12, so 11 is the first unproven.
		}, 11, BreakTruncated},
		{"truncate the newest records and their checkpoints", func(t *testing.T, a *attackLog) {
			tamper(t, a.path, func(recs, cps *bolt.Bucket) error {
				for seq := uint64(26); seq <= 30; seq++ {
					recs.Delete(seqKey(seq))
				}
				return cps.Delete(seqKey(30))
			})
		}, 26, BreakTruncated},
		{"empty the log", func(t *testing.T, a *attackLog) {
			tamper(t, a.path, func(recs, cps *bolt.Bucket) error {
				for seq := uint64(0); seq <= 30; seq++ {
					recs.Delete(seqKey(seq))
					cps.Delete(seqKey(seq))
				}
				return nil
			})
		}, 1, BreakTruncated},
		{"replace the oldest records by a forged retention anchor", func(t *testing.T, a *attackLog) {
			tamper(t, a.path, func(recs, cps *bolt.Bucket) error {
				r10, _ := DecodeRecord(recs.Get(seqKey(10)))
				for seq := uint64(0); seq <= 10; seq++ {
					recs.Delete(seqKey(seq))
					cps.Delete(seqKey(seq))
				}
				forged := Checkpoint{Seq: 10, Hash: r10.Hash, Root: r10.Hash, Time: r10.Time, KeyID: KeyID(a.pub), Signature: "AAAA", Frontier: []string{r10.Hash, r10.Hash}}
				b, _ := encodeCheckpoint(forged)
				return cps.Put(seqKey(10), b)
			})
		}, 10, BreakSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAttackLog(t, 30)
			if rep := a.verify(t); !rep.OK() {
				t.Fatalf("before the attack: %v", rep.Break)
			}
			tc.attack(t, a)
			wantBreak(t, a.verify(t), tc.seq, tc.reason)
			// A gateway restarted over the tampered file refuses it and
			// signs nothing.
			before, _ := os.ReadFile(a.heads)
			err := a.reopen(t)
			var be *BrokenError
			if !errors.As(err, &be) || be.Break.Seq != tc.seq {
				t.Fatalf("reopen: %v, want a BrokenError at %d", err, tc.seq)
			}
			if after, _ := os.ReadFile(a.heads); !bytes.Equal(before, after) {
				t.Error("the refused log signed a head to the witness")
			}
		})
	}
}

func TestRollBackToAnOlderCopyIsDetected(t *testing.T) {
	a := newAttackLog(t, 20)
	old, _ := os.ReadFile(a.path)
	s := openTestBolt(t, a.path)
	appendN(t, s, 10, Options{Signer: a.key, SignEvery: 10, Witnesses: []Witness{NewFileWitness(a.heads)}})
	s.Close()
	if rep := a.verify(t); !rep.OK() || rep.Last != 30 {
		t.Fatalf("before: %+v", rep)
	}
	if err := os.WriteFile(a.path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	wantBreak(t, a.verify(t), 21, BreakTruncated)
	if err := a.reopen(t); err == nil {
		t.Fatal("the gateway reopened a rolled-back log")
	}
}

func TestIdleLogStillSigns(t *testing.T) {
	ticks := make(chan time.Time)
	var mu sync.Mutex
	now := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	dir := t.TempDir()
	w := NewFileWitness(filepath.Join(dir, "heads.jsonl"))
	s := NewMemStore()
	key := testKey(t, 9)
	l, err := Open(s, Options{Signer: key, Now: clock, SignInterval: time.Minute, Witnesses: []Witness{w},
		NewTicker: func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} }})
	if err != nil {
		t.Fatal(err)
	}
	l.Append(context.Background(), sampleRecord(1))
	for i := 0; i < 3; i++ {
		mu.Lock()
		now = now.Add(time.Minute)
		at := now
		mu.Unlock()
		ticks <- at
	}
	l.Close()
	head, err := w.Latest()
	if err != nil || head == nil || head.Seq != 1 || !head.Time.Equal(now) {
		t.Fatalf("latest witness head %+v %v, want seq 1 at %v", head, err, now)
	}
	heads, _ := os.ReadFile(filepath.Join(dir, "heads.jsonl"))
	got, err := ParseHeads(bytes.NewReader(heads))
	// genesis, three idle ticks and the close
	if err != nil || len(got) != 5 {
		t.Fatalf("witness holds %d heads (%v), want 5", len(got), err)
	}
	// A record stamped long after the last signature shows as a gap.
	if rep := mustVerify(t, s, key.Public().(ed25519.PublicKey)); !rep.OK() {
		t.Fatalf("%v", rep.Break)
	}
}

func TestUnsignedRecordsBeyondTheCadenceFail(t *testing.T) {
	key := testKey(t, 10)
	s := NewMemStore()
	appendN(t, s, 5, Options{Signer: key, MaxBatch: 2})
	// Strip every signature: only the genesis head is left.
	s.mu.Lock()
	for i := range s.recs {
		s.recs[i].Signed = nil
	}
	s.cps = s.cps[:1]
	s.mu.Unlock()
	prev := ""
	for i := range s.recs {
		s.recs[i].PrevHash = prev
		s.recs[i].Hash, _ = s.recs[i].ComputeHash()
		prev = s.recs[i].Hash
	}
	wantBreak(t, mustVerify(t, s, key.Public().(ed25519.PublicKey)), 1, BreakUnsigned)
}

func FuzzParseHeads(f *testing.F) {
	cp := signHead(testKey(f, 1), headTerms{maxGap: 4}, 3, "ab", LeafHashForTest(), time.Unix(0, 0))
	b, _ := encodeCheckpoint(cp)
	f.Add(b)
	f.Add([]byte(`{"seq":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		heads, err := ParseHeads(bytes.NewReader(data))
		if err == nil && len(heads) == 0 {
			t.Fatal("no error and no head")
		}
	})
}
