package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
	"github.com/seed-3f9f6f16/bridge/approval/queue"
	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/bridge"
	"github.com/seed-3f9f6f16/bridge/mask"
)

// Clock is the time source of holds, so tests drive them without sleeping.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// ProgressInterval is how often a held call reports progress.
const ProgressInterval = 10 * time.Second

// JustificationMetaKey is the params._meta key in which a caller gives the
// reason for a call whose rule requires a justification.
const JustificationMetaKey = "io.bridge/justification"

// Approvals holds calls that policy sends for approval. While a call waits
// it keeps the agent informed: a log message naming the approval id and its
// deadline, and progress every ProgressInterval when the request carried a
// progressToken. After the rule's hold it answers that the approval is
// pending; the identical call (same requester, server, tool and argument
// digest) then runs exactly once after approval.
type Approvals struct {
	q        *queue.Queue
	clock    Clock
	log      *slog.Logger
	recorder *Recorder
	policy   *policy.Policy
	maskFor  func(server string) (*mask.Masker, bool)
	maxNotes int

	// closing is set while the gateway shuts down: held calls then end
	// without withdrawing their requests, which survive the restart.
	closing atomic.Bool

	mu       sync.Mutex
	reported map[string]time.Time // denied or expired requests already told to the requester
	waiting  map[string]int       // approval id → held calls waiting on it
	calls    map[string]*callLock // identical calls deciding find-or-create one at a time
	edited   map[string]editNote  // "session/request id" → note for the requester, at most maxNotes
}

// editNote is the text that tells a requester their call ran with a
// reviewer's arguments, kept until the call's response passes.
type editNote struct {
	text  string
	added time.Time
}

// DefaultMaxEditNotes is ApprovalsOptions.MaxEditNotes when zero.
const DefaultMaxEditNotes = 1024

// editNoteTTL is how long a note waits for its response; a call whose
// response never came (the upstream died) leaves no note behind for ever.
const editNoteTTL = time.Hour

// ApprovalsOptions are the approval stage's dependencies.
type ApprovalsOptions struct {
	// Clock drives holds; the wall clock when nil.
	Clock  Clock
	Logger *slog.Logger
	// Recorder writes approval events to the audit log; nil records none.
	Recorder *Recorder
	// Policy decides a call again with a reviewer's edited arguments
	// before it runs. With none, a call whose arguments were edited is
	// refused.
	Policy *policy.Policy
	// MaskFor gives the masker of a server's responses: the note telling
	// the requester about an edit carries argument values and is masked
	// with it. With none, the note names no values.
	MaskFor func(server string) (*mask.Masker, bool)
	// MaxEditNotes bounds the edit notes waiting for their responses;
	// DefaultMaxEditNotes when zero.
	MaxEditNotes int
}

// NewApprovals returns the approval stage over a queue.
func NewApprovals(q *queue.Queue, opts ApprovalsOptions) *Approvals {
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxEditNotes <= 0 {
		opts.MaxEditNotes = DefaultMaxEditNotes
	}
	return &Approvals{q: q, clock: opts.Clock, log: opts.Logger, recorder: opts.Recorder, policy: opts.Policy, maskFor: opts.MaskFor,
		maxNotes: opts.MaxEditNotes, reported: map[string]time.Time{}, edited: map[string]editNote{}, waiting: map[string]int{},
		calls: map[string]*callLock{}}
}

// Shutdown tells held calls that the gateway is stopping, so that they end
// without withdrawing their pending requests.
func (a *Approvals) Shutdown() { a.closing.Store(true) }

