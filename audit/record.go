package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/seed-3f9f6f16/bridge/audit/merkle"
)

// Kind says what a record is about.
type Kind string

// The kinds of record the gateway writes. KindAnchor is written only by
// [Log.Prune].
const (
	KindGatewayStart      Kind = "gateway_start"
	KindGatewayStop       Kind = "gateway_stop"
	KindSessionStart      Kind = "session_start"
	KindSessionEnd        Kind = "session_end"
	KindRequest           Kind = "request"        // client → server request
	KindResponse          Kind = "response"       // server → client response to a KindRequest
	KindNotification      Kind = "notification"   // either direction; see Record.Direction
	KindServerRequest     Kind = "server_request" // server → client request (sampling, elicitation, roots/list…)
	KindClientResponse    Kind = "client_response"
	KindDecision          Kind = "decision"
	KindApprovalCreated   Kind = "approval_created"
	KindApprovalReviewed  Kind = "approval_reviewed"
	KindApprovalExpired   Kind = "approval_expired"
	KindApprovalCancelled Kind = "approval_cancelled"
	KindApprovalExecuted  Kind = "approval_executed"
	KindToolPinChanged    Kind = "tool_pin_changed"
	KindPolicyReload      Kind = "policy_reload"
	KindAnchor            Kind = "anchor"
)

var kinds = [...]Kind{
	KindGatewayStart, KindGatewayStop, KindSessionStart, KindSessionEnd,
	KindRequest, KindResponse, KindNotification, KindServerRequest,
	KindClientResponse, KindDecision, KindApprovalCreated, KindApprovalReviewed,
	KindApprovalExpired, KindApprovalCancelled, KindApprovalExecuted,
	KindToolPinChanged, KindPolicyReload, KindAnchor,
}

// Kinds returns every known kind, in a stable order.
func Kinds() []Kind { return append([]Kind(nil), kinds[:]...) }

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	for _, known := range kinds {
		if k == known {
			return true
		}
	}
	return false
}

// Directions of a message relative to the gateway.
const (
	ToServer = "to_server" // from the agent (client) towards the upstream server
	ToClient = "to_client" // from the upstream server towards the agent
)

// Policy decisions, as recorded in Record.Decision.
const (
	DecisionAllow   = "allow"
	DecisionDeny    = "deny"
	DecisionApprove = "approve" // held for human approval
)

// Identity is who made a call, as the gateway verified it.
type Identity struct {
	Subject       string   `json:"subject,omitempty"`
	Email         string   `json:"email,omitempty"`
	Groups        []string `json:"groups,omitempty"`
	ClientName    string   `json:"client_name,omitempty"`
	ClientVersion string   `json:"client_version,omitempty"`
}

// Anchor is carried by a KindAnchor record and says what retention pruned, so
// the remaining chain still verifies: the first remaining record's PrevHash is
// PrunedHash. The signed head of the pruned prefix, with the Merkle frontier
// the rest of the tree grows from, is stored beside it as a checkpoint at
// PrunedThrough: the anchor is authentic only if that head's signature
// verifies and its frontier hashes to its root.
type Anchor struct {
	PrunedFrom    uint64    `json:"pruned_from"`    // first seq deleted
	PrunedThrough uint64    `json:"pruned_through"` // last seq deleted
	PrunedCount   uint64    `json:"pruned_count"`
	PrunedHash    string    `json:"pruned_hash"`           // Hash of record PrunedThrough
	PrunedRoot    string    `json:"pruned_root,omitempty"` // Merkle root of records 1..PrunedThrough
	Before        time.Time `json:"before"`                // the retention cut-off
}

