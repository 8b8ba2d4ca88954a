package queue

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseDecisionBody checks that no body crashes the parser, that every
// accepted body is well-formed, and that every refusal is a user-safe
// ErrInvalid; accepted bodies then go through Decide.
func FuzzParseDecisionBody(f *testing.F) {
	for _, s := range []string{
		`{"decision":"approve"}`,
		`{"decision":"deny","comment":"no"}`,
		`{"decision":"approve","comment":"edited","edited_args":{"repo":"x","n":[1,2.5e3,null]}}`,
		`{"decision":"approve","edited_args":null}`,
		`{"decision":"approve","edited_args":{"a":1,"a":2}}`,
		`{"decision":"deny","edited_args":{}}`,
		`{"decision":"approve"} {}`,
		`{"decision":"approve","x":1}`,
		`[]`, `null`, ``, `{"decision":"\u0061pprove"}`,
	} {
		f.Add([]byte(s))
	}
	q, err := New(NewMemStore(), Options{Now: newClock().Now})
	if err != nil {
		f.Fatal(err)
	}
	r, err := q.Create(context.Background(), call(1))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseDecisionBody(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("refusal %v is not ErrInvalid", err)
			}
			return
		}
		if b.Decision != Approve && b.Decision != Deny {
			t.Fatalf("accepted decision %q", b.Decision)
		}
		if len(b.Comment) > MaxCommentLen {
			t.Fatal("accepted an over-long comment")
		}
		if len(b.EditedArgs) > 0 && (b.Decision != Approve || !json.Valid(b.EditedArgs)) {
			t.Fatalf("accepted edited_args %q with %s", b.EditedArgs, b.Decision)
		}
		// Decide may refuse what the strict canonicaliser rejects, or a
		// request already decided by an earlier input, but only with a
		// user-safe refusal.
		if _, err := q.Decide(context.Background(), r.ID, carol, b.Decision, b.Comment, b.EditedArgs); err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decide: internal error %v", err)
			}
		}
	})
}