// Hold implements Holder.
func (a *Approvals) Hold(ctx context.Context, x *bridge.Exchange, m *bridge.Message, d policy.Decision) (bridge.Verdict, error) {
	id := principalOf(x)
	c := CallOf(m)
	digest := a.q.Digest(c.Args)
	note := noteFrom(ctx)
	note.ArgsDigest = digest

	// Identical calls arriving together must find one request, not create
	// one each: find-or-create runs under a lock per call. The lock also
	// orders a waiter joining a request against the last waiter leaving
	// it, so a request is withdrawn only when nobody waits on it.
	callKey := id.Subject + "\x00" + x.Session.Server + "\x00" + c.Target + "\x00" + digest
	unlock := a.lockCall(callKey)
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	prev, err := a.q.FindForCall(ctx, id.Subject, x.Session.Server, c.Target, digest)
	if err != nil && !errors.Is(err, queue.ErrNotFound) {
		return bridge.Verdict{}, bridge.Errorf(bridge.CodeUnavailable, "bridge: the approval queue is unavailable, so this call was refused; try again shortly", err)
	}
	if prev != nil {
		note.ApprovalID = prev.ID
		switch prev.State {
		case queue.StateApproved:
			return a.run(ctx, x, m, prev, d)
		case queue.StatePending:
			a.join(prev.ID)
			unlock()
			locked = false
			return a.wait(ctx, x, m, prev, d, callKey)
		case queue.StateDenied, queue.StateExpired:
			if a.tellOnce(prev.ID) {
				return pendingResult(m, a.outcomeText(prev))
			}
		}
	}

	justification, ok := justificationOf(m)
	if d.Justification && !ok {
		if justification, ok = a.askJustification(ctx, x, c.Target, d.Rule); !ok {
			return pendingResult(m, fmt.Sprintf("bridge: this call needs a justification before it can go to a reviewer (rule %q). "+
				"Call the tool again with a short reason in params._meta[%q].", d.Rule, JustificationMetaKey))
		}
	}
	spec := d.Approval
	if spec == nil {
		spec = &policy.ApprovalSpec{MinApprovals: policy.DefaultMinApprovals, Timeout: policy.DefaultTimeout, Hold: policy.DefaultHold}
	}
	req, err := a.q.Create(ctx, &queue.Request{
		Requester: queue.Requester{Subject: id.Subject, Email: id.Email, Groups: id.Groups},
		Server:    x.Session.Server, Session: x.Session.ID, Method: m.Method, Tool: c.Target,
		Args: c.Args, ArgsDigest: digest, PolicyVersion: noteFrom(ctx).PolicyVersion, Rule: d.Rule,
		Approvers: spec.Approvers, MinApprovals: spec.MinApprovals, Justification: justification, Timeout: spec.Timeout,
	})
	if errors.Is(err, queue.ErrInvalid) || errors.Is(err, queue.ErrLimit) {
		// Refused once, on this request's own audit record: the
		// requester is told why, and nothing is stored.
		var qe *queue.Error
		errors.As(err, &qe)
		text := "bridge: this call cannot be sent for approval: " + qe.Message
		note.Decision, note.Reason = "refused", text
		return pendingResult(m, text)
	}
	if err != nil {
		return bridge.Verdict{}, bridge.Errorf(bridge.CodeUnavailable, "bridge: the approval queue is unavailable, so this call was refused; try again shortly", err)
	}
	note.ApprovalID = req.ID
	a.join(req.ID)
	unlock()
	locked = false
	if err := a.event(ctx, x, audit.KindApprovalCreated, req, ""); err != nil {
		a.leave(req.ID)
		return bridge.Verdict{}, err
	}
	return a.wait(ctx, x, m, req, d, callKey)
}

// join counts a held call waiting on request id; leave uncounts it and
// reports whether it was the last.
func (a *Approvals) join(id string) {
	a.mu.Lock()
	a.waiting[id]++
	a.mu.Unlock()
}

func (a *Approvals) leave(id string) (last bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.waiting[id]--; a.waiting[id] <= 0 {
		delete(a.waiting, id)
		return true
	}
	return false
}

// callLock serializes find-or-create for one call; refs counts its users so
// the map does not grow.
type callLock struct {
	mu   sync.Mutex
	refs int
}

// lockCall locks key and returns the unlock function.
func (a *Approvals) lockCall(key string) func() {
	a.mu.Lock()
	l := a.calls[key]
	if l == nil {
		l = &callLock{}
		a.calls[key] = l
	}
	l.refs++
	a.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		a.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(a.calls, key)
		}
		a.mu.Unlock()
	}
}

