package queue

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
)

// writeV1 writes requests the way a format 1 store kept them: unkeyed
// digests, no digest key, no deadline index.
func writeV1(t *testing.T, path string, rs ...*Request) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		top, _ := tx.CreateBucket([]byte(bucketApprovals))
		_ = top.Put([]byte(keyFormat), []byte(formatV1))
		reqs, _ := top.CreateBucket([]byte(bucketRequests))
		calls, _ := top.CreateBucket([]byte(bucketCalls))
		for _, r := range rs {
			v, _ := json.Marshal(r)
			if err := reqs.Put([]byte(r.ID), v); err != nil {
				return err
			}
			if err := calls.Put(callIndexKey(r), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func v1Request(id, args string, state State, created time.Time) *Request {
	r := call(1)
	r.ID, r.Args, r.ArgsDigest, r.State = id, json.RawMessage(args), policy.ArgsDigest([]byte(args)), state
	r.Created, r.Expires, r.MinApprovals = created, created.Add(15*time.Minute), 1
	return r
}

func TestMigrateFromFormat1(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	now := clk.Now()
	pending := v1Request("apr_aaaaaaaaaa", `{"title": "fix", "repo": "prod-api"}`, StatePending, now)
	approved := v1Request("apr_bbbbbbbbbb", `{"repo":"prod-api","title":"two"}`, StateApproved, now)
	editedArgs := `{"repo":"prod-api","title":"edited"}`
	approved.EditedArgs, approved.EditedDigest = json.RawMessage(editedArgs), policy.ArgsDigest([]byte(editedArgs))
	approved.EditedBy = &Reviewer{Subject: bob.Subject}
	approved.Reviews = []Review{
		{Reviewer: Reviewer{Subject: carol.Subject}, Decision: Approve, ArgsDigest: approved.ArgsDigest, Time: now},
		{Reviewer: Reviewer{Subject: bob.Subject}, Decision: Approve, ArgsDigest: approved.EditedDigest, Time: now},
	}
	ambiguous := v1Request("apr_cccccccccc", `{"repo":"prod-api","repo":"other"}`, StatePending, now)
	done := v1Request("apr_dddddddddd", `{"repo":"x"}`, StateExecuted, now.Add(-time.Hour))

	path := filepath.Join(t.TempDir(), "bridge.db")
	writeV1(t, path, pending, approved, ambiguous, done)
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	q := newQueue(t, s, clk)

	tests := []struct {
		name      string
		id        string
		state     State
		approvals int
		args      string
	}{
		{"pending stays pending, found by the keyed digest", pending.ID, StatePending, 0, `{"repo":"prod-api","title":"fix"}`},
		{"approved keeps its approval of the edit", approved.ID, StateApproved, 1, `{"repo":"prod-api","title":"two"}`},
		{"ambiguous arguments are withdrawn", ambiguous.ID, StateCancelled, 0, `{"repo":"prod-api","repo":"other"}`},
		{"final requests are kept", done.ID, StateExecuted, 0, `{"repo":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := q.Get(ctx, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != tt.state || r.Approvals() != tt.approvals || string(r.Args) != tt.args {
				t.Fatalf("state %s approvals %d args %s; want %s %d %s", r.State, r.Approvals(), r.Args, tt.state, tt.approvals, tt.args)
			}
			if !policy.IsKeyedDigest(r.ArgsDigest) || (r.EditedDigest != "" && !policy.IsKeyedDigest(r.EditedDigest)) {
				t.Fatalf("digests not keyed: %s %s", r.ArgsDigest, r.EditedDigest)
			}
			for _, rv := range r.Reviews {
				if !policy.IsKeyedDigest(rv.ArgsDigest) {
					t.Fatalf("review digest not keyed: %s", rv.ArgsDigest)
				}
			}
		})
	}
	if r, _ := q.Get(ctx, ambiguous.ID); !strings.Contains(r.CancelReason, "cannot be read strictly") {
		t.Errorf("cancel reason %q", r.CancelReason)
	}
	found, err := q.FindForCall(ctx, alice.Subject, "github", "create_pull_request", q.Digest([]byte(`{"repo":"prod-api","title":"fix"}`)))
	if err != nil || found.ID != pending.ID {
		t.Fatalf("the identical call after the upgrade: %v, %v", found, err)
	}
	claimed, err := q.Claim(ctx, approved.ID)
	if err != nil || string(claimed.EffectiveArgs()) != editedArgs {
		t.Fatalf("claim after the upgrade: %v, %v", claimed, err)
	}
	if live, _ := s.Live(ctx, time.Time{}); len(live) != 1 || live[0].ID != pending.ID {
		t.Fatalf("live index after migration: %+v", live)
	}
	s.Close()

	// Reopening does not migrate again, and keeps the key.
	s2, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	q2 := newQueue(t, s2, clk)
	if found, err := q2.FindForCall(ctx, alice.Subject, "github", "create_pull_request", q2.Digest([]byte(`{"title":"fix","repo":"prod-api"}`))); err != nil || found.ID != pending.ID {
		t.Fatalf("after reopening: %v, %v", found, err)
	}
}

func TestOpenRefusesUnknownFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error {
		top, _ := tx.CreateBucket([]byte(bucketApprovals))
		return top.Put([]byte(keyFormat), []byte("3"))
	})
	db.Close()
	if _, err := OpenBolt(path); err == nil || !strings.Contains(err.Error(), `unknown format "3"`) {
		t.Fatalf("format 3: %v", err)
	}
}
