package gateway

import (
	"context"

	"github.com/seed-3f9f6f16/bridge/mask"
)

// Note carries what the pipeline's stages decided about one message to the
// stages around them: the audit stage records it, the access log prints it.
type Note struct {
	// Decision is allow, deny or approve when policy decided the message.
	Decision string
	Rule     string
	Reason   string
	// PolicyVersion is the digest of the policy that decided.
	PolicyVersion string
	// ApprovalID and Reviewers are set when the call went through approval.
	ApprovalID string
	Reviewers  []string
	// ArgsDigest is the keyed digest (policy.Digester) of the arguments
	// the approval stage held or ran, when it acted.
	ArgsDigest string
	// Masked counts what masking replaced, per detector; never values.
	Masked mask.Counts
}

type noteKey struct{}

// withNote returns a context carrying a Note for the stages within: the
// one ctx already carries, or a fresh one.
func withNote(ctx context.Context) (context.Context, *Note) {
	if n, ok := ctx.Value(noteKey{}).(*Note); ok {
		return ctx, n
	}
	n := &Note{}
	return context.WithValue(ctx, noteKey{}, n), n
}

// noteFrom returns the Note of ctx; a throwaway one if there is none, so
// stages never need to check.
func noteFrom(ctx context.Context) *Note {
	if n, ok := ctx.Value(noteKey{}).(*Note); ok {
		return n
	}
	return &Note{}
}
