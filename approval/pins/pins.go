// Package pins remembers a fingerprint of each upstream tool's definition
// (name, description, input schema) the first time the gateway sees it. A
// later change — a "rug pull", where a server swaps a harmless tool for a
// hostile one under the same name — is reported, and the tool is marked
// changed until an admin accepts the new definition.
package pins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
)

var bucket = []byte("tool_pins")

// Pin is what the gateway remembers of one tool.
type Pin struct {
	Server string `json:"server"`
	Tool   string `json:"tool"`
	// Fingerprint is the accepted definition's digest.
	Fingerprint string    `json:"fingerprint"`
	FirstSeen   time.Time `json:"first_seen"`
	// Changed is the digest of a newer definition nobody accepted yet.
	Changed   string    `json:"changed,omitempty"`
	ChangedAt time.Time `json:"changed_at,omitzero"`
	// Description is the latest description seen, for reviewers.
	Description string    `json:"description,omitempty"`
	AcceptedBy  string    `json:"accepted_by,omitempty"`
	AcceptedAt  time.Time `json:"accepted_at,omitzero"`
}

// Store keeps pins in a bbolt database shared with the gateway's other data.
type Store struct {
	db  *bolt.DB
	now func() time.Time
}

// Open returns a pin store over db.
func Open(db *bolt.DB, now func() time.Time) (*Store, error) {
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}, nil
}

// Tool is the part of a tools/list entry that is pinned.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"inputSchema"`
}

// Fingerprint is the SHA-256 of the tool's canonical definition.
func Fingerprint(t Tool) string {
	schema, err := policy.CanonicalJSON(t.InputSchema)
	if err != nil {
		schema = t.InputSchema
	}
	b, _ := json.Marshal(struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		InputSchema json.RawMessage `json:"inputSchema,omitempty"`
	}{t.Name, t.Description, schema})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func key(server, tool string) []byte { return []byte(server + "\x00" + tool) }

// Observe records the definitions a server listed. It returns the pins
// whose definition changed for the first time in this call.
func (s *Store) Observe(ctx context.Context, server string, tools []Tool) ([]Pin, error) {
	var changed []Pin
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for _, t := range tools {
			fp := Fingerprint(t)
			k := key(server, t.Name)
			var p Pin
			if v := b.Get(k); v != nil {
				if err := json.Unmarshal(v, &p); err != nil {
					return fmt.Errorf("pin %s/%s is corrupt: %w", server, t.Name, err)
				}
				if p.Fingerprint == fp || p.Changed == fp {
					continue
				}
				p.Changed, p.ChangedAt, p.Description = fp, s.now().UTC(), t.Description
				changed = append(changed, p)
			} else {
				p = Pin{Server: server, Tool: t.Name, Fingerprint: fp, FirstSeen: s.now().UTC(), Description: t.Description}
			}
			v, err := json.Marshal(p)
			if err != nil {
				return err
			}
			if err := b.Put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	return changed, err
}

// ErrNotFound means no pin exists for the tool.
var ErrNotFound = errors.New("no pin for that tool")

// Get returns the pin of a tool.
func (s *Store) Get(ctx context.Context, server, tool string) (*Pin, error) {
	var p *Pin
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get(key(server, tool))
		if v == nil {
			return ErrNotFound
		}
		p = &Pin{}
		return json.Unmarshal(v, p)
	})
	return p, err
}

// List returns every pin, changed ones first.
func (s *Store) List(ctx context.Context) ([]Pin, error) {
	var out []Pin
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(_, v []byte) error {
			var p Pin
			if err := json.Unmarshal(v, &p); err != nil {
				return err
			}
			out = append(out, p)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Changed != "") != (out[j].Changed != "") {
			return out[i].Changed != ""
		}
		if out[i].Server != out[j].Server {
			return out[i].Server < out[j].Server
		}
		return out[i].Tool < out[j].Tool
	})
	return out, err
}

// Accept makes a tool's changed definition the accepted one.
func (s *Store) Accept(ctx context.Context, server, tool, by string) (*Pin, error) {
	var p Pin
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		v := b.Get(key(server, tool))
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, &p); err != nil {
			return err
		}
		if p.Changed == "" {
			return fmt.Errorf("%s/%s has no changed definition to accept", server, tool)
		}
		p.Fingerprint, p.Changed, p.ChangedAt = p.Changed, "", time.Time{}
		p.AcceptedBy, p.AcceptedAt = by, s.now().UTC()
		nv, err := json.Marshal(p)
		if err != nil {
			return err
		}
		return b.Put(key(server, tool), nv)
	})
	if err != nil {
		return nil, err
	}
	return &p, nil
}
