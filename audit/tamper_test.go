package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// tamper opens the closed bbolt file at path as an attacker would, with
// bbolt itself, and runs fn on the audit records and checkpoints buckets.
func tamper(t *testing.T, path string, fn func(recs, cps *bolt.Bucket) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		a := tx.Bucket([]byte("audit"))
		return fn(a.Bucket([]byte("records")), a.Bucket([]byte("checkpoints")))
	}); err != nil {
		t.Fatal(err)
	}
}

// makeLog writes n records (signed if key is set) to a new bbolt file and
// returns its path, closed.
func makeLog(t *testing.T, n int, key ed25519.PrivateKey) string {
	t.Helper()
	path := tempDB(t)
	s := openTestBolt(t, path)
	appendN(t, s, n, Options{Signer: key, SignEvery: 10})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func verifyFile(t *testing.T, path string, pub ed25519.PublicKey) *VerifyReport {
	t.Helper()
	s, err := OpenBolt(path, BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return mustVerify(t, s, pub)
}

func TestTamperEditByteInFile(t *testing.T) {
	path := makeLog(t, 30, nil)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Record 17's tool name is unique in the file; change one byte of it.
	marker := []byte(`"tool":"tool_0017"`)
	i := bytes.Index(data, marker)
	if i < 0 || bytes.Count(data, marker) != 1 {
		t.Fatalf("marker found %d times", bytes.Count(data, marker))
	}
	data[i+len(marker)-2] = '9' // tool_0017 → tool_0097
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	wantBreak(t, verifyFile(t, path, nil), 17, BreakEdited)
}

func TestTamperBreakJSONInFile(t *testing.T) {
	path := makeLog(t, 30, nil)
	data, _ := os.ReadFile(path)
	marker := []byte(`"tool":"tool_0005"`)
	i := bytes.Index(data, marker)
	data[i] = '{' // no longer valid JSON
	os.WriteFile(path, data, 0o600)
	wantBreak(t, verifyFile(t, path, nil), 5, BreakCorrupt)
}

func TestTamperDeleteRecord(t *testing.T) {
	path := makeLog(t, 30, nil)
	tamper(t, path, func(recs, _ *bolt.Bucket) error { return recs.Delete(seqKey(12)) })
	rep := verifyFile(t, path, nil)
	wantBreak(t, rep, 12, BreakMissing)
}

func TestTamperDeleteAndRenumber(t *testing.T) {
	// Delete record 12 and renumber the rest so no seq is missing: the
	// prev_hash link (or the hash over seq) breaks at 12.
	path := makeLog(t, 30, nil)
	tamper(t, path, func(recs, _ *bolt.Bucket) error {
		for seq := uint64(12); seq < 30; seq++ {
			r, err := DecodeRecord(recs.Get(seqKey(seq + 1)))
			if err != nil {
				return err
			}
			r.Seq = seq
			r.Hash, _ = r.ComputeHash() // a careful attacker rehashes
			v, _ := EncodeRecord(&r)
			if err := recs.Put(seqKey(seq), v); err != nil {
				return err
			}
		}
		return recs.Delete(seqKey(30))
	})
	wantBreak(t, verifyFile(t, path, nil), 12, BreakChain)
}

func TestTamperSwapRecords(t *testing.T) {
	path := makeLog(t, 30, nil)
	tamper(t, path, func(recs, _ *bolt.Bucket) error {
		a := bytes.Clone(recs.Get(seqKey(8)))
		b := bytes.Clone(recs.Get(seqKey(9)))
		if err := recs.Put(seqKey(8), b); err != nil {
			return err
		}
		return recs.Put(seqKey(9), a)
	})
	wantBreak(t, verifyFile(t, path, nil), 8, BreakCorrupt)
}

func TestTamperSwapContentRehashed(t *testing.T) {
	// Swap the payloads of 8 and 9, keep seqs, rehash both: the links break.
	path := makeLog(t, 30, nil)
	tamper(t, path, func(recs, _ *bolt.Bucket) error {
		a, _ := DecodeRecord(recs.Get(seqKey(8)))
		b, _ := DecodeRecord(recs.Get(seqKey(9)))
		a.Tool, b.Tool = b.Tool, a.Tool
		for _, r := range []*Record{&a, &b} {
			r.Hash, _ = r.ComputeHash()
			v, _ := EncodeRecord(r)
			recs.Put(seqKey(r.Seq), v)
		}
		return nil
	})
	wantBreak(t, verifyFile(t, path, nil), 9, BreakChain)
}

func TestTamperInsertRecord(t *testing.T) {
	path := makeLog(t, 30, nil)
	tamper(t, path, func(recs, _ *bolt.Bucket) error {
		// Overwrite 20 with a forged record chained onto 19.
		prev, _ := DecodeRecord(recs.Get(seqKey(19)))
		forged := *sampleRecord(999)
		forged.Seq, forged.Time, forged.PrevHash = 20, prev.Time, prev.Hash
		forged.Hash, _ = forged.ComputeHash()
		v, _ := EncodeRecord(&forged)
		return recs.Put(seqKey(20), v)
	})
	wantBreak(t, verifyFile(t, path, nil), 21, BreakChain)
}

func TestTamperTruncateEnd(t *testing.T) {
	key := testKey(t, 3)
	pub := key.Public().(ed25519.PublicKey)
	path := makeLog(t, 30, key) // checkpoints at 10, 20, 30
	tamper(t, path, func(recs, _ *bolt.Bucket) error {
		for seq := uint64(26); seq <= 30; seq++ {
			if err := recs.Delete(seqKey(seq)); err != nil {
				return err
			}
		}
		return nil
	})
	wantBreak(t, verifyFile(t, path, pub), 26, BreakTruncated)

	// Deleting the checkpoints too hides the truncation from the store alone,
	// but not from a head kept outside it, and not under RequireSigned.
	var head Checkpoint
	tamper(t, path, func(_, cps *bolt.Bucket) error {
		cp, _ := decodeCheckpoint(cps.Get(seqKey(30)))
		head = cp
		return cps.Delete(seqKey(30))
	})
	s, _ := OpenBolt(path, BoltOptions{ReadOnly: true})
	defer s.Close()
	ctx := context.Background()
	rep, _ := VerifyWith(ctx, s, VerifyOptions{PublicKeys: []ed25519.PublicKey{pub}})
	// Record 25 carries the signed head of 1..24; only 25 itself is
	// unsigned, within the signer's max_gap, as a crash would leave it.
	if !rep.OK() || rep.SignedThrough != 24 {
		t.Fatalf("report %+v", rep)
	}
	rep, _ = VerifyWith(ctx, s, VerifyOptions{PublicKeys: []ed25519.PublicKey{pub}, Heads: []Checkpoint{head}})
	wantBreak(t, rep, 26, BreakTruncated)
	rep, _ = VerifyWith(ctx, s, VerifyOptions{PublicKeys: []ed25519.PublicKey{pub}, RequireSigned: true})
	wantBreak(t, rep, 25, BreakUnsigned)
}

func TestTamperRewrittenChainFailsSignedHead(t *testing.T) {
	key := testKey(t, 4)
	pub := key.Public().(ed25519.PublicKey)
	path := makeLog(t, 30, key)
	// Rewrite record 25 and rehash everything after it consistently: the
	// chain itself verifies, only the signed head at 30 exposes it.
	tamper(t, path, func(recs, _ *bolt.Bucket) error {
		prevHash := ""
		for seq := uint64(25); seq <= 30; seq++ {
			r, _ := DecodeRecord(recs.Get(seqKey(seq)))
			if seq == 25 {
				r.Tool = "innocent"
			} else {
				r.PrevHash = prevHash
			}
			r.Hash, _ = r.ComputeHash()
			prevHash = r.Hash
			v, _ := EncodeRecord(&r)
			recs.Put(seqKey(seq), v)
		}
		return nil
	})
	// Every commit signs the log before it, so the first rewritten record
	// is named, not the next checkpoint. Without the key the signed heads
	// are still checked for consistency.
	wantBreak(t, verifyFile(t, path, nil), 25, BreakCheckpoint)
	wantBreak(t, verifyFile(t, path, pub), 25, BreakCheckpoint)
}

func TestTamperForgedCheckpoint(t *testing.T) {
	key := testKey(t, 5)
	pub := key.Public().(ed25519.PublicKey)
	path := makeLog(t, 30, key)
	tamper(t, path, func(_, cps *bolt.Bucket) error {
		cp, _ := decodeCheckpoint(cps.Get(seqKey(20)))
		cp.Hash = "00" + cp.Hash[2:]
		v, _ := encodeCheckpoint(cp)
		return cps.Put(seqKey(20), v)
	})
	wantBreak(t, verifyFile(t, path, pub), 20, BreakSignature)

	// A checkpoint signed by another key does not count either.
	other := testKey(t, 6)
	path = makeLog(t, 30, other)
	wantBreak(t, verifyFile(t, path, pub), 1, BreakSignature)
}
