package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
	"github.com/seed-3f9f6f16/bridge/approval/queue"
	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge"
	"github.com/seed-3f9f6f16/bridge/mask"
)

// holdClock is a fixed clock whose holds end at once (fire) or never.
type holdClock struct {
	now  time.Time
	fire bool
}

func (c holdClock) Now() time.Time { return c.now }

func (c holdClock) After(d time.Duration) <-chan time.Time {
	if !c.fire || d == ProgressInterval {
		return nil // progress never ticks; with fire unset the hold never ends
	}
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

var (
	holdAlice = &auth.Identity{Subject: "u-alice", Email: "alice@example.com", Groups: []string{"engineering"}}
	holdBob   = queue.Reviewer{Subject: "u-bob", Email: "bob@example.com", Groups: []string{"security-reviewers"}}
)

// holdWorld is the approval stage over a real queue and policy.
type holdWorld struct {
	q   *queue.Queue
	pol *policy.Policy
	a   *Approvals
	now time.Time
}

func newHoldWorld(t *testing.T, fire bool) *holdWorld {
	t.Helper()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	q, err := queue.New(queue.NewMemStore(), queue.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(policy.Config{Default: "deny", Rules: []policy.RuleConfig{
		{Name: "small", Tools: []string{"transfer"}, When: `args.amount < 10`, Action: "allow"},
		{Name: "large", Tools: []string{"transfer"}, When: `args.amount > 1000`, Action: "deny"},
		{Name: "review", Tools: []string{"transfer"}, Action: "approve", Approval: &policy.ApprovalConfig{Approvers: []string{"security-reviewers"}}},
		{Name: "review-other", Tools: []string{"other"}, Action: "approve", Approval: &policy.ApprovalConfig{Approvers: []string{"security-reviewers"}}},
	}}, policy.CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	masks, err := mask.New(mask.Config{Profiles: map[string]mask.ProfileConfig{mask.DefaultProfileName: {Builtins: []string{"credit_card"}}}})
	if err != nil {
		t.Fatal(err)
	}
	a := NewApprovals(q, ApprovalsOptions{Clock: holdClock{now: now, fire: fire}, Policy: pol,
		MaskFor: func(string) (*mask.Masker, bool) { return masks.Profile("") }})
	return &holdWorld{q: q, pol: pol, a: a, now: now}
}

func holdExchange(session string) *bridge.Exchange {
	return &bridge.Exchange{Session: &bridge.SessionInfo{ID: session, Server: "bank"}, Principal: holdAlice, Direction: bridge.FromClient}
}

func toolsCall(t *testing.T, id int, tool, args string) *bridge.Message {
	t.Helper()
	m, err := bridge.Parse([]byte(`{"jsonrpc":"2.0","id":` + jsonNum(id) + `,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args + `}}`))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func jsonNum(i int) string { b, _ := json.Marshal(i); return string(b) }

// hold runs m through the approval stage as the policy stage would.
func (w *holdWorld) hold(t *testing.T, x *bridge.Exchange, m *bridge.Message) bridge.Verdict {
	t.Helper()
	d := w.pol.Decide(policyInput(x, m))
	if d.Action != policy.Approve {
		t.Fatalf("policy decided %s by %s, want approve", d.Action, d.Rule)
	}
	v, err := w.a.Hold(context.Background(), x, m, d)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func replyText(t *testing.T, v bridge.Verdict) string {
	t.Helper()
	if v.Reply == nil {
		t.Fatalf("the call was forwarded: %s", v.Forward.Raw)
	}
	var r struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := json.Unmarshal(v.Reply.Result, &r); err != nil || len(r.Content) == 0 {
		t.Fatalf("reply %s", v.Reply.Raw)
	}
	return r.Content[0].Text
}

func forwardedArgs(t *testing.T, v bridge.Verdict) string {
	t.Helper()
	if v.Forward == nil {
		t.Fatalf("not forwarded: %s", v.Reply.Raw)
	}
	return string(CallOf(v.Forward).Args)
}

func (w *holdWorld) pendingID(t *testing.T) string {
	t.Helper()
	rs, err := w.q.List(context.Background(), queue.Filter{States: []queue.State{queue.StatePending}})
	if err != nil || len(rs) != 1 {
		t.Fatalf("pending requests: %d, %v", len(rs), err)
	}
	return rs[0].ID
}

// TestHoldRunsWhatWasApproved: the retry runs the arguments the reviewer
// saw; an edit runs only when policy sends it to the same approve rule.
func TestHoldRunsWhatWasApproved(t *testing.T) {
	tests := []struct {
		name   string
		retry  string // the retry's arguments
		edit   string // the reviewer's edit, if any
		runs   string // the arguments forwarded; "" when refused
		reason string // part of the refusal
	}{
		{name: "same arguments, another order", retry: `{ "to": "bob", "amount": 500 }`, runs: `{"amount":500,"to":"bob"}`},
		{name: "escaped alike", retry: `{"amount":500,"\u0074o":"bob"}`, runs: `{"amount":500,"to":"bob"}`},
		{name: "an extra member asks anew", retry: `{"amount":500,"to":"bob","then":{"amount":1000000}}`, reason: "waiting for human approval"},
		{name: "another value asks anew", retry: `{"amount":600,"to":"bob"}`, reason: "waiting for human approval"},
		{name: "an edit by the same rule runs", retry: `{"amount":500,"to":"bob"}`, edit: `{"amount":400,"to":"carol"}`, runs: `{"amount":400,"to":"carol"}`},
		{name: "an edit policy denies", retry: `{"amount":500,"to":"bob"}`, edit: `{"amount":1000000,"to":"bob"}`, reason: `policy decides the edited call deny by rule "large", not approve by rule "review"`},
		{name: "an edit policy allows", retry: `{"amount":500,"to":"bob"}`, edit: `{"amount":1,"to":"bob"}`, reason: `policy decides the edited call allow by rule "small"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newHoldWorld(t, true)
			ctx := context.Background()
			x := holdExchange("s1")
			first := replyText(t, w.hold(t, x, toolsCall(t, 1, "transfer", `{"amount":500,"to":"bob"}`)))
			if !strings.Contains(first, "waiting for human approval") {
				t.Fatalf("first call: %q", first)
			}
			id := w.pendingID(t)
			if _, err := w.q.Decide(ctx, id, holdBob, queue.Approve, "", json.RawMessage(tt.edit)); err != nil {
				t.Fatal(err)
			}
			retry := toolsCall(t, 2, "transfer", tt.retry)
			v := w.hold(t, x, retry)
			r, _ := w.q.Get(ctx, id)
			if tt.runs == "" {
				if got := replyText(t, v); !strings.Contains(got, tt.reason) {
					t.Fatalf("refusal %q, want %q", got, tt.reason)
				}
				if tt.edit != "" && (r.State != queue.StateCancelled || !strings.Contains(r.CancelReason, "edited arguments were refused")) {
					t.Fatalf("a refused edit left the request %s (%q)", r.State, r.CancelReason)
				}
				if tt.edit == "" && r.State != queue.StateApproved {
					t.Fatalf("another call claimed the approval: %s", r.State)
				}
				return
			}
			if got := forwardedArgs(t, v); got != tt.runs {
				t.Fatalf("ran with %s, want %s", got, tt.runs)
			}
			if r.State != queue.StateExecuted {
				t.Fatalf("request %s after running", r.State)
			}
			// Every other member of the request is kept.
			var env map[string]any
			if jsonv2.Unmarshal(v.Forward.Raw, &env) != nil || env["id"] != float64(2) || env["method"] != "tools/call" {
				t.Fatalf("forwarded %s", v.Forward.Raw)
			}
		})
	}
}

