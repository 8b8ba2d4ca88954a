// Package pins remembers a fingerprint of each upstream tool's definition
// the first time the gateway sees it: the whole tools/list entry as the
// strict decoding read it (name, title, description, inputSchema,
// outputSchema, annotations, _meta, icons and any member a later protocol
// adds), in canonical JSON. A later change — a "rug pull", where a server
// swaps a harmless tool for a hostile one under the same name, or quietly
// drops its readOnlyHint — is reported, and the tool is marked changed
// until an admin accepts the new definition.
//
// Pins made before fingerprints covered the whole definition (a bare hex
// digest of name, description and inputSchema) are upgraded in place the
// next time the tool is listed, and only if the definition still matches
// the old fingerprint; otherwise the tool is marked changed as before. What
// the old fingerprint never covered (annotations, outputSchema, title,
// _meta, icons) is taken as first seen at that listing.
package pins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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
	// UpgradedAt is when a pin made by an older bridge (over name,
	// description and inputSchema only) was re-pinned over the whole
	// definition, which then matched it in those members.
	UpgradedAt time.Time `json:"upgraded_at,omitzero"`
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

// Tool is one tools/list entry as the strict decoding read it.
type Tool struct {
	Name        string
	Description string
	// Definition is the whole entry, exactly as listed.
	Definition json.RawMessage
}

// FingerprintPrefix starts every fingerprint of a whole definition.
// Fingerprints without it were made by an older bridge.
const FingerprintPrefix = "sha256:"

// Fingerprint is "sha256:" and the SHA-256 of the canonical JSON of the
// tool's whole definition.
func Fingerprint(t Tool) string {
	c, err := policy.CanonicalJSON(t.Definition)
	if err != nil {
		c = t.Definition // unreachable for a Tool from ParseTools
	}
	sum := sha256.Sum256(c)
	return FingerprintPrefix + hex.EncodeToString(sum[:])
}

// legacyFingerprint is the fingerprint older bridges pinned: name,
// description and input schema only, bare hex. It is computed only to
// upgrade their pins.
func legacyFingerprint(t Tool) string {
	var def struct {
		InputSchema jsontext.Value `json:"inputSchema"`
	}
	_ = jsonv2.Unmarshal(t.Definition, &def)
	schema, err := policy.CanonicalJSON(def.InputSchema) // "{}" when absent, as it was
	if err != nil {
		schema = json.RawMessage(def.InputSchema)
	}
	b, _ := json.Marshal(struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		InputSchema json.RawMessage `json:"inputSchema,omitempty"`
	}{t.Name, t.Description, schema})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// isLegacy reports whether fp was made by an older bridge.
func isLegacy(fp string) bool { return fp != "" && !strings.HasPrefix(fp, FingerprintPrefix) }

// Unreadable is a tools/list entry the strict decoding could not read as a
// tool definition. The gateway withholds it: a definition it cannot read
// is a definition it cannot pin.
type Unreadable struct {
	// Index is the entry's position in the list.
	Index int
	// Name is the entry's name when it has a string one.
	Name string
	// Reason says what was wrong, naming no value.
	Reason string
}

// ParseTools reads the tools of a tools/list result strictly: members
// matched exactly, each known member type-checked (name a non-empty
// string; title and description strings; inputSchema, outputSchema,
// annotations and _meta objects; icons an array). It returns the entries
// it could read and those it could not; an error means the result itself
// is not an object with a "tools" array.
func ParseTools(result json.RawMessage) ([]Tool, []Unreadable, error) {
	var r struct {
		Tools []jsontext.Value `json:"tools"`
	}
	if err := jsonv2.Unmarshal(result, &r); err != nil {
		return nil, nil, errors.New(`the result is not an object with a "tools" array`)
	}
	var tools []Tool
	var bad []Unreadable
	for i, raw := range r.Tools {
		t, name, reason := parseTool(raw)
		if reason != "" {
			bad = append(bad, Unreadable{Index: i, Name: name, Reason: reason})
			continue
		}
		tools = append(tools, t)
	}
	return tools, bad, nil
}

