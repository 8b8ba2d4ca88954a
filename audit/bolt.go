package audit

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Layout of the audit data inside a bbolt file:
//
//	audit/              top-level bucket
//	  format            key, value "1"
//	  records/          bucket: 8-byte big-endian seq → stored record (see Record)
//	  checkpoints/      bucket: 8-byte big-endian seq → JSON Checkpoint
const (
	bucketAudit       = "audit"
	bucketRecords     = "records"
	bucketCheckpoints = "checkpoints"
	keyFormat         = "format"
	formatVersion     = "1"
	deleteChunk       = 10000
)

// BoltOptions tune [OpenBolt].
type BoltOptions struct {
	// ReadOnly opens the file with a shared lock and never writes to it; an
	// absent file or one without an audit log is an error. Use it for CLI
	// readers. A read-only open waits for a running gateway's exclusive lock.
	ReadOnly bool
	// Timeout bounds the wait for the file lock; 0 means 2s. A timeout is
	// reported as "locked by another process".
	Timeout time.Duration
	// Mode is the permission of a newly created file; 0 means 0600.
	Mode fs.FileMode
}

// BoltStore is the bbolt implementation of [Store]. It keeps its data in a
// bucket named "audit", so it can share a *bbolt.DB with other buckets.
type BoltStore struct {
	db     *bolt.DB
	ownsDB bool
	// readonly is true when db was opened read-only.
	readonly bool
}