// TestEditNote: the note telling the requester about an edit is masked,
// and the notes waiting for responses are bounded.
func TestEditNote(t *testing.T) {
	w := newHoldWorld(t, true)
	ctx := context.Background()
	x := holdExchange("s1")
	w.hold(t, x, toolsCall(t, 1, "transfer", `{"amount":500,"to":"bob"}`))
	if _, err := w.q.Decide(ctx, w.pendingID(t), holdBob, queue.Approve, "", json.RawMessage(`{"amount":400,"to":"bob","memo":"card 4111 1111 1111 1111"}`)); err != nil {
		t.Fatal(err)
	}
	req := toolsCall(t, 2, "transfer", `{"amount":500,"to":"bob"}`)
	if v := w.hold(t, x, req); v.Forward == nil {
		t.Fatal("the edited call did not run")
	}
	resp, err := bridge.NewResult(req.ID, map[string]any{"content": []any{map[string]any{"type": "text", "text": "done"}}})
	if err != nil {
		t.Fatal(err)
	}
	out := w.a.Annotate(&bridge.Exchange{Session: x.Session, Request: req, Direction: bridge.FromUpstream}, resp)
	s := string(out.Result)
	if !strings.Contains(s, "bob@example.com changed the arguments") || strings.Contains(s, "4111 1111 1111 1111") || !strings.Contains(s, `\"amount\":400`) {
		t.Fatalf("note %s", s)
	}

	w.a.maxNotes = 3
	for i := range 10 {
		w.a.addNote(string(rune('a'+i)), "n")
	}
	if n := len(w.a.edited); n > 3 {
		t.Fatalf("%d notes kept, want at most 3", n)
	}
}

