package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/seed-3f9f6f16/bridge/audit/merkle"
)

// BreakReason says how the chain is broken.
type BreakReason string

// Reasons a [Break] can give.
const (
	// BreakEdited: the record's content does not match its hash.
	BreakEdited BreakReason = "edited"
	// BreakCorrupt: the stored record cannot be decoded, or claims a seq other
	// than the one it is stored under (records swapped).
	BreakCorrupt BreakReason = "corrupt"
	// BreakChain: the record's prev_hash is not the previous record's hash: a
	// record before it was deleted, replaced, reordered or inserted.
	BreakChain BreakReason = "chain"
	// BreakMissing: one or more seqs are missing before this one.
	BreakMissing BreakReason = "missing"
	// BreakUnanchored: the log starts after seq 1 and no retention anchor
	// accounts for the records before it.
	BreakUnanchored BreakReason = "unanchored"
	// BreakTruncated: a valid checkpoint covers records that are not there.
	BreakTruncated BreakReason = "truncated"
	// BreakSignature: a checkpoint's signature does not verify.
	BreakSignature BreakReason = "bad_signature"
	// BreakCheckpoint: a checkpoint names a hash the record at its seq does
	// not have: the chain was rewritten up to that point.
	BreakCheckpoint BreakReason = "checkpoint_mismatch"
	// BreakUnsigned: VerifyOptions.RequireSigned is set and records after this
	// seq are not covered by a valid signed checkpoint.
	BreakUnsigned BreakReason = "unsigned"
)

// Break is the first place where the log fails verification.
type Break struct {
	Seq    uint64      `json:"seq"`
	Reason BreakReason `json:"reason"`
	Detail string      `json:"detail"`
}

func (b *Break) Error() string {
	return fmt.Sprintf("audit: chain broken at seq %d (%s): %s", b.Seq, b.Reason, b.Detail)
}

// VerifyReport is the outcome of [Verify].
type VerifyReport struct {
	Records uint64 `json:"records"` // records walked
	First   uint64 `json:"first"`   // first seq walked
	Last    uint64 `json:"last"`    // last seq walked
	// Anchor is the retention anchor the chain starts from, if it was pruned.
	Anchor *Anchor `json:"anchor,omitempty"`
	// Checkpoints is the number of checkpoints examined.
	Checkpoints int `json:"checkpoints"`
	// Signed is true when public keys were given, so checkpoints were
	// authenticated; otherwise they are only checked for consistency.
	Signed bool `json:"signed"`
	// SignedThrough is the highest seq covered by a checkpoint whose signature
	// verified and whose hash matched (0 if none).
	SignedThrough uint64 `json:"signed_through"`
	// Root is the Merkle root of the records walked (hex).
	Root string `json:"root,omitempty"`
	// Break is the first problem found, nil if the log verified.
	Break *Break `json:"break,omitempty"`
}

// OK reports whether the log verified.
func (r *VerifyReport) OK() bool { return r.Break == nil }

// Err returns r.Break as an error, or nil if the log verified.
func (r *VerifyReport) Err() error {
	if r.Break == nil {
		return nil
	}
	return r.Break
}

// VerifyOptions configure [VerifyWith].
type VerifyOptions struct {
	// PublicKeys authenticate checkpoints (any one may have signed each). With
	// none, checkpoints are checked for consistency only.
	PublicKeys []ed25519.PublicKey
	// Heads are signed heads kept outside the store (a witness's, or the
	// last one an auditor saw), checked like stored ones: the log must be a
	// continuation of each. They catch an attacker who truncates, rolls back
	// or empties the log and deletes the checkpoints in it.
	Heads []Checkpoint
	// RequireSigned fails verification when records after the last valid
	// signed head exist (use it on a log whose gateway shut down cleanly).
	// Without it up to the signer's max_gap records may trail unsigned, as
	// a crash leaves them.
	RequireSigned bool
}

// Verify walks the whole log, from seq 1 or from the retention anchor, and
// checks every hash, every link, the Merkle root at every signed head and
// (with pub) every signature. It returns an error only when s cannot be
// read; a broken log is a report with a non-nil Break naming the first bad
// record.
func Verify(ctx context.Context, s Store, pub ed25519.PublicKey) (*VerifyReport, error) {
	var opts VerifyOptions
	if pub != nil {
		opts.PublicKeys = []ed25519.PublicKey{pub}
	}
	return VerifyWith(ctx, s, opts)
}

