package queue

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
)

// Layout of the approval data inside a bbolt file:
//
//	approvals/          top-level bucket
//	  format            key, value "2"
//	  digest_key        key, 32 random bytes: the per-installation key of
//	                    the argument digests (policy.Digester), made once
//	  requests/         bucket: id → JSON Request
//	  calls/            bucket: hash(call) ‖ created (8-byte big-endian
//	                    Unix nanoseconds) ‖ id → empty; the index behind
//	                    FindForCall
//	  deadlines/        bucket: expires (8-byte big-endian Unix
//	                    nanoseconds) ‖ id → subject NUL state, for pending
//	                    and approved requests only; the index behind the
//	                    expiry sweep and the per-requester limit
//
// Format 1 (before digests were keyed) had no digest_key and no
// deadlines/, and its digests were plain SHA-256. Opening it migrates it
// once, in one transaction: see migrateV1.
const (
	bucketApprovals = "approvals"
	bucketRequests  = "requests"
	bucketCalls     = "calls"
	bucketDeadlines = "deadlines"
	keyFormat       = "format"
	keyDigestKey    = "digest_key"
	formatV1        = "1"
	formatVersion   = "2"
)

// BoltStore is the bbolt implementation of [Store]. It keeps its data in
// the bucket "approvals", so it can share a *bbolt.DB with other buckets
// (the gateway keeps its audit log in the same file).
type BoltStore struct {
	db     *bolt.DB
	ownsDB bool
	key    []byte
}

// OpenBolt opens (creating if needed, mode 0600) the bbolt file at path
// and returns a store that owns it: Close closes the file. It waits at
// most 2s for another process's lock.
func OpenBolt(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("approval store: open %s: locked by another process (is the gateway running?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("approval store: open %s: %w", path, err)
	}
	s, err := NewBoltStore(db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.ownsDB = true
	return s, nil
}

// NewBoltStore returns a store in the "approvals" bucket of db, creating
// the bucket and the argument digest key if needed, and migrating a
// format 1 store. Close does not close db.
func NewBoltStore(db *bolt.DB) (*BoltStore, error) {
	s := &BoltStore{db: db}
	err := db.Update(func(tx *bolt.Tx) error {
		top, err := tx.CreateBucketIfNotExists([]byte(bucketApprovals))
		if err != nil {
			return err
		}
		format := top.Get([]byte(keyFormat))
		switch {
		case format == nil && top.Bucket([]byte(bucketRequests)) != nil:
			return errors.New("approval store: the approvals bucket has requests but no format; refusing to guess")
		case format == nil, string(format) == formatV1, string(format) == formatVersion:
		default:
			return fmt.Errorf("approval store: unknown format %q (written by a newer bridge?)", format)
		}
		if k := top.Get([]byte(keyDigestKey)); k != nil {
			s.key = bytes.Clone(k)
		} else {
			s.key = make([]byte, policy.MinDigestKeyLen)
			if _, err := rand.Read(s.key); err != nil {
				return fmt.Errorf("making the argument digest key: %w", err)
			}
			if err := top.Put([]byte(keyDigestKey), s.key); err != nil {
				return err
			}
		}
		for _, name := range []string{bucketRequests, bucketCalls, bucketDeadlines} {
			if _, err := top.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		if string(format) == formatV1 {
			d, err := policy.NewDigester(s.key)
			if err != nil {
				return err
			}
			if err := migrateV1(top, d, time.Now().UTC()); err != nil {
				return fmt.Errorf("migrating from format 1: %w", err)
			}
		}
		return top.Put([]byte(keyFormat), []byte(formatVersion))
	})
	if err != nil {
		return nil, fmt.Errorf("approval store: %w", err)
	}
	return s, nil
}

// DigestKey returns the store's argument digest key. It is a secret: give
// it to policy.NewDigester, never to a log or a response.
func (s *BoltStore) DigestKey() []byte { return bytes.Clone(s.key) }

// Close closes the file if the store opened it.
func (s *BoltStore) Close() error {
	if s.ownsDB {
		return s.db.Close()
	}
	return nil
}

func buckets(tx *bolt.Tx) (reqs, calls *bolt.Bucket) {
	top := tx.Bucket([]byte(bucketApprovals))
	return top.Bucket([]byte(bucketRequests)), top.Bucket([]byte(bucketCalls))
}

func deadlines(tx *bolt.Tx) *bolt.Bucket {
	return tx.Bucket([]byte(bucketApprovals)).Bucket([]byte(bucketDeadlines))
}

// deadlineKey is the deadlines/ key of r.
func deadlineKey(r *Request) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(r.ID)), uint64(r.Expires.UnixNano()))
	return append(k, r.ID...)
}

