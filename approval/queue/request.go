package queue

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// State is where a request is in its life:
//
//	pending → approved | denied | expired | cancelled
//	approved → executed | expired (not claimed before Expires)
type State string

// The states of a request. Only pending and approved are not final.
const (
	StatePending   State = "pending"
	StateApproved  State = "approved"
	StateDenied    State = "denied"
	StateExpired   State = "expired"
	StateCancelled State = "cancelled"
	StateExecuted  State = "executed"
)

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool {
	switch s {
	case StatePending, StateApproved, StateDenied, StateExpired, StateCancelled, StateExecuted:
		return true
	}
	return false
}

// Decision is a reviewer's verdict.
type Decision string

// The two decisions a reviewer can make.
const (
	Approve Decision = "approve"
	Deny    Decision = "deny"
)

// Requester is the verified caller whose call is held.
type Requester struct {
	Subject string   `json:"subject"`
	Email   string   `json:"email,omitempty"`
	Groups  []string `json:"groups,omitempty"`
}

// Reviewer is a verified person looking at or deciding requests. Groups come
// from their verified token at the time of the request. In a stored
// [Review], Groups holds only the approver groups that entitled the
// reviewer to decide.
type Reviewer struct {
	Subject string   `json:"subject"`
	Email   string   `json:"email,omitempty"`
	Groups  []string `json:"groups,omitempty"`
}

// display is how the reviewer is named to people.
func (r Reviewer) display() string {
	if r.Email != "" {
		return r.Email
	}
	return r.Subject
}

// Review is one reviewer's decision.
type Review struct {
	Reviewer Reviewer `json:"reviewer"`
	Decision Decision `json:"decision"`
	Comment  string   `json:"comment,omitempty"`
	// ArgsDigest is the digest of the arguments this review approved or
	// denied: the request's EditedDigest if set at the time, else ArgsDigest.
	// An approval counts only while it matches the arguments that will run.
	ArgsDigest string    `json:"args_digest"`
	Time       time.Time `json:"time"`
}

// Request is one call held for human approval. It is what the store keeps,
// what the reviewer API returns and what events carry.
type Request struct {
	ID        string    `json:"id"`
	Requester Requester `json:"requester"`
	Server    string    `json:"server"`
	// Session is the requester's relay session, for the audit trail.
	Session string `json:"session,omitempty"`
	Method  string `json:"method,omitempty"`
	Tool    string `json:"tool"`
	// Args are the call's arguments, strictly decoded and in canonical
	// form (policy.CanonicalJSON): exactly what reviewers see and what
	// runs once the request is approved.
	Args json.RawMessage `json:"args,omitempty"`
	// ArgsDigest is the keyed digest of Args (policy.Digester); the
	// approval binds to it. Webhooks carry it, never Args.
	ArgsDigest    string   `json:"args_digest"`
	PolicyVersion string   `json:"policy_version,omitempty"`
	Rule          string   `json:"rule,omitempty"`
	Approvers     []string `json:"approvers"`
	MinApprovals  int      `json:"min_approvals"`
	Justification string   `json:"justification,omitempty"`
	// Timeout is an input to Queue.Create only: the request's validity
	// (Expires = Created + Timeout). Zero means Options.DefaultTimeout.
	Timeout time.Duration `json:"-"`
	Created time.Time     `json:"created"`
	Expires time.Time     `json:"expires"`
	State   State         `json:"state"`
	Reviews []Review      `json:"reviews,omitempty"`
	// EditedArgs, when set, replace Args in the call that runs: a reviewer
	// approved with edited arguments (canonical JSON).
	EditedArgs   json.RawMessage `json:"edited_args,omitempty"`
	EditedDigest string          `json:"edited_digest,omitempty"`
	EditedBy     *Reviewer       `json:"edited_by,omitempty"`
	DecidedAt    time.Time       `json:"decided_at,omitzero"`
	ExecutedAt   time.Time       `json:"executed_at,omitzero"`
	CancelReason string          `json:"cancel_reason,omitempty"`
}

// EffectiveArgs returns the arguments the call runs with: the edited ones
// when a reviewer changed them, else the original ones.
func (r *Request) EffectiveArgs() json.RawMessage {
	if r.EditedDigest != "" {
		return r.EditedArgs
	}
	return r.Args
}

// EffectiveDigest is the digest of EffectiveArgs.
func (r *Request) EffectiveDigest() string {
	if r.EditedDigest != "" {
		return r.EditedDigest
	}
	return r.ArgsDigest
}

// Approvals returns how many distinct people have approved the arguments
// that will run.
func (r *Request) Approvals() int {
	var seen []string
	d := r.EffectiveDigest()
	for _, rv := range r.Reviews {
		if rv.Decision == Approve && rv.ArgsDigest == d && !slices.Contains(seen, rv.Reviewer.Subject) {
			seen = append(seen, rv.Reviewer.Subject)
		}
	}
	return len(seen)
}

// Call identifies the call a request is for.
func (r *Request) Call() CallKey {
	return CallKey{Subject: r.Requester.Subject, Server: r.Server, Tool: r.Tool, Digest: r.ArgsDigest}
}

// Clone returns a deep copy of r.
func (r *Request) Clone() *Request {
	if r == nil {
		return nil
	}
	c := *r
	c.Requester.Groups = slices.Clone(r.Requester.Groups)
	c.Args = slices.Clone(r.Args)
	c.Approvers = slices.Clone(r.Approvers)
	c.Reviews = slices.Clone(r.Reviews)
	for i := range c.Reviews {
		c.Reviews[i].Reviewer.Groups = slices.Clone(c.Reviews[i].Reviewer.Groups)
	}
	c.EditedArgs = slices.Clone(r.EditedArgs)
	if r.EditedBy != nil {
		e := *r.EditedBy
		e.Groups = slices.Clone(e.Groups)
		c.EditedBy = &e
	}
	return &c
}

// CallKey is what makes two calls "the identical call": same requester,
// server, tool and argument digest.
type CallKey struct {
	Subject, Server, Tool, Digest string
}

// hash is a fixed-size index key for the call.
func (k CallKey) hash() [32]byte {
	h := sha256.New()
	for _, s := range []string{k.Subject, k.Server, k.Tool, k.Digest} {
		// Length-prefixed, so that no two keys share an encoding.
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// idEncoding is lowercase base32 without padding: URL-safe and easy to read
// aloud or type.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// IDPrefix starts every request id.
const IDPrefix = "apr_"

// newID returns "apr_" and 10 random base32 characters (50 bits).
func newID(rnd io.Reader) (string, error) {
	var b [7]byte // 56 bits; 10 characters carry 50 of them.
	if rnd == nil {
		rnd = rand.Reader
	}
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("approval id: %w", err)
	}
	return IDPrefix + idEncoding.EncodeToString(b[:])[:10], nil
}

// ValidID reports whether id has the shape of a request id. It is a cheap
// check on input, not a lookup.
func ValidID(id string) bool {
	rest, ok := strings.CutPrefix(id, IDPrefix)
	if !ok || len(rest) != 10 {
		return false
	}
	for _, c := range rest {
		if !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// holdsAny returns the groups of have that appear in want, compared
// case-insensitively as the policy engine compares groups.
func holdsAny(have, want []string) []string {
	var out []string
	for _, h := range have {
		for _, w := range want {
			if strings.EqualFold(h, w) {
				out = append(out, w)
				break
			}
		}
	}
	return out
}