func parseTool(raw jsontext.Value) (Tool, string, string) {
	if raw.Kind() != '{' {
		return Tool{}, "", "the entry is not an object"
	}
	var def struct {
		Name         *string        `json:"name"`
		Title        *string        `json:"title"`
		Description  *string        `json:"description"`
		InputSchema  jsontext.Value `json:"inputSchema"`
		OutputSchema jsontext.Value `json:"outputSchema"`
		Annotations  jsontext.Value `json:"annotations"`
		Meta         jsontext.Value `json:"_meta"`
		Icons        jsontext.Value `json:"icons"`
	}
	if err := jsonv2.Unmarshal(raw, &def); err != nil {
		// Name the tool if its name alone reads, so that its pin is held.
		var named struct {
			Name string `json:"name"`
		}
		_ = jsonv2.Unmarshal(raw, &named)
		var se *jsonv2.SemanticError
		if errors.As(err, &se) && se.JSONPointer != "" {
			return Tool{}, named.Name, fmt.Sprintf("member %s has the wrong type", se.JSONPointer)
		}
		return Tool{}, named.Name, "the entry cannot be read strictly"
	}
	if def.Name == nil || *def.Name == "" {
		return Tool{}, "", `the entry has no "name" string`
	}
	for _, m := range []struct {
		name string
		v    jsontext.Value
		kind jsontext.Kind
	}{{"inputSchema", def.InputSchema, '{'}, {"outputSchema", def.OutputSchema, '{'}, {"annotations", def.Annotations, '{'}, {"_meta", def.Meta, '{'}, {"icons", def.Icons, '['}} {
		if m.v != nil && m.v.Kind() != m.kind {
			return Tool{}, *def.Name, fmt.Sprintf("member %q has the wrong type", m.name)
		}
	}
	if _, err := policy.CanonicalJSON(raw); err != nil {
		return Tool{}, *def.Name, "the entry cannot be read strictly"
	}
	t := Tool{Name: *def.Name, Definition: json.RawMessage(raw)}
	if def.Description != nil {
		t.Description = *def.Description
	}
	return t, "", ""
}

// UnreadableFingerprint is what a pin records as changed when its tool's
// listed entry could not be read: calls to it are then held like calls to
// any changed tool.
func UnreadableFingerprint(raw []byte) string {
	sum := sha256.Sum256(raw)
	return "unreadable:" + hex.EncodeToString(sum[:])
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
				switch old := legacyFingerprint(t); {
				case isLegacy(p.Fingerprint) && p.Fingerprint == old:
					// Pinned by an older bridge and unchanged in what it
					// covered: re-pinned over the whole definition.
					p.Fingerprint, p.UpgradedAt = fp, s.now().UTC()
					if err := put(b, k, p); err != nil {
						return err
					}
					continue
				case isLegacy(p.Changed) && p.Changed == old:
					// A change seen by an older bridge, still unaccepted.
					p.Changed = fp
					if err := put(b, k, p); err != nil {
						return err
					}
					continue
				}
				p.Changed, p.ChangedAt, p.Description = fp, s.now().UTC(), t.Description
				changed = append(changed, p)
			} else {
				p = Pin{Server: server, Tool: t.Name, Fingerprint: fp, FirstSeen: s.now().UTC(), Description: t.Description}
			}
			if err := put(b, k, p); err != nil {
				return err
			}
		}
		return nil
	})
	return changed, err
}

// MarkUnreadable records that a tool's listed entry could not be read: if
// the tool is pinned, its pin is marked changed (so calls to it are held)
// and returned; an unknown tool is not pinned, and reported as nil.
func (s *Store) MarkUnreadable(ctx context.Context, server, tool string, raw []byte) (*Pin, error) {
	var out *Pin
	fp := UnreadableFingerprint(raw)
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		k := key(server, tool)
		v := b.Get(k)
		if v == nil {
			return nil
		}
		var p Pin
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("pin %s/%s is corrupt: %w", server, tool, err)
		}
		if p.Changed == fp {
			return nil
		}
		p.Changed, p.ChangedAt = fp, s.now().UTC()
		out = &p
		return put(b, k, p)
	})
	return out, err
}

func put(b *bolt.Bucket, k []byte, p Pin) error {
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return b.Put(k, v)
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