// VerifyWith is [Verify] with options.
func VerifyWith(ctx context.Context, s Store, opts VerifyOptions) (*VerifyReport, error) {
	rep, _, err := verifyLog(ctx, s, opts, false)
	return rep, err
}

// head is a signed head to check, and where it came from.
type head struct {
	cp      Checkpoint
	root    merkle.Hash
	trusted bool
	from    string // "stored", "witness" or "record N"
}

// verifier is the state of one verification walk.
type verifier struct {
	rep   *VerifyReport
	keys  []ed25519.PublicKey
	heads []head // stored and witness heads, by seq
	next  int    // index of the first head not yet compared
	tree  *merkle.Tree
	// good is the largest size up to which every signed head matched (the
	// proven prefix); last is the newest trusted head matched.
	good    uint64
	last    *Checkpoint
	anyHead bool
}

func (v *verifier) note(seq uint64, reason BreakReason, format string, args ...any) {
	seq = max(seq, 1)
	if v.rep.Break == nil || seq < v.rep.Break.Seq {
		v.rep.Break = &Break{Seq: seq, Reason: reason, Detail: fmt.Sprintf(format, args...)}
	}
}

// authentic reports whether cp's signature verifies (always, without keys).
func (v *verifier) authentic(cp Checkpoint) error {
	if len(v.keys) == 0 {
		return nil
	}
	var err error
	for _, pub := range v.keys {
		if err = cp.VerifySignature(pub); err == nil {
			return nil
		}
	}
	return err
}

// matched records that a trusted head at the tree's size matched.
func (v *verifier) matched(cp Checkpoint) bool {
	if v.last != nil && v.last.MaxGap > 0 && cp.Seq > v.good+v.last.MaxGap {
		v.note(v.good+1, BreakUnsigned, "records %d to %d went unsigned, beyond the signer's promise of a signature every %d records (signatures removed)", v.good+1, cp.Seq, v.last.MaxGap)
		return false
	}
	v.good = max(v.good, cp.Seq)
	if v.last == nil || cp.Time.After(v.last.Time) || cp.Seq > v.last.Seq {
		c := cp
		v.last = &c
	}
	v.anyHead = true
	return true
}

// compareHeads checks the stored and witness heads of the tree's size.
func (v *verifier) compareHeads() bool {
	size := v.tree.Size()
	ok := true
	for ; v.next < len(v.heads) && v.heads[v.next].cp.Seq <= size; v.next++ {
		h := v.heads[v.next]
		if h.cp.Seq < size || !h.trusted {
			continue
		}
		if h.root != v.tree.Root() {
			v.note(v.good+1, BreakCheckpoint, "records %d to %d do not match the %s signed head of record %d (rewritten)", v.good+1, size, h.from, size)
			return false
		}
		ok = v.matched(h.cp) && ok
	}
	return ok
}

