package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// argsCall is call(1) with other arguments.
func argsCall(args string) *Request {
	r := call(1)
	r.Args = json.RawMessage(args)
	return r
}

func TestPendingPerRequester(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		clk := newClock()
		q, err := New(s, Options{Now: clk.Now, MaxPendingPerRequester: 3})
		if err != nil {
			t.Fatal(err)
		}
		var first *Request
		for i := range 3 {
			r := mustCreate(t, q, argsCall(fmt.Sprintf(`{"n":%d}`, i)))
			if i == 0 {
				first = r
			}
		}
		_, err = q.Create(ctx, argsCall(`{"n":3}`))
		var qe *Error
		if !errors.Is(err, ErrLimit) || !errors.As(err, &qe) || !strings.Contains(qe.Message, "3 calls waiting for approval (the limit is 3)") {
			t.Fatalf("fourth pending request: %v, want ErrLimit naming the limit", err)
		}
		// Another requester is not disturbed.
		other := argsCall(`{"n":3}`)
		other.Requester = Requester{Subject: mallory.Subject, Email: mallory.Email}
		mustCreate(t, q, other)
		// Deciding one frees a place; approved requests do not count.
		if _, err := q.Decide(ctx, first.ID, bob, Approve, "", nil); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, q, argsCall(`{"n":3}`))
		if _, err := q.Create(ctx, argsCall(`{"n":4}`)); !errors.Is(err, ErrLimit) {
			t.Fatalf("over the limit again: %v", err)
		}
		// Expired requests free their places too.
		clk.Advance(16 * time.Minute)
		if n, err := q.ExpireDue(ctx); err != nil || n != 5 {
			t.Fatalf("ExpireDue = %d, %v; want 5", n, err)
		}
		mustCreate(t, q, argsCall(`{"n":4}`))
	})
}

func TestPendingLimitUnderConcurrency(t *testing.T) {
	q, err := New(NewMemStore(), Options{Now: newClock().Now, MaxPendingPerRequester: 5})
	if err != nil {
		t.Fatal(err)
	}
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_, err := q.Create(context.Background(), argsCall(fmt.Sprintf(`{"n":%d}`, i)))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrLimit):
				refused.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 5 || refused.Load() != 15 {
		t.Fatalf("%d created and %d refused, want 5 and 15", ok.Load(), refused.Load())
	}
}

func TestArgumentSizeLimit(t *testing.T) {
	ctx := context.Background()
	q, err := New(NewMemStore(), Options{Now: newClock().Now, MaxArgsBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	big := `{"s":"` + strings.Repeat("x", 64) + `"}`
	tests := []struct {
		name string
		args string
		err  error
	}{
		{"small", `{"s":"x"}`, nil},
		{"spaces do not count", `{ "s" :   "` + strings.Repeat("x", 50) + `"   }`, nil},
		{"too large", big, ErrLimit},
		{"duplicate names", `{"s":1,"s":2}`, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := q.Create(ctx, argsCall(tt.args))
			if !errors.Is(err, tt.err) && (err != nil || tt.err != nil) {
				t.Fatalf("Create: %v, want %v", err, tt.err)
			}
		})
	}
	r := mustCreate(t, q, argsCall(`{"s":"y"}`))
	if _, err := q.Decide(ctx, r.ID, bob, Approve, "", json.RawMessage(big)); !errors.Is(err, ErrLimit) {
		t.Fatalf("oversized edit: %v, want ErrLimit", err)
	}
}

// countingStore counts the reads that decode requests.
type countingStore struct {
	Store
	gets, lists atomic.Int32
}

func (c *countingStore) Get(ctx context.Context, id string) (*Request, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, id)
}

func (c *countingStore) List(ctx context.Context, f Filter) ([]*Request, error) {
	c.lists.Add(1)
	return c.Store.List(ctx, f)
}

func TestExpireDueReadsOnlyTheIndex(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		clk := newClock()
		cs := &countingStore{Store: s}
		q, err := New(cs, Options{Now: clk.Now, MaxPendingPerRequester: 100})
		if err != nil {
			t.Fatal(err)
		}
		var early []string
		for i := range 40 {
			r := argsCall(fmt.Sprintf(`{"n":%d}`, i))
			if i%4 == 0 {
				r.Timeout = 5 * time.Minute
			}
			got := mustCreate(t, q, r)
			if i%4 == 0 {
				early = append(early, got.ID)
			}
		}
		cs.gets.Store(0)
		cs.lists.Store(0)
		if n, err := q.ExpireDue(ctx); err != nil || n != 0 {
			t.Fatalf("nothing due: %d, %v", n, err)
		}
		if cs.gets.Load() != 0 || cs.lists.Load() != 0 {
			t.Fatalf("a sweep with nothing due read %d requests and listed %d times", cs.gets.Load(), cs.lists.Load())
		}
		clk.Advance(6 * time.Minute)
		if n, err := q.ExpireDue(ctx); err != nil || n != len(early) {
			t.Fatalf("ExpireDue = %d, %v; want %d", n, err, len(early))
		}
		if cs.lists.Load() != 0 {
			t.Fatal("the sweep listed requests")
		}
		for _, id := range early {
			if r, _ := q.Get(ctx, id); r.State != StateExpired {
				t.Errorf("%s is %s, want expired", id, r.State)
			}
		}
		live, err := s.Live(ctx, time.Time{})
		if err != nil || len(live) != 30 {
			t.Fatalf("live index: %d entries, %v; want 30", len(live), err)
		}
		for i := 1; i < len(live); i++ {
			if live[i].Expires.Before(live[i-1].Expires) {
				t.Fatal("live index not ordered by deadline")
			}
		}
	})
}