// indexDeadline makes the deadlines/ entry of r agree with its state:
// present while r is pending or approved, absent otherwise.
func indexDeadline(tx *bolt.Tx, before, after *Request) error {
	b := deadlines(tx)
	if before != nil {
		if err := b.Delete(deadlineKey(before)); err != nil {
			return err
		}
	}
	if !isLive(after.State) {
		return nil
	}
	return b.Put(deadlineKey(after), []byte(after.Requester.Subject+"\x00"+string(after.State)))
}

// callIndexKey is the calls/ key of r.
func callIndexKey(r *Request) []byte {
	h := r.Call().hash()
	k := make([]byte, 0, len(h)+8+len(r.ID))
	k = append(k, h[:]...)
	k = binary.BigEndian.AppendUint64(k, uint64(r.Created.UnixNano()))
	return append(k, r.ID...)
}

func decode(id string, v []byte) (*Request, error) {
	var r Request
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("approval store: request %s is unreadable: %w", id, err)
	}
	return &r, nil
}

// Put implements Store.
func (s *BoltStore) Put(ctx context.Context, r *Request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		reqs, calls := buckets(tx)
		if reqs.Get([]byte(r.ID)) != nil {
			return ErrExists
		}
		if err := reqs.Put([]byte(r.ID), v); err != nil {
			return err
		}
		if err := indexDeadline(tx, nil, r); err != nil {
			return err
		}
		return calls.Put(callIndexKey(r), nil)
	})
}

// Get implements Store.
func (s *BoltStore) Get(ctx context.Context, id string) (*Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var r *Request
	err := s.db.View(func(tx *bolt.Tx) error {
		reqs, _ := buckets(tx)
		v := reqs.Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		var err error
		r, err = decode(id, v)
		return err
	})
	return r, err
}

// List implements Store. With f.Call set it reads only that call's
// requests through the index.
func (s *BoltStore) List(ctx context.Context, f Filter) ([]*Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*Request
	err := s.db.View(func(tx *bolt.Tx) error {
		reqs, calls := buckets(tx)
		add := func(id, v []byte) error {
			r, err := decode(string(id), v)
			if err != nil {
				return err
			}
			if f.match(r) {
				out = append(out, r)
			}
			return nil
		}
		if f.Call == nil {
			return reqs.ForEach(add)
		}
		h := f.Call.hash()
		c := calls.Cursor()
		for k, _ := c.Seek(h[:]); k != nil && bytes.HasPrefix(k, h[:]); k, _ = c.Next() {
			id := k[len(h)+8:]
			if v := reqs.Get(id); v != nil {
				if err := add(id, v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortOldestFirst(out)
	return out, nil
}

// Update implements Store.
func (s *BoltStore) Update(ctx context.Context, id string, fn func(*Request) error) (*Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var next *Request
	err := s.db.Update(func(tx *bolt.Tx) error {
		reqs, _ := buckets(tx)
		v := reqs.Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		cur, err := decode(id, v)
		if err != nil {
			return err
		}
		next = cur.Clone()
		if err := fn(next); err != nil {
			return err
		}
		if err := checkImmutable(cur, next); err != nil {
			return err
		}
		nv, err := json.Marshal(next)
		if err != nil {
			return err
		}
		if err := indexDeadline(tx, cur, next); err != nil {
			return err
		}
		return reqs.Put([]byte(id), nv)
	})
	if err != nil {
		return nil, err
	}
	return next, nil
}

// Live implements Store: a scan of deadlines/, stopping at the first
// entry due after dueBy.
func (s *BoltStore) Live(ctx context.Context, dueBy time.Time) ([]LiveEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []LiveEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		c := deadlines(tx).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) < 8 {
				return errors.New("approval store: corrupt deadline index")
			}
			exp := time.Unix(0, int64(binary.BigEndian.Uint64(k[:8]))).UTC()
			if !dueBy.IsZero() && exp.After(dueBy) {
				break
			}
			subject, state, ok := bytes.Cut(v, []byte{0})
			if !ok {
				return errors.New("approval store: corrupt deadline index")
			}
			out = append(out, LiveEntry{ID: string(k[8:]), Subject: string(subject), State: State(state), Expires: exp})
		}
		return nil
	})
	return out, err
}
