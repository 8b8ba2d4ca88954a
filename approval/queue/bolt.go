package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Layout of the approval data inside a bbolt file:
//
//	approvals/          top-level bucket
//	  format            key, value "1"
//	  requests/         bucket: id → JSON Request
//	  calls/            bucket: sha256(call) ‖ created (8-byte big-endian
//	                    Unix nanoseconds) ‖ id → empty; the index behind
//	                    FindForCall
const (
	bucketApprovals = "approvals"
	bucketRequests  = "requests"
	bucketCalls     = "calls"
	keyFormat       = "format"
	formatVersion   = "1"
)

// BoltStore is the bbolt implementation of [Store]. It keeps its data in
// the bucket "approvals", so it can share a *bbolt.DB with other buckets
// (the gateway keeps its audit log in the same file).
type BoltStore struct {
	db     *bolt.DB
	ownsDB bool
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
// the bucket if needed. Close does not close db.
func NewBoltStore(db *bolt.DB) (*BoltStore, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		top, err := tx.CreateBucketIfNotExists([]byte(bucketApprovals))
		if err != nil {
			return err
		}
		switch v := top.Get([]byte(keyFormat)); {
		case v == nil:
			if err := top.Put([]byte(keyFormat), []byte(formatVersion)); err != nil {
				return err
			}
		case string(v) != formatVersion:
			return fmt.Errorf("approval store: unknown format %q (written by a newer bridge?)", v)
		}
		for _, name := range []string{bucketRequests, bucketCalls} {
			if _, err := top.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("approval store: %w", err)
	}
	return &BoltStore{db: db}, nil
}

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
		return reqs.Put([]byte(id), nv)
	})
	if err != nil {
		return nil, err
	}
	return next, nil
}
