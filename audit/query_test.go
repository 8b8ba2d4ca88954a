package audit

import (
	"context"
	"errors"
	"testing"
	"time"
)

func queryFixture(t *testing.T) Store {
	s := NewMemStore()
	l, _ := Open(s, Options{Now: testClock()})
	defer l.Close()
	ctx := context.Background()
	add := func(r Record) { l.Append(ctx, &r) }
	alice := Identity{Subject: "00u1", Email: "Alice@Example.com"}
	bob := Identity{Subject: "00u2", Email: "bob@example.com"}
	add(Record{Kind: KindSessionStart, Session: "s1", Identity: alice})
	add(Record{Kind: KindDecision, Session: "s1", Identity: alice, Server: "github", Tool: "get_issue", Decision: DecisionAllow})
	add(Record{Kind: KindDecision, Session: "s1", Identity: alice, Server: "warehouse", Tool: "execute_sql", Decision: DecisionDeny})
	add(Record{Kind: KindDecision, Session: "s2", Identity: bob, Server: "github", Tool: "create_pr", Decision: DecisionApprove})
	add(Record{Kind: KindDecision, Session: "s2", Identity: bob, Server: "github", Tool: "get_issue", Decision: DecisionAllow})
	return s
}

func seqsOf(recs []Record) []uint64 {
	out := []uint64{}
	for _, r := range recs {
		out = append(out, r.Seq)
	}
	return out
}

func TestQueryFilters(t *testing.T) {
	s := queryFixture(t)
	ctx := context.Background()
	all, _ := Query(ctx, s, Filter{})
	t3 := all[2].Time
	cases := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"all", Filter{}, []uint64{1, 2, 3, 4, 5}},
		{"user by email, any case", Filter{User: "alice@example.com"}, []uint64{1, 2, 3}},
		{"user by subject", Filter{User: "00u2"}, []uint64{4, 5}},
		{"server", Filter{Server: "github"}, []uint64{2, 4, 5}},
		{"tool and decision", Filter{Tool: "get_issue", Decision: DecisionAllow}, []uint64{2, 5}},
		{"kind", Filter{Kind: KindSessionStart}, []uint64{1}},
		{"since/until", Filter{Since: t3, Until: t3.Add(2 * time.Millisecond)}, []uint64{3, 4}},
		{"after cursor", Filter{After: 3}, []uint64{4, 5}},
		{"limit oldest", Filter{Limit: 2}, []uint64{1, 2}},
		{"limit newest", Filter{Limit: 2, Newest: true}, []uint64{4, 5}},
		{"limit newest wraps", Filter{Limit: 3, Newest: true, Server: "github"}, []uint64{2, 4, 5}},
		{"matches nothing", Filter{User: "mallory", Server: "github"}, []uint64{}},
		{"nothing in range", Filter{Since: t3.Add(time.Hour)}, []uint64{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Query(ctx, s, c.f)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("no match must be an empty slice, not nil")
			}
			if g := seqsOf(got); !equalSeqs(g, c.want) {
				t.Fatalf("got %v, want %v", g, c.want)
			}
		})
	}
	for _, bad := range []Filter{{Kind: "nope"}, {Limit: -1}, {Since: t3, Until: t3}} {
		if _, err := Query(ctx, s, bad); err == nil {
			t.Errorf("filter %+v accepted", bad)
		}
	}
}

func equalSeqs(a, b []uint64) bool {
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

func TestSessionAndLookup(t *testing.T) {
	s := queryFixture(t)
	ctx := context.Background()
	recs, err := Session(ctx, s, "s2")
	if err != nil || !equalSeqs(seqsOf(recs), []uint64{4, 5}) {
		t.Fatalf("session s2: %v %v", seqsOf(recs), err)
	}
	for _, id := range []string{"nope", ""} {
		_, err := Session(ctx, s, id)
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown session %q: %v, want ErrNotFound", id, err)
		}
	}
	if _, err := Get(ctx, s, 99); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(99): %v", err)
	}
	if r, err := Lookup(ctx, s, "3"); err != nil || r[0].Seq != 3 {
		t.Fatalf("Lookup(3): %v %v", r, err)
	}
	if _, err := Lookup(ctx, s, "apr-unknown"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Lookup(unknown): %v", err)
	}
}
