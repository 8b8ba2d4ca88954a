package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sort"
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
	// Heads are checkpoints kept outside the store (for example the last one
	// the gateway published), checked like stored ones. They catch an attacker
	// who truncates the log and deletes the checkpoints in it.
	Heads []Checkpoint
	// RequireSigned fails verification when records after the last valid
	// signed checkpoint exist (use it on a log whose gateway shut down
	// cleanly, or on an export).
	RequireSigned bool
}

// Verify walks the whole chain in s, from seq 1 or from the retention anchor,
// and checks every hash, every link and (with pub) every signed checkpoint.
// It returns an error only when s cannot be read; a broken log is a report
// with a non-nil Break naming the first broken seq.
func Verify(ctx context.Context, s Store, pub ed25519.PublicKey) (*VerifyReport, error) {
	var opts VerifyOptions
	if pub != nil {
		opts.PublicKeys = []ed25519.PublicKey{pub}
	}
	return VerifyWith(ctx, s, opts)
}

// VerifyWith is [Verify] with options.
func VerifyWith(ctx context.Context, s Store, opts VerifyOptions) (*VerifyReport, error) {
	rep := &VerifyReport{Signed: len(opts.PublicKeys) > 0}
	note := func(seq uint64, reason BreakReason, format string, args ...any) {
		if rep.Break == nil || seq < rep.Break.Seq {
			rep.Break = &Break{Seq: seq, Reason: reason, Detail: fmt.Sprintf(format, args...)}
		}
	}

	stored, err := s.Checkpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: read checkpoints: %w", err)
	}
	cps := append(stored, opts.Heads...)
	sort.SliceStable(cps, func(i, j int) bool { return cps[i].Seq < cps[j].Seq })
	rep.Checkpoints = len(cps)
	// trusted[i] is whether cps[i] may be relied on (signature verified, or
	// no keys given).
	trusted := make([]bool, len(cps))
	bySeq := make(map[uint64][]int, len(cps))
	for i, cp := range cps {
		bySeq[cp.Seq] = append(bySeq[cp.Seq], i)
		if !rep.Signed {
			trusted[i] = true
			continue
		}
		var lastErr error
		for _, pub := range opts.PublicKeys {
			if lastErr = cp.VerifySignature(pub); lastErr == nil {
				break
			}
		}
		if lastErr != nil {
			note(cp.Seq, BreakSignature, "checkpoint at seq %d: %v", cp.Seq, lastErr)
			continue
		}
		trusted[i] = true
	}

	var (
		prev     Record
		started  bool
		anchor   *Anchor
		stopWalk = errors.New("stop")
	)
	err = s.Range(ctx, 1, 0, func(r Record) error {
		if !started {
			started, rep.First = true, r.Seq
		} else if r.Seq != prev.Seq+1 {
			if r.Seq <= prev.Seq {
				note(r.Seq, BreakChain, "record %d follows record %d (out of order)", r.Seq, prev.Seq)
			} else if r.Seq == prev.Seq+2 {
				note(prev.Seq+1, BreakMissing, "record %d is missing (deleted)", prev.Seq+1)
			} else {
				note(prev.Seq+1, BreakMissing, "records %d to %d are missing (deleted)", prev.Seq+1, r.Seq-1)
			}
			return stopWalk
		}
		if h, err := r.ComputeHash(); err != nil || h != r.Hash {
			note(r.Seq, BreakEdited, "record %d does not match its hash (edited)", r.Seq)
			return stopWalk
		}
		if rep.Records > 0 && r.PrevHash != prev.Hash {
			note(r.Seq, BreakChain, "record %d's prev_hash does not match record %d (a record was deleted, replaced or inserted)", r.Seq, prev.Seq)
			return stopWalk
		}
		if r.Kind == KindAnchor {
			a := r.Anchor
			if a == nil || a.PrunedThrough >= r.Seq || a.PrunedFrom > a.PrunedThrough {
				note(r.Seq, BreakChain, "record %d is an invalid anchor", r.Seq)
				return stopWalk
			}
			if anchor == nil || a.PrunedThrough > anchor.PrunedThrough {
				anchor = a
			}
		}
		for _, i := range bySeq[r.Seq] {
			if cps[i].Hash != r.Hash {
				if trusted[i] {
					note(r.Seq, BreakCheckpoint, "the checkpoint at seq %d does not match the record (the chain was rewritten up to here)", r.Seq)
				}
			} else if trusted[i] && rep.Signed {
				rep.SignedThrough = max(rep.SignedThrough, r.Seq)
			}
		}
		prev = r
		rep.Records++
		rep.Last = r.Seq
		return nil
	})
	var cre *CorruptRecordError
	switch {
	case errors.As(err, &cre):
		seq := cre.Seq
		if seq == 0 {
			seq = prev.Seq + 1
		}
		note(seq, BreakCorrupt, "%v", cre.Err)
	case err != nil && !errors.Is(err, stopWalk):
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	walkedAll := err == nil

	// Where the chain starts.
	if started && rep.First > 1 {
		switch {
		case anchor == nil || anchor.PrunedThrough+1 < rep.First:
			note(rep.First, BreakUnanchored, "the log starts at seq %d and no anchor accounts for the records before it (deleted)", rep.First)
		case anchor.PrunedThrough+1 == rep.First:
			a := *anchor
			rep.Anchor = &a
			if first, err := recordAt(ctx, s, rep.First); err == nil && first.PrevHash != anchor.PrunedHash {
				note(rep.First, BreakChain, "record %d does not continue the pruned chain its anchor describes", rep.First)
			}
		default:
			// A prune that has not finished deleting: the records it will
			// delete must still end with the hash the anchor states.
			a := *anchor
			rep.Anchor = &a
			if r, err := recordAt(ctx, s, anchor.PrunedThrough); err == nil && r.Hash != anchor.PrunedHash {
				note(anchor.PrunedThrough, BreakChain, "record %d does not match the hash its anchor states", anchor.PrunedThrough)
			}
		}
	}
	for i, cp := range cps {
		if !trusted[i] {
			continue
		}
		switch {
		case started && cp.Seq < rep.First:
			if anchor != nil && cp.Seq == anchor.PrunedThrough && cp.Hash != anchor.PrunedHash {
				note(rep.First, BreakCheckpoint, "the checkpoint at pruned seq %d does not match the anchor", cp.Seq)
			}
		case walkedAll && cp.Seq > rep.Last:
			note(rep.Last+1, BreakTruncated, "a checkpoint covers seq %d but the log ends at seq %d (truncated)", cp.Seq, rep.Last)
		}
	}
	if opts.RequireSigned && walkedAll && rep.Last > rep.SignedThrough {
		from := max(rep.SignedThrough+1, rep.First)
		note(from, BreakUnsigned, "records %d to %d are not covered by a valid signed checkpoint", from, rep.Last)
	}
	return rep, nil
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
