package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// MoveFromBolt copies the records and checkpoints of a log kept in the
// bbolt store from (as gateways before the segment log kept it) into to,
// byte for byte, so hashes, signatures and the Merkle tree carry over. It
// copies only what to lacks, so a move interrupted by a crash resumes at the
// next start; a to that already holds more than from, or other records, is
// left alone. It returns the number of records copied. The bbolt bucket is
// not changed.
func MoveFromBolt(ctx context.Context, from *BoltStore, to *SegmentStore) (int, error) {
	last, ok, err := from.Last(ctx)
	if err != nil || !ok {
		return 0, err
	}
	have, haveOK, err := to.Last(ctx)
	if err != nil {
		return 0, err
	}
	if haveOK && have.Seq >= last.Seq {
		return 0, nil
	}
	first, _, err := from.First(ctx)
	if err != nil {
		return 0, err
	}
	start := first.Seq
	if haveOK {
		start = have.Seq + 1
	}
	cps, err := from.Checkpoints(ctx)
	if err != nil {
		return 0, err
	}
	copied := 0
	for start <= last.Seq {
		recs, err := from.rawRange(start, min(start+1023, last.Seq))
		if err != nil {
			return copied, err
		}
		if len(recs) == 0 {
			return copied, fmt.Errorf("%w: bbolt holds no record %d to move", ErrCorrupt, start)
		}
		end := recs[len(recs)-1].Seq
		var batch []Checkpoint
		for _, cp := range cps {
			if cp.Seq <= end && (cp.Seq+1 >= start || (!haveOK && copied == 0)) {
				batch = append(batch, cp)
			}
		}
		if err := to.Append(ctx, recs, batch); err != nil {
			return copied, fmt.Errorf("audit: move records %d to %d into the segment log: %w", start, end, err)
		}
		copied += len(recs)
		start = end + 1
	}
	return copied, nil
}

// rawRange reads records from..to keeping their stored bytes.
func (s *BoltStore) rawRange(from, to uint64) ([]Record, error) {
	var out []Record
	err := safeView(s.db, func(tx *bolt.Tx) error {
		rb, _, err := buckets(tx)
		if err != nil {
			return err
		}
		c := rb.Cursor()
		for k, v := c.Seek(seqKey(from)); k != nil && binary.BigEndian.Uint64(k) <= to; k, v = c.Next() {
			r, err := decodeStored(k, v)
			if err != nil {
				return err
			}
			r.enc = append([]byte(nil), v...)
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// OpenReader opens the audit log of the gateway data file dbPath for
// reading: the segment log beside it ([SegmentDir]) when there is one, else
// the bbolt file itself (a log written before the segment log). It waits up
// to timeout (0: 2s) for a running gateway's lock.
func OpenReader(dbPath string, timeout time.Duration) (Store, error) {
	dir := SegmentDir(dbPath)
	if _, err := os.Stat(dir); err == nil {
		s, err := OpenSegments(dir, SegmentOptions{ReadOnly: true, Timeout: timeout})
		if err != nil {
			return nil, err
		}
		return s, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("audit: open %s: %w", dir, err)
	}
	return OpenBolt(dbPath, BoltOptions{ReadOnly: true, Timeout: timeout})
}