// wait holds the call until the request is decided or the hold ends. The
// caller has counted it among the request's waiters (join); wait uncounts
// it when it returns.
func (a *Approvals) wait(ctx context.Context, x *bridge.Exchange, m *bridge.Message, req *queue.Request, d policy.Decision, callKey string) (bridge.Verdict, error) {
	left := false
	defer func() {
		if !left {
			a.leave(req.ID)
		}
	}()
	hold := policy.DefaultHold
	if d.Approval != nil {
		hold = d.Approval.Hold
	}
	if until := req.Expires.Sub(a.clock.Now()); until < hold {
		hold = max(until, 0)
	}
	events := a.q.Subscribe(ctx)
	// The request may have been decided before we subscribed.
	if cur, err := a.q.Get(ctx, req.ID); err == nil && cur.State != queue.StatePending {
		return a.decided(ctx, x, m, cur, d)
	}
	a.notify(x, logMessage("notice", fmt.Sprintf(
		"bridge: %s/%s is waiting for approval %s by %s until %s. A reviewer approves it with: bridge approvals approve %s",
		x.Session.Server, req.Tool, req.ID, strings.Join(req.Approvers, " or "), req.Expires.UTC().Format(time.RFC3339), req.ID)))
	token := m.ProgressToken()
	step := 0
	holdDone := a.clock.After(hold)
	tick := a.clock.After(ProgressInterval)
	for {
		select {
		case ev, ok := <-events:
			if !ok { // dropped for lagging: resubscribe and re-read
				events = a.q.Subscribe(ctx)
				if cur, err := a.q.Get(ctx, req.ID); err == nil && cur.State != queue.StatePending {
					return a.decided(ctx, x, m, cur, d)
				}
				continue
			}
			if ev.Request == nil || ev.Request.ID != req.ID || ev.Request.State == queue.StatePending {
				continue
			}
			if ev.Type == queue.EventApproved || ev.Type == queue.EventDenied {
				// Recorded here, before the call runs, so the audit trail
				// reads in order; RecordEvents skips it.
				a.recordReview(ctx, ev.Request)
			}
			return a.decided(ctx, x, m, ev.Request, d)
		case <-tick:
			tick = a.clock.After(ProgressInterval)
			if token != nil {
				step++
				a.notify(x, progress(token, step, fmt.Sprintf("waiting for approval %s", req.ID)))
			}
		case <-holdDone:
			return pendingResult(m, fmt.Sprintf(
				"bridge: this call is waiting for human approval (request %s, rule %q) by %s, until %s. "+
					"It has not run. Call the tool again with the same arguments once it is approved; it will then run once.",
				req.ID, req.Rule, strings.Join(req.Approvers, " or "), req.Expires.UTC().Format(time.RFC3339)))
		case <-ctx.Done():
			if a.closing.Load() {
				return bridge.Verdict{}, bridge.Errorf(bridge.CodeUnavailable, fmt.Sprintf(
					"bridge: the gateway is restarting; approval %s is still pending: call again with the same arguments", req.ID), ctx.Err())
			}
			// The client cancelled or went away. Identical calls share
			// the request: it is withdrawn only when the last of them
			// leaves, under the call's lock so that no new waiter joins
			// a request that is being withdrawn.
			cctx := context.WithoutCancel(ctx)
			unlock := a.lockCall(callKey)
			left = true
			if a.leave(req.ID) {
				_, _ = a.q.Cancel(cctx, req.ID, "the client cancelled the call or disconnected") // audited from the queue's events
			}
			unlock()
			return bridge.Verdict{}, ctx.Err()
		}
	}
}

// decided answers a call whose request left pending.
func (a *Approvals) decided(ctx context.Context, x *bridge.Exchange, m *bridge.Message, r *queue.Request, d policy.Decision) (bridge.Verdict, error) {
	if r.State == queue.StateApproved {
		return a.run(ctx, x, m, r, d)
	}
	a.tellOnce(r.ID)
	return pendingResult(m, a.outcomeText(r))
}