// TestHoldRefusesOverLimits: the queue's bounds reach the requester once,
// as a tool result, and are noted for the request's audit record.
func TestHoldRefusesOverLimits(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		opts queue.Options
		args []string
		want string
	}{
		{"pending per requester", queue.Options{MaxPendingPerRequester: 2}, []string{`{"amount":100}`, `{"amount":101}`, `{"amount":102}`}, "2 calls waiting for approval (the limit is 2)"},
		{"argument size", queue.Options{MaxArgsBytes: 32}, []string{`{"amount":100,"memo":"` + strings.Repeat("m", 40) + `"}`}, "over the 32-byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newHoldWorld(t, true)
			tt.opts.Now = func() time.Time { return now }
			q, err := queue.New(queue.NewMemStore(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			w.q = q
			w.a = NewApprovals(q, ApprovalsOptions{Clock: holdClock{now: now, fire: true}, Policy: w.pol})
			var last string
			var note *Note
			for i, args := range tt.args {
				ctx, n := withNote(context.Background())
				m := toolsCall(t, i+1, "transfer", args)
				v, err := w.a.Hold(ctx, holdExchange("s1"), m, w.pol.Decide(policyInput(holdExchange("s1"), m)))
				if err != nil {
					t.Fatal(err)
				}
				last, note = replyText(t, v), n
			}
			if !strings.Contains(last, tt.want) || note.Decision != "refused" || !strings.Contains(note.Reason, tt.want) {
				t.Fatalf("reply %q, note %+v; want %q", last, note, tt.want)
			}
		})
	}
}

// TestSharedRequestWithdrawnByLastWaiter: identical calls share one
// request; one cancelling leaves it pending for the other; the last
// cancelling withdraws it.
func TestSharedRequestWithdrawnByLastWaiter(t *testing.T) {
	w := newHoldWorld(t, false)
	ctx := context.Background()
	type held struct {
		cancel context.CancelFunc
		done   chan error
	}
	waiting := make(chan struct{}, 2)
	start := func(session string, id int) held {
		x := holdExchange(session)
		x.Notify = func(m *bridge.Message) {
			if m.Method == "notifications/message" {
				waiting <- struct{}{}
			}
		}
		m := toolsCall(t, id, "transfer", `{"amount":500,"to":"bob"}`)
		d := w.pol.Decide(policyInput(x, m))
		cctx, cancel := context.WithCancel(ctx)
		h := held{cancel: cancel, done: make(chan error, 1)}
		go func() {
			_, err := w.a.Hold(cctx, x, m, d)
			h.done <- err
		}()
		return h
	}
	h1 := start("s1", 1)
	<-waiting
	h2 := start("s2", 7)
	<-waiting
	id := w.pendingID(t)

	h1.cancel()
	if err := <-h1.done; !errors.Is(err, context.Canceled) {
		t.Fatalf("first waiter: %v", err)
	}
	if r, _ := w.q.Get(ctx, id); r.State != queue.StatePending {
		t.Fatalf("one of two waiters cancelling left the request %s", r.State)
	}
	h2.cancel()
	if err := <-h2.done; !errors.Is(err, context.Canceled) {
		t.Fatalf("second waiter: %v", err)
	}
	if r, _ := w.q.Get(ctx, id); r.State != queue.StateCancelled {
		t.Fatalf("the last waiter cancelling left the request %s", r.State)
	}
	w.a.mu.Lock()
	defer w.a.mu.Unlock()
	if len(w.a.waiting) != 0 || len(w.a.calls) != 0 {
		t.Fatalf("left behind: %d waiting, %d call locks", len(w.a.waiting), len(w.a.calls))
	}
}

// TestEditCheck: the reviewer API refuses at once an edit the running
// policy would not send to the same approve rule.
func TestEditCheck(t *testing.T) {
	w := newHoldWorld(t, true)
	cur := &atomic.Pointer[policy.Policy]{}
	check := EditCheck(cur)
	r := &queue.Request{Requester: queue.Requester{Subject: holdAlice.Subject, Email: holdAlice.Email, Groups: holdAlice.Groups},
		Server: "bank", Method: policy.MethodToolsCall, Tool: "transfer", Args: json.RawMessage(`{"amount":500}`), Rule: "review"}
	if err := check(context.Background(), r, json.RawMessage(`{"amount":1000000}`)); err != nil {
		t.Fatalf("with no policy loaded yet: %v", err)
	}
	cur.Store(w.pol)
	tests := []struct {
		name, rule, edit string
		want             string // part of the refusal; "" accepts
	}{
		{"same rule", "review", `{"amount":600}`, ""},
		{"denied", "review", `{"amount":1000000}`, `deny by rule "large"`},
		{"allowed", "review", `{"amount":1}`, `allow by rule "small"`},
		{"pin hold, same decision", PinRule, `{"amount":600}`, ""},
		{"pin hold, denied", PinRule, `{"amount":5000}`, `deny by rule "large", not approve by rule "review"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := *r
			rr.Rule = tt.rule
			err := check(context.Background(), &rr, json.RawMessage(tt.edit))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, queue.ErrEditRefused) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want ErrEditRefused with %q", err, tt.want)
			}
		})
	}
}