// OpenBolt opens (or, unless opts.ReadOnly, creates) the bbolt file at path and
// returns a store that owns it. A file that exists but is empty, is not a
// bbolt database, or holds a malformed audit bucket is reported as an error
// wrapping ErrCorrupt and is never written to.
func OpenBolt(path string, opts BoltOptions) (*BoltStore, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Mode == 0 {
		opts.Mode = 0o600
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("audit: open %s: not a regular file", path)
	case err == nil && fi.Size() == 0:
		// bbolt would silently initialise an empty file; an audit log that
		// was wiped must not quietly start over.
		return nil, fmt.Errorf("%w: %s exists but is empty; move it away to start a new log", ErrCorrupt, path)
	case errors.Is(err, fs.ErrNotExist) && opts.ReadOnly:
		return nil, fmt.Errorf("audit: open %s: %w", path, fs.ErrNotExist)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	db, err := openBoltFile(path, opts)
	if err != nil {
		return nil, err
	}
	s, err := newBoltStore(db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.ownsDB = true
	return s, nil
}

func openBoltFile(path string, opts BoltOptions) (db *bolt.DB, err error) {
	defer func() {
		// bbolt panics on some kinds of page corruption.
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, p)
		}
	}()
	db, err = bolt.Open(path, opts.Mode, &bolt.Options{
		Timeout:      opts.Timeout,
		ReadOnly:     opts.ReadOnly,
		FreelistType: bolt.FreelistMapType,
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("audit: open %s: locked by another process (is the gateway running?)", path)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return nil, fmt.Errorf("%w: %s is not a readable bbolt database (%v); it was left untouched", ErrCorrupt, path, err)
	default:
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
}

// NewBoltStore returns a store that keeps its data in the "audit" bucket of
// db, creating it if db is writable. Close does not close db.
func NewBoltStore(db *bolt.DB) (*BoltStore, error) { return newBoltStore(db) }

func newBoltStore(db *bolt.DB) (*BoltStore, error) {
	s := &BoltStore{db: db, readonly: db.IsReadOnly()}
	check := func(tx *bolt.Tx) error {
		a := tx.Bucket([]byte(bucketAudit))
		if a == nil {
			if tx.Cursor().Bucket().Get([]byte(bucketAudit)) != nil {
				return fmt.Errorf("%w: %q is a key, not a bucket", ErrCorrupt, bucketAudit)
			}
			return errNoBucket
		}
		if v := a.Get([]byte(keyFormat)); string(v) != formatVersion {
			return fmt.Errorf("%w: unsupported audit format %q", ErrCorrupt, v)
		}
		if a.Bucket([]byte(bucketRecords)) == nil || a.Bucket([]byte(bucketCheckpoints)) == nil {
			return fmt.Errorf("%w: audit bucket is missing its sub-buckets", ErrCorrupt)
		}
		return nil
	}
	err := safeView(db, check)
	if errors.Is(err, errNoBucket) {
		if s.readonly {
			return nil, fmt.Errorf("%w: the database holds no audit log", ErrNotFound)
		}
		err = safeUpdate(db, func(tx *bolt.Tx) error {
			a, err := tx.CreateBucket([]byte(bucketAudit))
			if err != nil {
				return fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			if err := a.Put([]byte(keyFormat), []byte(formatVersion)); err != nil {
				return err
			}
			if _, err := a.CreateBucket([]byte(bucketRecords)); err != nil {
				return err
			}
			_, err = a.CreateBucket([]byte(bucketCheckpoints))
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

var errNoBucket = errors.New("no audit bucket")

// DB returns the underlying bbolt database.
func (s *BoltStore) DB() *bolt.DB { return s.db }

func safeView(db *bolt.DB, fn func(*bolt.Tx) error) (err error) {
	defer recoverCorrupt(&err)
	return db.View(fn)
}

func safeUpdate(db *bolt.DB, fn func(*bolt.Tx) error) (err error) {
	defer recoverCorrupt(&err)
	return db.Update(fn)
}

func recoverCorrupt(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: %v", ErrCorrupt, p)
	}
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func buckets(tx *bolt.Tx) (recs, cps *bolt.Bucket, err error) {
	a := tx.Bucket([]byte(bucketAudit))
	if a == nil {
		return nil, nil, fmt.Errorf("%w: audit bucket vanished", ErrCorrupt)
	}
	recs, cps = a.Bucket([]byte(bucketRecords)), a.Bucket([]byte(bucketCheckpoints))
	if recs == nil || cps == nil {
		return nil, nil, fmt.Errorf("%w: audit sub-buckets vanished", ErrCorrupt)
	}
	return recs, cps, nil
}

// Append implements Store: one bbolt transaction, one commit (fsync).
func (s *BoltStore) Append(ctx context.Context, recs []Record, cps []Checkpoint) error {
	if s.readonly {
		return errors.New("audit: store is read-only")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Encode outside the write lock.
	vals := make([][]byte, len(recs))
	for i := range recs {
		v := recs[i].enc
		if v == nil {
			var err error
			if v, err = EncodeRecord(&recs[i]); err != nil {
				return err
			}
		}
		vals[i] = v
	}
	cpVals := make([][]byte, len(cps))
	for i := range cps {
		var err error
		if cpVals[i], err = json.Marshal(&cps[i]); err != nil {
			return err
		}
	}
	return safeUpdate(s.db, func(tx *bolt.Tx) error {
		rb, cb, err := buckets(tx)
		if err != nil {
			return err
		}
		next := uint64(1)
		if k, _ := rb.Cursor().Last(); k != nil {
			next = binary.BigEndian.Uint64(k) + 1
		}
		rb.FillPercent = 0.95 // append-only: pack pages full
		for i := range recs {
			if recs[i].Seq != next+uint64(i) {
				return fmt.Errorf("%w: got seq %d, want %d", ErrConflict, recs[i].Seq, next+uint64(i))
			}
			if err := rb.Put(seqKey(recs[i].Seq), vals[i]); err != nil {
				return err
			}
		}
		cb.FillPercent = 0.95
		for i := range cps {
			if err := cb.Put(seqKey(cps[i].Seq), cpVals[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// keySeq decodes a record or checkpoint key; a malformed key gives 0.
func keySeq(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

func decodeStored(k, v []byte) (Record, error) {
	if len(k) != 8 {
		return Record{}, &CorruptRecordError{Err: fmt.Errorf("bad key %x", k)}
	}
	seq := binary.BigEndian.Uint64(k)
	r, err := DecodeRecord(v)
	if err != nil {
		return Record{}, &CorruptRecordError{Seq: seq, Err: err}
	}
	if r.Seq != seq {
		return Record{}, &CorruptRecordError{Seq: seq, Err: fmt.Errorf("stored under seq %d but claims seq %d", seq, r.Seq)}
	}
	return r, nil
}

// rangeChunk bounds how many records one read transaction decodes, so a long
// scan does not pin old pages for its whole duration.
const rangeChunk = 4096

// Range implements Store. It reads in chunks of short read transactions, so
// a long scan neither blocks nor is blocked by appends.
func (s *BoltStore) Range(ctx context.Context, from, to uint64, fn func(Record) error) error {
	if from == 0 {
		from = 1
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var batch []Record
		var done bool
		err := safeView(s.db, func(tx *bolt.Tx) error {
			rb, _, err := buckets(tx)
			if err != nil {
				return err
			}
			c := rb.Cursor()
			k, v := c.Seek(seqKey(from))
			for ; k != nil && len(batch) < rangeChunk; k, v = c.Next() {
				if to != 0 && len(k) == 8 && binary.BigEndian.Uint64(k) > to {
					break
				}
				r, err := decodeStored(k, v)
				if err != nil {
					return err // batch holds what precedes it
				}
				batch = append(batch, r)
			}
			done = k == nil || len(batch) < rangeChunk || (to != 0 && len(k) == 8 && binary.BigEndian.Uint64(k) > to)
			return nil
		})
		for _, r := range batch {
			if ferr := fn(r); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return err
		}
		if done || len(batch) == 0 {
			return nil
		}
		from = batch[len(batch)-1].Seq + 1
	}
}

func (s *BoltStore) edge(last bool) (rec Record, ok bool, err error) {
	err = safeView(s.db, func(tx *bolt.Tx) error {
		rb, _, err := buckets(tx)
		if err != nil {
			return err
		}
		var k, v []byte
		if last {
			k, v = rb.Cursor().Last()
		} else {
			k, v = rb.Cursor().First()
		}
		if k == nil {
			return nil
		}
		rec, err = decodeStored(k, v)
		ok = err == nil
		return err
	})
	return rec, ok, err
}

// First implements Store.
func (s *BoltStore) First(ctx context.Context) (Record, bool, error) { return s.edge(false) }

// Last implements Store.
func (s *BoltStore) Last(ctx context.Context) (Record, bool, error) { return s.edge(true) }

// Checkpoints implements Store.
func (s *BoltStore) Checkpoints(ctx context.Context) ([]Checkpoint, error) {
	var out []Checkpoint
	err := safeView(s.db, func(tx *bolt.Tx) error {
		_, cb, err := buckets(tx)
		if err != nil {
			return err
		}
		return cb.ForEach(func(k, v []byte) error {
			var cp Checkpoint
			if err := json.Unmarshal(v, &cp); err != nil || cp.Seq != keySeq(k) {
				// Keep it, emptied: Verify reports it as not checking out.
				cp = Checkpoint{Seq: keySeq(k)}
			}
			out = append(out, cp)
			return nil
		})
	})
	return out, err
}

// DeleteRange implements Store, deleting at most 10,000 records per
// transaction.
func (s *BoltStore) DeleteRange(ctx context.Context, from, to uint64) error {
	if s.readonly {
		return errors.New("audit: store is read-only")
	}
	first := max(from, 1) - 1
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var more bool
		err := safeUpdate(s.db, func(tx *bolt.Tx) error {
			rb, cb, err := buckets(tx)
			if err != nil {
				return err
			}
			n := 0
			c := rb.Cursor()
			for k, _ := c.Seek(seqKey(from)); k != nil && keySeq(k) <= to; k, _ = c.Seek(seqKey(from)) {
				if n == deleteChunk {
					more = true
					return nil
				}
				if err := rb.Delete(k); err != nil {
					return err
				}
				from = keySeq(k) + 1
				n++
			}
			cc := cb.Cursor()
			for k, _ := cc.Seek(seqKey(first)); k != nil && keySeq(k) < to; k, _ = cc.Seek(seqKey(first)) {
				if err := cb.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || !more {
			return err
		}
	}
}

// Close implements Store; it closes the bbolt database only if OpenBolt
// opened it.
func (s *BoltStore) Close() error {
	if s.ownsDB {
		return s.db.Close()
	}
	return nil
}