// run claims an approved request and forwards the call with the
// arguments the approval binds to: the request's canonical arguments
// (which the retry's digest matched) or the reviewer's edited ones, once
// policy has decided the edited call exactly as it decided the original.
// What runs is what the reviewers saw, byte for byte.
func (a *Approvals) run(ctx context.Context, x *bridge.Exchange, m *bridge.Message, r *queue.Request, d policy.Decision) (bridge.Verdict, error) {
	note := noteFrom(ctx)
	forward := m
	hasArgs := m.Method == policy.MethodToolsCall || m.Method == "prompts/get"
	if r.EditedDigest != "" && !hasArgs {
		return pendingResult(m, fmt.Sprintf("bridge: approval %s came with edited arguments, but only tool and prompt arguments can be edited; the call did not run.", r.ID))
	}
	if hasArgs && len(r.EffectiveArgs()) > 0 {
		var err error
		if forward, err = withArguments(m, r.EffectiveArgs()); err != nil {
			return bridge.Verdict{}, err
		}
	}
	if r.EditedDigest != "" {
		if text, ok := a.editRefused(ctx, x, m, forward, r, d); !ok {
			return pendingResult(m, text)
		}
	}
	claimed, err := a.q.Claim(ctx, r.ID)
	if err != nil {
		var qe *queue.Error
		if errors.As(err, &qe) {
			return pendingResult(m, "bridge: "+qe.Message+fmt.Sprintf(" (approval %s)", r.ID))
		}
		return bridge.Verdict{}, bridge.Errorf(bridge.CodeUnavailable, "bridge: the approval queue is unavailable, so this call was refused; try again shortly", err)
	}
	note.ApprovalID = claimed.ID
	for _, rv := range claimed.Reviews {
		note.Reviewers = append(note.Reviewers, reviewerName(rv.Reviewer))
	}
	if err := a.event(ctx, x, audit.KindApprovalExecuted, claimed, ""); err != nil {
		return bridge.Verdict{}, err
	}
	if claimed.EditedDigest != "" {
		note.ArgsDigest = claimed.EditedDigest
		a.addNote(x.Session.ID+"/"+string(m.ID), a.editText(x.Session.Server, claimed))
	}
	return bridge.Verdict{Forward: forward}, nil
}

// RecordEvents writes the approval events that happen outside a held call
// — reviews, expiry, cancellation — to the audit log, until ctx ends.
func (a *Approvals) RecordEvents(ctx context.Context) {
	for ev := range a.q.Subscribe(ctx) {
		var kind audit.Kind
		switch ev.Type {
		case queue.EventReviewed, queue.EventApproved, queue.EventDenied:
			kind = audit.KindApprovalReviewed
		case queue.EventExpired:
			kind = audit.KindApprovalExpired
		case queue.EventCancelled:
			kind = audit.KindApprovalCancelled
		default:
			continue
		}
		r := ev.Request
		if ev.Type == queue.EventApproved || ev.Type == queue.EventDenied {
			a.mu.Lock()
			held := a.waiting[r.ID] > 0
			a.mu.Unlock()
			if held {
				continue // the held call records it
			}
		}
		if kind == audit.KindApprovalReviewed {
			a.recordReview(ctx, r)
			continue
		}
		a.recordOutcome(ctx, kind, r)
	}
}

// recordOutcome audits how a request ended: expired or cancelled.
func (a *Approvals) recordOutcome(ctx context.Context, kind audit.Kind, r *queue.Request) {
	rec := &audit.Record{Kind: kind, Session: r.Session, Server: r.Server, Method: r.Method, Tool: r.Tool,
		Identity:   audit.Identity{Subject: r.Requester.Subject, Email: r.Requester.Email, Groups: r.Requester.Groups},
		ArgsDigest: r.ArgsDigest, ApprovalID: r.ID, Rule: r.Rule, Outcome: string(r.State)}
	if kind == audit.KindApprovalCancelled {
		rec.Reason = r.CancelReason
	}
	if a.recorder != nil {
		_ = a.recorder.Event(ctx, rec)
	}
}

