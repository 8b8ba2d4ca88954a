package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
	"github.com/seed-3f9f6f16/bridge/approval/queue"
	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// sameDecision reports whether got is the decision an edited call must
// have to run under an approval made for want: the same action by the
// same rule, and otherwise why not.
func sameDecision(got, want policy.Decision) (string, bool) {
	if got.Action == want.Action && got.Rule == want.Rule {
		return "", true
	}
	return fmt.Sprintf("policy decides the edited call %s by rule %q, not %s by rule %q as the original call", got.Action, got.Rule, want.Action, want.Rule), false
}

// EditCheck returns the queue's CheckEdit: a reviewer's edit is refused
// at once (ErrEditRefused, HTTP 409) when the current policy would not
// send the edited call to the same approve rule, judged with the identity
// the requester had when the call was held. The gateway decides the call
// again when it runs, with the requester's live identity; this check only
// spares the reviewer a surprise.
func EditCheck(current *atomic.Pointer[policy.Policy]) func(context.Context, *queue.Request, json.RawMessage) error {
	return func(_ context.Context, r *queue.Request, edited json.RawMessage) error {
		pol := current.Load()
		if pol == nil {
			return nil
		}
		if r.Method != "" && r.Method != policy.MethodToolsCall && r.Method != "prompts/get" {
			return queue.ErrEditRefused.With("only tool and prompt arguments can be edited")
		}
		user := r.Requester.Email
		if user == "" {
			user = r.Requester.Subject
		}
		in := policy.Input{User: user, Groups: r.Requester.Groups, Server: r.Server, Method: r.Method, Tool: r.Tool, Args: r.Args}
		if in.Method == "" {
			in.Method = policy.MethodToolsCall
		}
		want := policy.Decision{Action: policy.Approve, Rule: r.Rule}
		if r.Rule == PinRule {
			want = pol.Decide(in)
		}
		in.Args = edited
		if reason, ok := sameDecision(pol.Decide(in), want); !ok {
			return queue.ErrEditRefused.With(reason + "; approve the original arguments, deny, or edit within the rule")
		}
		return nil
	}
}

// editRefused decides the edited call again. It must be decided as the
// original call was: approve by the same rule (for a call held because its
// tool's definition changed, whatever policy decided the original). An
// edit policy would deny, allow, or send to another rule is refused: the
// approval is revoked (audited from the queue's cancelled event) and the
// requester is told. It returns the text for the requester and false when
// the edit is refused.
func (a *Approvals) editRefused(ctx context.Context, x *bridge.Exchange, m, edited *bridge.Message, r *queue.Request, d policy.Decision) (string, bool) {
	note := noteFrom(ctx)
	var reason string
	if a.policy == nil {
		reason = "this gateway cannot decide edited arguments again"
	} else {
		want := d
		if d.Rule == PinRule {
			want = a.policy.Decide(policyInput(x, m))
		}
		got := a.policy.Decide(policyInput(x, edited))
		var ok bool
		if reason, ok = sameDecision(got, want); ok {
			return "", true
		}
		note.Decision, note.Rule = got.Action.String(), got.Rule
	}
	by := "a reviewer"
	if r.EditedBy != nil {
		by = reviewerName(*r.EditedBy)
	}
	text := fmt.Sprintf("bridge: %s approved this call with edited arguments, but %s, so it did not run (approval %s). Call again to ask for a new approval.", by, reason, r.ID)
	note.Reason, note.ApprovalID, note.ArgsDigest = text, r.ID, r.EditedDigest
	a.log.Warn("edited arguments refused by policy", "approval", r.ID, "server", r.Server, "tool", r.Tool, "requester", r.Requester.Subject, "edited_by", by)
	// Recorded here, before the request's own record, so the audit trail
	// reads in order; RecordEvents does not record revocations.
	if revoked, err := a.q.Revoke(context.WithoutCancel(ctx), r.ID, "the edited arguments were refused: "+reason); err == nil {
		a.recordOutcome(ctx, audit.KindApprovalCancelled, revoked)
	} else if !errors.Is(err, queue.ErrNotApproved) {
		a.log.Error("revoking an approval", "approval", r.ID, "err", err)
	}
	a.tellOnce(r.ID)
	return text, false
}

// editText tells the requester who changed the arguments and to what. The
// arguments pass through the server's masker first; without one the text
// names no values.
func (a *Approvals) editText(server string, r *queue.Request) string {
	text := fmt.Sprintf("bridge: %s changed the arguments of this call before approving it (approval %s)", reviewerName(*r.EditedBy), r.ID)
	if a.maskFor == nil {
		return text + "; ask them, or run `bridge approvals show " + r.ID + "`, for the arguments it ran with."
	}
	masker, ok := a.maskFor(server)
	if !ok {
		return text + "; ask them, or run `bridge approvals show " + r.ID + "`, for the arguments it ran with."
	}
	args, _, err := masker.MaskJSONValue(r.EditedArgs)
	if err != nil {
		return text + "; ask them, or run `bridge approvals show " + r.ID + "`, for the arguments it ran with."
	}
	return text + "; it ran with: " + string(args)
}

// addNote keeps a note for a call's response, dropping notes whose
// response never came and, past maxNotes, the oldest.
func (a *Approvals) addNote(key, text string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clock.Now()
	if len(a.edited) >= a.maxNotes {
		oldest := ""
		for k, n := range a.edited {
			if now.Sub(n.added) > editNoteTTL {
				delete(a.edited, k)
				continue
			}
			if oldest == "" || n.added.Before(a.edited[oldest].added) {
				oldest = k
			}
		}
		if len(a.edited) >= a.maxNotes && oldest != "" {
			delete(a.edited, oldest)
		}
	}
	a.edited[key] = editNote{text: text, added: now}
}