// verifyLog is Verify, also returning the Merkle tree over the records
// walked. Strict (the log opening itself) makes the tree exact or nil.
func verifyLog(ctx context.Context, s Store, opts VerifyOptions, strict bool) (*VerifyReport, *merkle.Tree, error) {
	rep := &VerifyReport{Signed: len(opts.PublicKeys) > 0}
	v := &verifier{rep: rep, keys: opts.PublicKeys, tree: &merkle.Tree{}}

	stored, err := s.Checkpoints(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: verify: read checkpoints: %w", err)
	}
	add := func(cp Checkpoint, from string) {
		h := head{cp: cp, from: from}
		root, rerr := cp.RootHash()
		switch err := v.authentic(cp); {
		case rerr != nil:
			v.note(cp.Seq, BreakSignature, "the %s head of record %d has no valid root", from, cp.Seq)
		case err != nil:
			v.note(cp.Seq, BreakSignature, "the %s head of record %d: %v", from, cp.Seq, err)
		default:
			h.root, h.trusted = root, true
		}
		v.heads = append(v.heads, h)
	}
	for _, cp := range stored {
		add(cp, "stored")
	}
	for _, cp := range opts.Heads {
		add(cp, "witness")
	}
	sort.SliceStable(v.heads, func(i, j int) bool { return v.heads[i].cp.Seq < v.heads[j].cp.Seq })
	rep.Checkpoints = len(v.heads)

	first, ok, err := s.First(ctx)
	if err != nil {
		return v.corrupt(ctx, err)
	}
	last, _, err := s.Last(ctx)
	if err != nil {
		return v.corrupt(ctx, err)
	}
	start := uint64(1)
	prevHash := ""
	if ok {
		// Start from the newest trusted retention anchor that the stored
		// records reach, if there is one.
		var anchor *head
		for i := range v.heads {
			h := &v.heads[i]
			if h.trusted && h.cp.Frontier != nil && h.cp.Seq < last.Seq {
				anchor = h
			}
		}
		switch {
		case anchor != nil:
			t, err := frontierTree(anchor.cp)
			if err != nil {
				v.note(first.Seq, BreakUnanchored, "the retention anchor of records up to %d is not authentic: %v (forged)", anchor.cp.Seq, err)
				return rep, nil, nil
			}
			v.tree, start, prevHash = t, anchor.cp.Seq+1, anchor.cp.Hash
			v.good = anchor.cp.Seq
			v.matched(anchor.cp)
			rep.Anchor = &Anchor{PrunedThrough: anchor.cp.Seq, PrunedHash: anchor.cp.Hash, PrunedRoot: anchor.cp.Root}
			if anchor.cp.Seq >= first.Seq {
				// A prune that has not finished deleting: the records it will
				// delete must still end with the hash the anchor states.
				if r, err := recordAt(ctx, s, anchor.cp.Seq); err == nil && r.Hash != anchor.cp.Hash {
					v.note(anchor.cp.Seq, BreakChain, "record %d does not match the hash its anchor states", anchor.cp.Seq)
				}
			}
			for v.next < len(v.heads) && v.heads[v.next].cp.Seq <= anchor.cp.Seq {
				v.next++
			}
		case first.Seq > 1:
			v.note(first.Seq, BreakUnanchored, "the log starts at record %d and no authentic retention anchor accounts for the records before it (deleted)", first.Seq)
			return rep, nil, nil
		}
	}
	if start == 1 && !v.compareHeads() {
		return rep, nil, nil
	}

	var (
		prev     = Record{Seq: start - 1, Hash: prevHash}
		started  bool
		stopWalk = errors.New("stop")
	)
	err = s.Range(ctx, start, 0, func(r Record) error {
		if !started {
			started, rep.First = true, r.Seq
		}
		if r.Seq != prev.Seq+1 {
			if r.Seq == prev.Seq+2 {
				v.note(prev.Seq+1, BreakMissing, "record %d is missing (deleted)", prev.Seq+1)
			} else {
				v.note(prev.Seq+1, BreakMissing, "records %d to %d are missing (deleted)", prev.Seq+1, r.Seq-1)
			}
			return stopWalk
		}
		canonical, err := r.CanonicalBytes()
		if err != nil || hashHex(canonical) != r.Hash {
			v.note(r.Seq, BreakEdited, "record %d does not match its hash (edited)", r.Seq)
			return stopWalk
		}
		linked := r.PrevHash == prev.Hash
		if h := r.Signed; h != nil {
			if h.Seq != r.Seq-1 {
				v.note(r.Seq, BreakChain, "record %d carries the signed head of record %d: records were renumbered (one deleted or inserted here)", r.Seq, h.Seq)
				return stopWalk
			}
			if err := v.authentic(*h); err != nil {
				v.note(r.Seq, BreakSignature, "record %d's signature of the log before it does not verify: %v (forged)", r.Seq, err)
				return stopWalk
			}
			if h.Root != v.tree.Root().String() {
				if !linked {
					v.note(r.Seq-1, BreakChain, "record %d was rewritten: record %d's prev_hash and signature of the log before it no longer match it", r.Seq-1, r.Seq)
				} else {
					v.note(v.good+1, BreakCheckpoint, "records %d to %d do not match the signed head record %d carries (rewritten)", v.good+1, r.Seq-1, r.Seq)
				}
				return stopWalk
			}
			if !v.matched(*h) {
				return stopWalk
			}
		}
		if !linked {
			if r.Signed != nil {
				v.note(r.Seq, BreakChain, "record %d does not continue record %d, which its signature proves genuine (replaced or inserted)", r.Seq, r.Seq-1)
			} else {
				v.note(r.Seq, BreakChain, "record %d's prev_hash does not match record %d (a record was deleted, replaced or inserted here, or the one before it rewritten)", r.Seq, r.Seq-1)
			}
			return stopWalk
		}
		if v.last != nil && v.last.IntervalMS > 0 && r.Time.Sub(v.last.Time) > 2*v.last.Interval()+time.Second {
			v.note(r.Seq, BreakUnsigned, "record %d was written %s after the last signature, beyond the signer's promise of one every %s (signatures removed)",
				r.Seq, r.Time.Sub(v.last.Time).Round(time.Second), v.last.Interval())
			return stopWalk
		}
		if r.Kind == KindAnchor {
			a := r.Anchor
			if a == nil || a.PrunedThrough >= r.Seq || a.PrunedFrom > a.PrunedThrough {
				v.note(r.Seq, BreakChain, "record %d is an invalid anchor", r.Seq)
				return stopWalk
			}
			if rep.Anchor != nil && rep.Anchor.PrunedThrough == a.PrunedThrough {
				if a.PrunedHash != rep.Anchor.PrunedHash || (a.PrunedRoot != "" && a.PrunedRoot != rep.Anchor.PrunedRoot) {
					v.note(r.Seq, BreakChain, "anchor record %d does not match the signed retention anchor", r.Seq)
					return stopWalk
				}
				c := *a
				rep.Anchor = &c
			}
		}
		v.tree.Append(leafHash(canonical, r.Hash))
		prev = r
		rep.Records++
		rep.Last = r.Seq
		if !v.compareHeads() {
			return stopWalk
		}
		return nil
	})
	var cre *CorruptRecordError
	switch {
	case errors.As(err, &cre):
		seq := cre.Seq
		if seq == 0 {
			seq = prev.Seq + 1
		}
		v.note(seq, BreakCorrupt, "%v", cre.Err)
	case err != nil && !errors.Is(err, stopWalk):
		return nil, nil, fmt.Errorf("audit: verify: %w", err)
	}
	walkedAll := err == nil
	if !started {
		rep.First, rep.Last = start, start-1
	}
	if walkedAll {
		for _, h := range v.heads {
			if h.trusted && h.cp.Seq > rep.Last {
				if rep.Last > v.good+1 {
					// More than the last record is unproven: the first of them
					// is the first that may be bad.
					v.note(v.good+1, BreakTruncated, "a %s signed head covers record %d but the log ends at record %d, and no signature proves records %d to %d (truncated or rewritten)", h.from, h.cp.Seq, rep.Last, v.good+1, rep.Last)
				} else {
					v.note(rep.Last+1, BreakTruncated, "a %s signed head covers record %d but the log ends at record %d (truncated or rolled back)", h.from, h.cp.Seq, rep.Last)
				}
				break
			}
		}
		if rep.Signed {
			switch {
			case !v.anyHead && (rep.Records > 0 || start > 1):
				v.note(start, BreakUnsigned, "no signed head verifies with the key: a log the gateway writes is signed from its creation (signatures removed, or another key)")
			case v.last != nil && v.last.MaxGap > 0 && rep.Last > v.good+v.last.MaxGap:
				v.note(v.good+1, BreakUnsigned, "records %d to %d are not signed, beyond the signer's promise of a signature every %d records", v.good+1, rep.Last, v.last.MaxGap)
			case opts.RequireSigned && rep.Last > v.good:
				v.note(v.good+1, BreakUnsigned, "records %d to %d are not covered by a valid signed head", v.good+1, rep.Last)
			}
		}
	}
	if rep.Signed {
		rep.SignedThrough = v.good
	}
	rep.Root = v.tree.Root().String()
	if strict && (rep.Break != nil || !walkedAll) {
		return rep, nil, nil
	}
	return rep, v.tree, nil
}

// corrupt turns an error reading the edges of the store into a report.
func (v *verifier) corrupt(ctx context.Context, err error) (*VerifyReport, *merkle.Tree, error) {
	var cre *CorruptRecordError
	if errors.As(err, &cre) {
		v.note(cre.Seq, BreakCorrupt, "%v", cre.Err)
		return v.rep, nil, nil
	}
	return nil, nil, fmt.Errorf("audit: verify: %w", err)
}

// recordAt reads the record with seq from s.
func recordAt(ctx context.Context, s Store, seq uint64) (Record, error) {
	var out Record
	found := false
	err := s.Range(ctx, seq, seq, func(r Record) error {
		out, found = r, true
		return nil
	})
	if err != nil {
		return Record{}, err
	}
	if !found {
		return Record{}, fmt.Errorf("%w: record %d", ErrNotFound, seq)
	}
	return out, nil
}