// recordReview audits the latest review of a request.
func (a *Approvals) recordReview(ctx context.Context, r *queue.Request) {
	if a.recorder == nil || len(r.Reviews) == 0 {
		return
	}
	last := r.Reviews[len(r.Reviews)-1]
	_ = a.recorder.Event(ctx, &audit.Record{Kind: audit.KindApprovalReviewed, Session: r.Session, Server: r.Server, Method: r.Method, Tool: r.Tool,
		Identity:   audit.Identity{Subject: r.Requester.Subject, Email: r.Requester.Email, Groups: r.Requester.Groups},
		ArgsDigest: r.ArgsDigest, ApprovalID: r.ID, Rule: r.Rule, Outcome: string(r.State),
		Reviewers: []string{reviewerName(last.Reviewer)}, Decision: string(last.Decision), Reason: last.Comment})
}

// Annotate adds to the result of a call that ran with edited arguments a
// text saying who changed them. It is the approval stage's response half.
func (a *Approvals) Annotate(x *bridge.Exchange, resp *bridge.Message) *bridge.Message {
	if x.Request == nil {
		return resp
	}
	key := x.Session.ID + "/" + string(x.Request.ID)
	a.mu.Lock()
	n, ok := a.edited[key]
	delete(a.edited, key)
	a.mu.Unlock()
	text := n.text
	if !ok || resp.Result == nil {
		return resp
	}
	var result map[string]json.RawMessage
	if json.Unmarshal(resp.Result, &result) != nil {
		return resp
	}
	var content []json.RawMessage
	_ = json.Unmarshal(result["content"], &content)
	first, _ := json.Marshal(map[string]string{"type": "text", "text": text})
	content = append([]json.RawMessage{first}, content...)
	result["content"], _ = json.Marshal(content)
	out, err := bridge.NewResult(resp.ID, result)
	if err != nil {
		return resp
	}
	return out
}

// outcomeText tells the requester how a request ended.
func (a *Approvals) outcomeText(r *queue.Request) string {
	switch r.State {
	case queue.StateDenied:
		who, why := "a reviewer", ""
		for _, rv := range r.Reviews {
			if rv.Decision == queue.Deny {
				who, why = reviewerName(rv.Reviewer), rv.Comment
			}
		}
		text := fmt.Sprintf("bridge: %s denied this call (approval %s)", who, r.ID)
		if why != "" {
			text += ": " + why
		}
		return text + ". It did not run."
	case queue.StateExpired:
		return fmt.Sprintf("bridge: approval %s expired at %s without a decision, so this call did not run. Call again to ask for a new approval.",
			r.ID, r.Expires.UTC().Format(time.RFC3339))
	case queue.StateCancelled:
		return fmt.Sprintf("bridge: approval %s was withdrawn; the call did not run.", r.ID)
	}
	return fmt.Sprintf("bridge: approval %s is %s; the call did not run.", r.ID, r.State)
}

// tellOnce reports whether the requester has not yet been told how request
// id ended, and remembers that now they have. Later identical calls ask
// for a new approval.
func (a *Approvals) tellOnce(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clock.Now()
	for k, at := range a.reported {
		if now.Sub(at) > 24*time.Hour {
			delete(a.reported, k)
		}
	}
	if _, told := a.reported[id]; told {
		return false
	}
	a.reported[id] = now
	return true
}

func (a *Approvals) notify(x *bridge.Exchange, m *bridge.Message) {
	if x.Notify != nil && m != nil {
		x.Notify(m)
	}
}

// event records an approval event in the audit log.
func (a *Approvals) event(ctx context.Context, x *bridge.Exchange, kind audit.Kind, r *queue.Request, outcome string) error {
	if a.recorder == nil {
		return nil
	}
	rec := &audit.Record{Kind: kind, Session: x.Session.ID, Server: r.Server, Method: r.Method, Tool: r.Tool,
		Identity: identityOf(x.Session, x.Principal), ArgsDigest: r.ArgsDigest, ApprovalID: r.ID, Rule: r.Rule, Outcome: outcome}
	for _, rv := range r.Reviews {
		rec.Reviewers = append(rec.Reviewers, reviewerName(rv.Reviewer))
	}
	return a.recorder.Event(ctx, rec)
}