// Record is one entry of the audit log.
//
// Seq, Time, Signed, PrevHash and Hash are set by [Log.Append]; everything else is the
// caller's. Message must already be masked: the log stores it as given.
//
// # Canonical encoding and hash
//
// The canonical encoding of a record is its encoding/json encoding with Hash
// empty: one JSON object, no insignificant whitespace, keys in the order of
// the fields below, fields tagged omitempty left out when empty, map keys
// sorted, strings escaped as encoding/json does (including \u003c, \u003e,
// \u0026, \u2028, \u2029; invalid UTF-8 replaced by U+FFFD), Time in RFC 3339
// with nanoseconds and trailing zeros trimmed, in UTC ("Z"), and Message
// compacted. Hash is the lowercase hex SHA-256 of that encoding. PrevHash is
// the Hash of the record with the previous Seq (empty for Seq 1).
//
// The stored form of a record (and each line of [WriteJSONL]) is the canonical
// encoding with `,"hash":"<hex>"` inserted before the final `}`, so an external
// verifier can either re-encode the record or cut that suffix off the stored
// bytes and hash what remains.
//
// # Merkle tree
//
// Record Seq is leaf Seq-1 of an RFC 6962 Merkle tree whose leaf data is the
// record's stored form (one line of a JSONL export): leaf hash
// SHA-256(0x00 || stored form), node hash SHA-256(0x01 || left || right).
// Signed heads ([Checkpoint]) sign its root.
type Record struct {
	Seq           uint64          `json:"seq"`
	Time          time.Time       `json:"time"`
	Kind          Kind            `json:"kind"`
	Direction     string          `json:"direction,omitempty"`
	Session       string          `json:"session,omitempty"`
	Identity      Identity        `json:"identity"`
	Server        string          `json:"server,omitempty"`
	Method        string          `json:"method,omitempty"`
	Tool          string          `json:"tool,omitempty"`
	RequestID     string          `json:"request_id,omitempty"` // the raw JSON-RPC id, e.g. `7` or `"abc"`
	ArgsDigest    string          `json:"args_digest,omitempty"`
	Message       json.RawMessage `json:"message,omitempty"`
	Decision      string          `json:"decision,omitempty"`
	Rule          string          `json:"rule,omitempty"`
	Reason        string          `json:"reason,omitempty"`
	ApprovalID    string          `json:"approval_id,omitempty"`
	Reviewers     []string        `json:"reviewers,omitempty"`
	Masked        map[string]int  `json:"masked,omitempty"` // detector or rule name → replacements made
	LatencyMicros int64           `json:"latency_micros,omitempty"`
	Outcome       string          `json:"outcome,omitempty"`
	Error         string          `json:"error,omitempty"`
	Anchor        *Anchor         `json:"anchor,omitempty"`
	// Signed, set by the log's writer on the first record of a commit, is
	// the signed head of the log just before this record (its Seq is this
	// record's Seq - 1), so every commit is signed by the next one.
	Signed   *Checkpoint `json:"signed,omitempty"`
	PrevHash string      `json:"prev_hash,omitempty"`
	Hash     string      `json:"hash,omitempty"`

	// enc caches the stored form computed by the log's writer.
	enc []byte
}

// User returns the best human-readable name of the record's identity.
func (r *Record) User() string {
	if r.Identity.Email != "" {
		return r.Identity.Email
	}
	return r.Identity.Subject
}

// CanonicalBytes returns the canonical encoding of r (see [Record]), which
// ignores r.Hash.
func (r *Record) CanonicalBytes() ([]byte, error) {
	c := *r
	c.Hash = ""
	c.Time = c.Time.UTC()
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("audit: encode record %d: %w", r.Seq, err)
	}
	return b, nil
}

// ComputeHash returns the hash r should carry: the hex SHA-256 of its
// canonical encoding.
func (r *Record) ComputeHash() (string, error) {
	b, err := r.CanonicalBytes()
	if err != nil {
		return "", err
	}
	return hashHex(b), nil
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// seal sets r.Hash from its content and returns the stored form.
func (r *Record) seal() ([]byte, error) {
	r.Time = r.Time.UTC()
	b, err := r.CanonicalBytes()
	if err != nil {
		return nil, err
	}
	r.Hash = hashHex(b)
	return appendHash(b, r.Hash), nil
}

// leafHash returns the Merkle leaf hash of a record from its canonical
// encoding and hash.
func leafHash(canonical []byte, hash string) merkle.Hash {
	return merkle.LeafHash(appendHash(canonical, hash))
}

// appendHash turns a canonical encoding into the stored form.
func appendHash(canonical []byte, hash string) []byte {
	out := make([]byte, 0, len(canonical)+len(hash)+10)
	out = append(out, canonical[:len(canonical)-1]...)
	out = append(out, `,"hash":"`...)
	out = append(out, hash...)
	out = append(out, `"}`...)
	return out
}

// EncodeRecord returns the stored form of r: its canonical encoding with its
// Hash field. It does not check or compute the hash.
func EncodeRecord(r *Record) ([]byte, error) {
	c := *r
	c.Time = c.Time.UTC()
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("audit: encode record %d: %w", r.Seq, err)
	}
	return b, nil
}

// DecodeRecord parses the stored form of a record. It checks the shape
// (a JSON object with a valid kind and a seq) but not the hash; use
// [Verify] for that.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("audit: decode record: %w", err)
	}
	if dec.More() {
		return Record{}, errors.New("audit: decode record: trailing data")
	}
	if r.Seq == 0 {
		return Record{}, errors.New("audit: decode record: missing seq")
	}
	if !r.Kind.Valid() {
		return Record{}, fmt.Errorf("audit: decode record %d: unknown kind %q", r.Seq, r.Kind)
	}
	return r, nil
}