func TestDigestsAreKeyed(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		q := newQueue(t, s, newClock())
		r := mustCreate(t, q, argsCall(`{"b":2,"a":1}`))
		if !strings.HasPrefix(r.ArgsDigest, "hmac-sha256:") || string(r.Args) != `{"a":1,"b":2}` {
			t.Fatalf("stored %s with digest %s", r.Args, r.ArgsDigest)
		}
		tests := []struct {
			name  string
			args  string
			found bool
		}{
			{"same arguments, another order", `{ "a": 1, "b": 2 }`, true},
			{"escaped the same", `{"\u0061":1,"b":2}`, true},
			{"another value", `{"a":1000000,"b":2}`, false},
			{"a decoy member", `{"a":1,"b":2,"A":1000000}`, false},
			{"a float literal", `{"a":1.0,"b":2}`, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := q.FindForCall(ctx, alice.Subject, "github", "create_pull_request", q.Digest([]byte(tt.args)))
				if tt.found != (err == nil && got.ID == r.ID) {
					t.Fatalf("found = %v (%v), want %v", err == nil, err, tt.found)
				}
			})
		}
	})
}

func TestBoltDigestKeyPersists(t *testing.T) {
	path := t.TempDir() + "/bridge.db"
	digest := func() string {
		s, err := OpenBolt(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		q := newQueue(t, s, newClock())
		return q.Digest([]byte(`{"a":1}`))
	}
	first, second := digest(), digest()
	if first != second {
		t.Fatal("the digest key changed across a reopen")
	}
	other, err := OpenBolt(t.TempDir() + "/other.db")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if newQueue(t, other, newClock()).Digest([]byte(`{"a":1}`)) == first {
		t.Fatal("two installations share a digest key")
	}
}

func TestRevoke(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		q := newQueue(t, s, newClock())
		r := mustCreate(t, q, call(1))
		if _, err := q.Revoke(ctx, r.ID, "x"); !errors.Is(err, ErrNotApproved) {
			t.Fatalf("revoking a pending request: %v", err)
		}
		if _, err := q.Decide(ctx, r.ID, bob, Approve, "", json.RawMessage(`{"repo":"prod-api","title":"other"}`)); err != nil {
			t.Fatal(err)
		}
		got, err := q.Revoke(ctx, r.ID, "the edited call is denied by policy")
		if err != nil || got.State != StateCancelled || got.CancelReason != "the edited call is denied by policy" {
			t.Fatalf("Revoke = %+v, %v", got, err)
		}
		if _, err := q.Claim(ctx, r.ID); !errors.Is(err, ErrNotApproved) {
			t.Fatalf("claiming a revoked request: %v", err)
		}
		if live, _ := s.Live(ctx, time.Time{}); len(live) != 0 {
			t.Fatalf("a revoked request is still live: %+v", live)
		}
	})
}

func TestCheckEdit(t *testing.T) {
	ctx := context.Background()
	var asked []string
	q, err := New(NewMemStore(), Options{Now: newClock().Now, CheckEdit: func(_ context.Context, r *Request, edited json.RawMessage) error {
		asked = append(asked, string(edited))
		if strings.Contains(string(edited), "prod") {
			return ErrEditRefused.With("no prod")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := mustCreate(t, q, argsCall(`{"repo":"dev","title":"x"}`))
	if _, err := q.Decide(ctx, r.ID, bob, Approve, "", json.RawMessage(`{ "title":"x", "repo":"prod" }`)); !errors.Is(err, ErrEditRefused) {
		t.Fatalf("refused edit: %v", err)
	}
	if got, _ := q.Get(ctx, r.ID); len(got.Reviews) != 0 || got.EditedDigest != "" {
		t.Fatalf("a refused edit was recorded: %+v", got)
	}
	// The original arguments "edited" back are no edit and not asked about.
	if _, err := q.Decide(ctx, r.ID, bob, Approve, "", json.RawMessage(`{"title":"x","repo":"dev"}`)); err != nil {
		t.Fatal(err)
	}
	if strings.Join(asked, " ") != `{"repo":"prod","title":"x"}` {
		t.Fatalf("CheckEdit was asked about %q (canonical edits only, once)", asked)
	}
}