func reviewerName(r queue.Reviewer) string {
	if r.Email != "" {
		return r.Email
	}
	return r.Subject
}

// askJustification asks the user for a reason with a form elicitation,
// where the client supports one. It reports false when it could not get one.
func (a *Approvals) askJustification(ctx context.Context, x *bridge.Exchange, tool, rule string) (string, bool) {
	if x.Ask == nil || !x.Session.CanElicit() {
		return "", false
	}
	resp, err := x.Ask(ctx, "elicitation/create", map[string]any{
		"mode":    "form",
		"message": fmt.Sprintf("%s/%s needs approval by a reviewer (rule %q). Why do you need to run it?", x.Session.Server, tool, rule),
		"requestedSchema": map[string]any{
			"type": "object",
			"properties": map[string]any{
				"reason": map[string]any{"type": "string", "title": "Reason", "description": "Shown to the reviewer beside the call", "minLength": 3},
			},
			"required": []string{"reason"},
		},
	})
	if err != nil || resp.Error != nil {
		return "", false
	}
	var r struct {
		Action  string `json:"action"`
		Content struct {
			Reason string `json:"reason"`
		} `json:"content"`
	}
	if json.Unmarshal(resp.Result, &r) != nil || r.Action != "accept" || strings.TrimSpace(r.Content.Reason) == "" {
		return "", false
	}
	reason := r.Content.Reason
	if len(reason) > 2000 {
		reason = reason[:2000]
	}
	return reason, true
}

// justificationOf returns the reason a caller gave in params._meta.
func justificationOf(m *bridge.Message) (string, bool) {
	raw, ok := m.ParamsMeta()[JustificationMetaKey]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil || strings.TrimSpace(s) == "" {
		return "", false
	}
	if len(s) > 2000 {
		s = s[:2000]
	}
	return s, true
}

// pendingResult answers a held call that did not run. For tools/call it is
// a tool result with isError, which the model reads; other methods get a
// JSON-RPC error.
func pendingResult(m *bridge.Message, text string) (bridge.Verdict, error) {
	if m.Method != policy.MethodToolsCall {
		return bridge.Verdict{Reply: bridge.NewError(m.ID, bridge.CodeRefused, text)}, nil
	}
	reply, err := bridge.NewResult(m.ID, toolError(text))
	if err != nil {
		return bridge.Verdict{}, err
	}
	return bridge.Verdict{Reply: reply}, nil
}

// withArguments returns a copy of a tools/call or prompts/get request
// whose params.arguments are args; every other member is kept as it was.
func withArguments(m *bridge.Message, args json.RawMessage) (*bridge.Message, error) {
	var msg map[string]jsontext.Value
	if err := jsonv2.Unmarshal(m.Raw, &msg); err != nil {
		return nil, err
	}
	var params map[string]jsontext.Value
	if err := jsonv2.Unmarshal(msg["params"], &params); err != nil {
		return nil, err
	}
	params["arguments"] = jsontext.Value(args)
	var err error
	if msg["params"], err = jsonv2.Marshal(params, jsonv2.Deterministic(true)); err != nil {
		return nil, err
	}
	b, err := jsonv2.Marshal(msg, jsonv2.Deterministic(true))
	if err != nil {
		return nil, err
	}
	return bridge.Parse(b)
}

func logMessage(level, text string) *bridge.Message {
	m, _ := bridge.NewNotification("notifications/message", map[string]any{"level": level, "logger": "bridge", "data": text})
	return m
}

func progress(token json.RawMessage, step int, text string) *bridge.Message {
	m, _ := bridge.NewNotification("notifications/progress", map[string]any{"progressToken": token, "progress": step, "message": text})
	return m
}
