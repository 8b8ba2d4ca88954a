package queue

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var (
	alice   = Reviewer{Subject: "u-alice", Email: "alice@example.com", Groups: []string{"engineering"}}
	bob     = Reviewer{Subject: "u-bob", Email: "bob@example.com", Groups: []string{"security-reviewers"}}
	carol   = Reviewer{Subject: "u-carol", Email: "carol@example.com", Groups: []string{"Security-Reviewers", "sre"}}
	mallory = Reviewer{Subject: "u-mallory", Email: "mallory@example.com", Groups: []string{"engineering"}}
)

// stores runs fn against a fresh MemStore and a fresh BoltStore.
func stores(t *testing.T, fn func(t *testing.T, s Store)) {
	t.Run("mem", func(t *testing.T) { fn(t, NewMemStore()) })
	t.Run("bolt", func(t *testing.T) {
		s, err := OpenBolt(filepath.Join(t.TempDir(), "bridge.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
}

func newQueue(t testing.TB, s Store, clk *fakeClock) *Queue {
	t.Helper()
	q, err := New(s, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// call is a request as the gateway would create it: alice calls
// github/create_pull_request, which needs security-reviewers.
func call(minApprovals int) *Request {
	return &Request{
		Requester:     Requester{Subject: alice.Subject, Email: alice.Email, Groups: alice.Groups},
		Server:        "github",
		Method:        policy.MethodToolsCall,
		Tool:          "create_pull_request",
		Args:          json.RawMessage(`{"repo":"prod-api","title":"fix"}`),
		PolicyVersion: "v1",
		Rule:          "writes-need-review",
		Approvers:     []string{"security-reviewers"},
		MinApprovals:  minApprovals,
		Timeout:       15 * time.Minute,
	}
}

func mustCreate(t testing.TB, q *Queue, r *Request) *Request {
	t.Helper()
	got, err := q.Create(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCreateFillsFields(t *testing.T) {
	clk := newClock()
	q := newQueue(t, NewMemStore(), clk)
	in := call(0)
	r := mustCreate(t, q, in)
	if !ValidID(r.ID) {
		t.Errorf("id %q is not a valid id", r.ID)
	}
	if r.State != StatePending || r.MinApprovals != 1 {
		t.Errorf("state %s min %d, want pending 1", r.State, r.MinApprovals)
	}
	if !r.Created.Equal(clk.Now()) || !r.Expires.Equal(clk.Now().Add(15*time.Minute)) {
		t.Errorf("created %v expires %v", r.Created, r.Expires)
	}
	if want := q.Digest(in.Args); r.ArgsDigest != want {
		t.Errorf("digest %s, want %s", r.ArgsDigest, want)
	}
	if in.ID != "" {
		t.Error("Create modified its input")
	}
	bad := call(1)
	bad.ArgsDigest = "0000"
	if _, err := q.Create(context.Background(), bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("mismatched digest: err %v, want ErrInvalid", err)
	}
	bad = call(1)
	bad.Approvers = nil
	if _, err := q.Create(context.Background(), bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("no approvers: err %v, want ErrInvalid", err)
	}
	bad = call(1)
	bad.Args = json.RawMessage("{\"a\":\"\x1b\"}")
	if _, err := q.Create(context.Background(), bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid JSON arguments: err %v, want ErrInvalid", err)
	}
	// The default timeout applies when the request gives none.
	def := call(1)
	def.Timeout = 0
	if r := mustCreate(t, q, def); !r.Expires.Equal(r.Created.Add(policy.DefaultTimeout)) {
		t.Errorf("default expiry %v", r.Expires)
	}
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id, err := newID(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !ValidID(id) || len(id) != 14 || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "apr_", "apr_ABCDEFGHIJ", "apr_abcdefghi1", "apr_abcdefghijk", "xyz_abcdefghij", "apr_abc/efghij"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

// TestStateMachine drives requests through sequences of operations.
func TestStateMachine(t *testing.T) {
	type step struct {
		op      string // approve:<who>, deny:<who>, cancel, claim, expire, advance
		wantErr error
		want    State
	}
	people := map[string]Reviewer{"alice": alice, "bob": bob, "carol": carol, "mallory": mallory}
	tests := []struct {
		name  string
		min   int
		steps []step
	}{
		{"approve then claim", 1, []step{{"approve:bob", nil, StateApproved}, {"claim", nil, StateExecuted}, {"claim", ErrAlreadyExecuted, StateExecuted}}},
		{"deny ends it", 2, []step{{"approve:bob", nil, StatePending}, {"deny:carol", nil, StateDenied}, {"approve:carol", ErrNotPending, StateDenied}, {"claim", ErrNotApproved, StateDenied}}},
		{"two approvals required", 2, []step{{"approve:bob", nil, StatePending}, {"claim", ErrNotApproved, StatePending}, {"approve:carol", nil, StateApproved}, {"claim", nil, StateExecuted}}},
		{"same person twice counts once", 2, []step{{"approve:bob", nil, StatePending}, {"approve:bob", ErrAlreadyReviewed, StatePending}, {"approve:carol", nil, StateApproved}}},
		{"self approval refused", 1, []step{{"approve:alice", ErrSelfReview, StatePending}, {"deny:alice", ErrSelfReview, StatePending}}},
		{"outsider refused", 1, []step{{"approve:mallory", ErrNotApprover, StatePending}, {"deny:mallory", ErrNotApprover, StatePending}}},
		{"cancel", 1, []step{{"cancel", nil, StateCancelled}, {"approve:bob", ErrNotPending, StateCancelled}, {"cancel", ErrNotPending, StateCancelled}}},
		{"pending expires", 1, []step{{"advance", nil, StatePending}, {"expire", nil, StateExpired}, {"approve:bob", ErrExpired, StateExpired}, {"claim", ErrExpired, StateExpired}}},
		{"decision after deadline expires it", 1, []step{{"advance", nil, StatePending}, {"approve:bob", ErrExpired, StateExpired}}},
		{"approved but unclaimed expires", 1, []step{{"approve:bob", nil, StateApproved}, {"advance", nil, StateApproved}, {"claim", ErrExpired, StateExpired}}},
		{"approved then ticker expires it", 1, []step{{"approve:bob", nil, StateApproved}, {"advance", nil, StateApproved}, {"expire", nil, StateExpired}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			q := newQueue(t, NewMemStore(), clk)
			r := mustCreate(t, q, call(tt.min))
			for i, st := range tt.steps {
				var err error
				switch op, who, _ := cut(st.op); op {
				case "approve", "deny":
					_, err = q.Decide(ctx, r.ID, people[who], Decision(op), "", nil)
				case "cancel":
					_, err = q.Cancel(ctx, r.ID, "client cancelled")
				case "claim":
					_, err = q.Claim(ctx, r.ID)
				case "expire":
					_, err = q.ExpireDue(ctx)
				case "advance":
					clk.Advance(16 * time.Minute)
				default:
					t.Fatalf("unknown op %q", op)
				}
				if !errors.Is(err, st.wantErr) || (err != nil) != (st.wantErr != nil) {
					t.Fatalf("step %d %s: err %v, want %v", i, st.op, err, st.wantErr)
				}
				got, err := q.Get(ctx, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.State != st.want {
					t.Fatalf("step %d %s: state %s, want %s", i, st.op, got.State, st.want)
				}
			}
		})
	}
}

func cut(s string) (string, string, bool) {
	for i := range s {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func TestSeparationOfDuties(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t, NewMemStore(), newClock())
	r := mustCreate(t, q, call(2))

	// The requester cannot approve, even when they hold an approver group.
	selfReviewer := alice
	selfReviewer.Groups = []string{"security-reviewers"}
	if _, err := q.Decide(ctx, r.ID, selfReviewer, Approve, "", nil); !errors.Is(err, ErrSelfReview) {
		t.Fatalf("self approval: %v", err)
	}
	// Nor under another subject with the same email.
	alias := Reviewer{Subject: "u-alice-2", Email: "ALICE@example.com", Groups: []string{"security-reviewers"}}
	if _, err := q.Decide(ctx, r.ID, alias, Approve, "", nil); !errors.Is(err, ErrSelfReview) {
		t.Fatalf("self approval by email: %v", err)
	}
	// Groups are those held at decision time: bob without the group is refused.
	exBob := bob
	exBob.Groups = []string{"engineering"}
	if _, err := q.Decide(ctx, r.ID, exBob, Approve, "", nil); !errors.Is(err, ErrNotApprover) {
		t.Fatalf("bob outside the group: %v", err)
	}
	got, err := q.Decide(ctx, r.ID, bob, Approve, "lgtm", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Approvals() != 1 || got.State != StatePending {
		t.Fatalf("after bob: %d approvals, %s", got.Approvals(), got.State)
	}
	if g := got.Reviews[0].Reviewer.Groups; len(g) != 1 || g[0] != "security-reviewers" {
		t.Errorf("review records groups %v, want the approver group that entitled it", g)
	}
	if _, err := q.Decide(ctx, r.ID, bob, Approve, "again", nil); !errors.Is(err, ErrAlreadyReviewed) {
		t.Fatalf("bob twice: %v", err)
	}
	got, _ = q.Get(ctx, r.ID)
	if got.Approvals() != 1 || len(got.Reviews) != 1 {
		t.Fatalf("a refused second approval was recorded: %+v", got.Reviews)
	}
	// Group match is case-insensitive, as in the policy engine.
	got, err = q.Decide(ctx, r.ID, carol, Approve, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateApproved || got.DecidedAt.IsZero() {
		t.Fatalf("after carol: %s", got.State)
	}
}

func TestUnknownAndMalformed(t *testing.T) {
	ctx := context.Background()
	stores(t, func(t *testing.T, s Store) {
		q := newQueue(t, s, newClock())
		for _, id := range []string{"apr_aaaaaaaaaa", "nope", "", "../../etc"} {
			if _, err := q.Get(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%q): %v", id, err)
			}
			if _, err := q.Decide(ctx, id, bob, Approve, "", nil); !errors.Is(err, ErrNotFound) {
				t.Errorf("Decide(%q): %v", id, err)
			}
			if _, err := q.Claim(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Claim(%q): %v", id, err)
			}
			if _, err := q.Cancel(ctx, id, ""); !errors.Is(err, ErrNotFound) {
				t.Errorf("Cancel(%q): %v", id, err)
			}
		}
		r := mustCreate(t, q, call(1))
		for _, tc := range []struct {
			d    Decision
			args string
		}{{"maybe", ""}, {Deny, `{"a":1}`}, {Approve, `[1]`}, {Approve, `{"a":1,"a":2}`}, {Approve, `{`}} {
			if _, err := q.Decide(ctx, r.ID, bob, tc.d, "", json.RawMessage(tc.args)); !errors.Is(err, ErrInvalid) {
				t.Errorf("Decide(%s, %s): %v, want ErrInvalid", tc.d, tc.args, err)
			}
		}
	})
}

func TestEditedArgs(t *testing.T) {
	ctx := context.Background()
	stores(t, func(t *testing.T, s Store) {
		q := newQueue(t, s, newClock())
		r := mustCreate(t, q, call(2))
		// Carol approves the original, then bob edits: carol's approval was
		// for other arguments and no longer counts.
		if _, err := q.Decide(ctx, r.ID, carol, Approve, "", nil); err != nil {
			t.Fatal(err)
		}
		edited := json.RawMessage(`{ "title": "fix", "repo": "staging-api" }`)
		got, err := q.Decide(ctx, r.ID, bob, Approve, "use staging", edited)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != StatePending || got.Approvals() != 1 {
			t.Fatalf("after edit: %s with %d approvals, want pending with 1", got.State, got.Approvals())
		}
		if string(got.EditedArgs) != `{"repo":"staging-api","title":"fix"}` {
			t.Errorf("edited args stored as %s, want canonical JSON", got.EditedArgs)
		}
		if got.EditedDigest != q.Digest(edited) || got.EditedBy == nil || got.EditedBy.Subject != bob.Subject {
			t.Errorf("edit not recorded: digest %s by %+v", got.EditedDigest, got.EditedBy)
		}
		if got.ArgsDigest != q.Digest(call(1).Args) {
			t.Error("the original digest changed")
		}
		// Carol approves the edited arguments: now two people approved them.
		got, err = q.Decide(ctx, r.ID, carol, Approve, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != StateApproved {
			t.Fatalf("state %s, want approved", got.State)
		}
		// The call is still found by its original digest; the claim runs
		// the edited arguments.
		found, err := q.FindForCall(ctx, alice.Subject, "github", "create_pull_request", r.ArgsDigest)
		if err != nil || found.ID != r.ID {
			t.Fatalf("FindForCall: %v %v", found, err)
		}
		claimed, err := q.Claim(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if string(claimed.EffectiveArgs()) != string(got.EditedArgs) {
			t.Errorf("claimed args %s, want the edited ones", claimed.EffectiveArgs())
		}
	})
}

func TestFindForCall(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	q, err := New(NewMemStore(), Options{Now: clk.Now, RecentWindow: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	find := func() (*Request, error) {
		return q.FindForCall(ctx, alice.Subject, "github", "create_pull_request", q.Digest(call(1).Args))
	}
	if _, err := find(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty queue: %v", err)
	}
	r1 := mustCreate(t, q, call(1))
	// Other calls do not match.
	other := call(1)
	other.Args = json.RawMessage(`{"repo":"prod-web"}`)
	mustCreate(t, q, other)
	if got, err := find(); err != nil || got.ID != r1.ID {
		t.Fatalf("pending: %v %v", got, err)
	}
	if _, err := q.FindForCall(ctx, bob.Subject, "github", "create_pull_request", r1.ArgsDigest); !errors.Is(err, ErrNotFound) {
		t.Errorf("another requester found alice's request: %v", err)
	}
	// Denied: returned while recent, so alice hears of it; then forgotten.
	if _, err := q.Decide(ctx, r1.ID, bob, Deny, "no", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := find(); err != nil || got.State != StateDenied {
		t.Fatalf("recently denied: %v %v", got, err)
	}
	clk.Advance(11 * time.Minute)
	if _, err := find(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("long denied: %v", err)
	}
	// A new request, approved and executed: the next identical call needs
	// a new approval.
	clk.Advance(time.Second)
	r2 := mustCreate(t, q, call(1))
	if _, err := q.Decide(ctx, r2.ID, bob, Approve, "", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := find(); err != nil || got.ID != r2.ID || got.State != StateApproved {
		t.Fatalf("approved: %v %v", got, err)
	}
	if _, err := q.Claim(ctx, r2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := find(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("executed: %v", err)
	}
	// A pending request past its deadline is expired on the way.
	clk.Advance(time.Second)
	r3 := mustCreate(t, q, call(1))
	clk.Advance(15 * time.Minute)
	got, err := find()
	if err != nil || got.ID != r3.ID || got.State != StateExpired {
		t.Fatalf("overdue: %v %v", got, err)
	}
}

func TestExpireDue(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	q := newQueue(t, NewMemStore(), clk)
	short := call(1)
	short.Timeout = time.Minute
	a := mustCreate(t, q, short)
	b := mustCreate(t, q, call(1)) // 15 minutes
	c := mustCreate(t, q, short)
	if _, err := q.Decide(ctx, c.ID, bob, Approve, "", nil); err != nil {
		t.Fatal(err)
	}
	if n, err := q.ExpireDue(ctx); err != nil || n != 0 {
		t.Fatalf("nothing due: %d %v", n, err)
	}
	clk.Advance(time.Minute) // exactly at the deadline: expired
	n, err := q.ExpireDue(ctx)
	if err != nil || n != 2 {
		t.Fatalf("ExpireDue = %d, %v; want 2", n, err)
	}
	for id, want := range map[string]State{a.ID: StateExpired, b.ID: StatePending, c.ID: StateExpired} {
		if got, _ := q.Get(ctx, id); got.State != want {
			t.Errorf("%s: %s, want %s", id, got.State, want)
		}
	}
	if n, _ := q.ExpireDue(ctx); n != 0 {
		t.Errorf("second run expired %d", n)
	}
}

func TestRestartSurvival(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bridge.db")
	clk := newClock()
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	q := newQueue(t, s, clk)
	r := mustCreate(t, q, call(2))
	if _, err := q.Decide(ctx, r.ID, bob, Approve, "one of two", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q = newQueue(t, s, clk)
	got, err := q.FindForCall(ctx, alice.Subject, "github", "create_pull_request", r.ArgsDigest)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != r.ID || got.State != StatePending || got.Approvals() != 1 || got.Reviews[0].Comment != "one of two" {
		t.Fatalf("after reopen: %+v", got)
	}
	if !got.Expires.Equal(r.Expires) || string(got.Args) != string(r.Args) {
		t.Errorf("fields changed across restart: %+v", got)
	}
	if _, err := q.Decide(ctx, r.ID, bob, Approve, "", nil); !errors.Is(err, ErrAlreadyReviewed) {
		t.Errorf("bob again after restart: %v", err)
	}
	if _, err := q.Decide(ctx, r.ID, carol, Approve, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Claim(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
}

// TestSharedBoltDB checks that the store lives beside other buckets.
func TestSharedBoltDB(t *testing.T) {
	s, err := OpenBolt(filepath.Join(t.TempDir(), "bridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s2, err := NewBoltStore(s.db) // as the gateway would, on its own *bbolt.DB
	if err != nil {
		t.Fatal(err)
	}
	q := newQueue(t, s2, newClock())
	r := mustCreate(t, q, call(1))
	if _, err := s.Get(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), r.ID); err != nil {
		t.Fatalf("closing a store on a shared DB closed the DB: %v", err)
	}
}

func TestClaimExactlyOnce(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		q := newQueue(t, s, newClock())
		r := mustCreate(t, q, call(1))
		if _, err := q.Decide(ctx, r.ID, bob, Approve, "", nil); err != nil {
			t.Fatal(err)
		}
		const n = 32
		var ok, already atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				// Each retry finds the request as the gateway would, then claims it.
				found, err := q.FindForCall(ctx, alice.Subject, "github", "create_pull_request", r.ArgsDigest)
				if err != nil {
					if errors.Is(err, ErrNotFound) { // already executed
						already.Add(1)
						return
					}
					t.Error(err)
					return
				}
				_, err = q.Claim(ctx, found.ID)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrAlreadyExecuted):
					already.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 || already.Load() != n-1 {
			t.Fatalf("%d claims succeeded and %d were refused; want 1 and %d", ok.Load(), already.Load(), n-1)
		}
	})
}

func TestConcurrentDecisionsCountOnce(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		q := newQueue(t, s, newClock())
		r := mustCreate(t, q, call(2))
		var wg sync.WaitGroup
		var ok atomic.Int32
		for range 16 {
			wg.Go(func() {
				if _, err := q.Decide(ctx, r.ID, bob, Approve, "", nil); err == nil {
					ok.Add(1)
				} else if !errors.Is(err, ErrAlreadyReviewed) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, _ := q.Get(ctx, r.ID)
		if ok.Load() != 1 || got.State != StatePending || got.Approvals() != 1 {
			t.Fatalf("%d accepted, state %s, approvals %d", ok.Load(), got.State, got.Approvals())
		}
	})
}

func TestEventsAndWait(t *testing.T) {
	ctx := t.Context()
	q := newQueue(t, NewMemStore(), newClock())
	ch := q.Subscribe(ctx)
	r := mustCreate(t, q, call(2))

	done := make(chan *Request)
	go func() {
		got, err := q.Wait(ctx, r.ID)
		if err != nil {
			t.Error(err)
		}
		done <- got
	}()
	if _, err := q.Decide(ctx, r.ID, bob, Approve, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Decide(ctx, r.ID, carol, Deny, "", nil); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got.State != StateDenied {
		t.Fatalf("Wait returned %s", got.State)
	}
	var types []EventType
	for range 3 {
		ev := <-ch
		types = append(types, ev.Type)
		if ev.Request.ID != r.ID || ev.Seq == 0 {
			t.Errorf("event %+v", ev)
		}
	}
	if want := []EventType{EventCreated, EventReviewed, EventDenied}; !equalTypes(types, want) {
		t.Errorf("events %v, want %v", types, want)
	}
	// Wait on a request already decided returns at once.
	if got, err := q.Wait(ctx, r.ID); err != nil || got.State != StateDenied {
		t.Errorf("Wait on decided: %v %v", got, err)
	}
	// Wait honours its context.
	r2 := mustCreate(t, q, call(1))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := q.Wait(cctx, r2.ID); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a cancelled context: %v", err)
	}
}

func equalTypes(a, b []EventType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	ctx := t.Context()
	q, err := New(NewMemStore(), Options{Now: newClock().Now, MaxPendingPerRequester: subscriberBuffer + 1})
	if err != nil {
		t.Fatal(err)
	}
	ch := q.Subscribe(ctx) // never read
	for range subscriberBuffer + 1 {
		mustCreate(t, q, call(1)) // must not block
	}
	n := 0
	for range ch {
		n++
	}
	if n != subscriberBuffer {
		t.Fatalf("got %d buffered events before the close, want %d", n, subscriberBuffer)
	}
}
