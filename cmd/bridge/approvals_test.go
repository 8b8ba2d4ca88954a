package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-3f9f6f16/bridge/approval/queue"
	"github.com/seed-3f9f6f16/bridge/auth"
)

func TestApprovalsFlags(t *testing.T) {
	tests := []struct {
		args    []string
		want    ApprovalsOptions
		wantErr bool
	}{
		{args: []string{"list"}, want: ApprovalsOptions{Action: "list", State: "pending", Output: "table"}},
		{args: []string{"list", "--state", "all", "-o", "json", "--limit", "5"}, want: ApprovalsOptions{Action: "list", State: "all", Output: "json", Limit: 5}},
		{args: []string{"show", "apr_abcdefghij", "--gateway", "https://gw.example"}, want: ApprovalsOptions{Action: "show", State: "pending", ID: "apr_abcdefghij", Output: "table", Gateway: "https://gw.example"}},
		{args: []string{"approve", "apr_abcdefghij", "--comment", "ok", "--edit-args", "args.json"}, want: ApprovalsOptions{Action: "approve", State: "pending", ID: "apr_abcdefghij", Output: "table", Comment: "ok", EditArgs: "args.json"}},
		{args: []string{"deny", "apr_abcdefghij", "--comment", "no", "-o", "json"}, want: ApprovalsOptions{Action: "deny", State: "pending", ID: "apr_abcdefghij", Output: "json", Comment: "no"}},
		{args: []string{"watch", "-o", "json"}, want: ApprovalsOptions{Action: "watch", State: "pending", Output: "json"}},
		{args: []string{"show"}, wantErr: true},
		{args: []string{"approve", "a", "b"}, wantErr: true},
		{args: []string{"approve", "not-an-id"}, wantErr: true},
		{args: []string{"deny", "apr_abcdefghij", "--edit-args", "f"}, wantErr: true},
		{args: []string{"list", "-o", "yaml"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var got *ApprovalsOptions
			root := NewCmdApprovals(&Factory{}, func(_ context.Context, o *ApprovalsOptions) error {
				got = o
				return nil
			})
			root.SetArgs(tt.args)
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			err := root.Execute()
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error; options %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.F = nil
			if *got != tt.want {
				t.Errorf("options %+v, want %+v", *got, tt.want)
			}
		})
	}
}

// approvalsPeople are the test users, named by their bearer token.
var approvalsPeople = map[string]queue.Reviewer{
	"alice": {Subject: "u-alice", Email: "alice@example.com", Groups: []string{"engineering"}},
	"bob":   {Subject: "u-bob", Email: "bob@example.com", Groups: []string{"security-reviewers"}},
	"carol": {Subject: "u-carol", Email: "carol@example.com", Groups: []string{"security-reviewers"}},
	"eve":   {Subject: "u-eve", Email: "eve@example.com", Groups: []string{"engineering"}},
}

type approvalsEnv struct {
	q   *queue.Queue
	srv *httptest.Server
	now time.Time
}

// newApprovalsEnv runs the reviewer API on an in-memory queue behind a fake
// authentication where the bearer token names the person.
func newApprovalsEnv(t *testing.T) *approvalsEnv {
	t.Helper()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	q, err := queue.New(queue.NewMemStore(), queue.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	identify := func(r *http.Request) (queue.Reviewer, bool) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		p, ok := approvalsPeople[tok]
		return p, ok
	}
	srv := httptest.NewServer(queue.NewHandler(q, identify, queue.HandlerOptions{}))
	t.Cleanup(srv.Close)
	return &approvalsEnv{q: q, srv: srv, now: now}
}

func (e *approvalsEnv) create(t *testing.T, min int) *queue.Request {
	t.Helper()
	a := approvalsPeople["alice"]
	r, err := e.q.Create(context.Background(), &queue.Request{
		Requester: queue.Requester{Subject: a.Subject, Email: a.Email},
		Server:    "github", Tool: "create_pull_request", Method: "tools/call",
		Args:          json.RawMessage(`{"repo":"prod-api","title":"fix \u001b[31mred"}`),
		Rule:          "writes-need-review",
		Approvers:     []string{"security-reviewers"},
		MinApprovals:  min,
		Justification: "hotfix\u202e for the outage",
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// opts returns options for a run as the named user, with its output.
func (e *approvalsEnv) opts(t *testing.T, who, action, id string) (*ApprovalsOptions, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	env := map[string]string{auth.TokenEnv: who, "BRIDGE_HOME": t.TempDir()}
	f := &Factory{
		IO:         IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut},
		Getenv:     func(k string) string { return env[k] },
		LookupEnv:  func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Now:        func() time.Time { return e.now },
		HTTPClient: e.srv.Client,
	}
	return &ApprovalsOptions{F: f, Gateway: e.srv.URL, Output: "table", Action: action, ID: id, State: "pending"}, out, errOut
}

func approvalsExit(err error) ExitCode {
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	if err == nil {
		return ExitOK
	}
	return ExitError
}

func TestApprovalsListAndShow(t *testing.T) {
	e := newApprovalsEnv(t)
	r := e.create(t, 2)
	ctx := context.Background()

	o, out, _ := e.opts(t, "bob", "list", "")
	if err := approvalsRun(ctx, o); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ID", "EXPIRES", r.ID, "pending", "alice@example.com", "github/create_pull_request", "0/2", "in 15m0s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}

	o, out, _ = e.opts(t, "bob", "list", "")
	o.Output = "json"
	if err := approvalsRun(ctx, o); err != nil {
		t.Fatal(err)
	}
	var lr queue.ListResponse
	if err := json.Unmarshal(out.Bytes(), &lr); err != nil || len(lr.Approvals) != 1 || lr.Approvals[0].ID != r.ID {
		t.Fatalf("list -o json: %v %s", err, out)
	}

	o, out, errOut := e.opts(t, "eve", "list", "") // not an approver: sees nothing
	if err := approvalsRun(ctx, o); err != nil || out.Len() != 0 || !strings.Contains(errOut.String(), "No pending") {
		t.Errorf("eve's list: %v %q %q", err, out, errOut)
	}

	o, out, _ = e.opts(t, "bob", "show", r.ID)
	if err := approvalsRun(ctx, o); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{r.ID, "writes-need-review", `"repo": "prod-api"`, "bridge approvals approve " + r.ID, `hotfix\u202e`} {
		if !strings.Contains(text, want) {
			t.Errorf("show lacks %q:\n%s", want, text)
		}
	}
	if strings.ContainsAny(text, "\u001b\u202e") {
		t.Errorf("show printed raw control characters:\n%q", text)
	}

	o, _, _ = e.opts(t, "eve", "show", r.ID)
	if err := approvalsRun(ctx, o); approvalsExit(err) != ExitNotFound {
		t.Errorf("eve's show: %v (exit %d), want exit %d", err, approvalsExit(err), ExitNotFound)
	}
	o, _, _ = e.opts(t, "bob", "show", "apr_aaaaaaaaaa")
	if err := approvalsRun(ctx, o); approvalsExit(err) != ExitNotFound {
		t.Errorf("unknown id: %v (exit %d)", err, approvalsExit(err))
	}
	o, _, _ = e.opts(t, "mallet", "list", "") // a token the gateway refuses
	err := approvalsRun(ctx, o)
	if approvalsExit(err) != ExitAuth || !errors.Is(err, auth.ErrNotLoggedIn) || !strings.Contains(err.Error(), auth.TokenEnv) {
		t.Errorf("refused token: %v (exit %d)", err, approvalsExit(err))
	}
}

func TestApprovalsDecide(t *testing.T) {
	e := newApprovalsEnv(t)
	r := e.create(t, 2)
	ctx := context.Background()

	o, _, _ := e.opts(t, "alice", "approve", r.ID)
	if err := approvalsRun(ctx, o); approvalsExit(err) != ExitRefused || !strings.Contains(err.Error(), "your own") {
		t.Errorf("self approval: %v (exit %d)", err, approvalsExit(err))
	}
	o, _, _ = e.opts(t, "eve", "approve", r.ID)
	if err := approvalsRun(ctx, o); approvalsExit(err) != ExitRefused {
		t.Errorf("outsider: %v (exit %d)", err, approvalsExit(err))
	}

	o, out, _ := e.opts(t, "bob", "approve", r.ID)
	o.Comment = "looks right"
	if err := approvalsRun(ctx, o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "1 of 2 approvals") {
		t.Errorf("first approval: %s", out)
	}
	o, _, _ = e.opts(t, "bob", "approve", r.ID)
	if err := approvalsRun(ctx, o); approvalsExit(err) != ExitRefused {
		t.Errorf("bob twice: %v (exit %d)", err, approvalsExit(err))
	}

	// Carol approves with edited arguments from a file.
	file := filepath.Join(t.TempDir(), "args.json")
	if err := os.WriteFile(file, []byte(`{"repo":"staging-api","title":"fix"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, out, _ = e.opts(t, "carol", "approve", r.ID)
	o.EditArgs, o.Output = file, "json"
	if err := approvalsRun(ctx, o); err != nil {
		t.Fatal(err)
	}
	var got queue.Request
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	// Bob approved the original arguments, so one more approval is needed.
	if got.State != queue.StatePending || got.EditedBy == nil || got.EditedBy.Subject != "u-carol" || !strings.Contains(string(got.EditedArgs), "staging-api") {
		t.Fatalf("after the edit: %+v", got)
	}
	o, out, _ = e.opts(t, "bob", "approve", r.ID)
	if err := approvalsRun(ctx, o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Approved "+r.ID) || !strings.Contains(out.String(), "edited by carol@example.com") {
		t.Errorf("final approval: %s", out)
	}
	o, _, _ = e.opts(t, "carol", "deny", r.ID)
	if err := approvalsRun(ctx, o); approvalsExit(err) != ExitRefused || !strings.Contains(err.Error(), "already approved") {
		t.Errorf("deny after approval: %v (exit %d)", err, approvalsExit(err))
	}

	// A deny ends a fresh request.
	r2 := e.create(t, 1)
	o, out, _ = e.opts(t, "carol", "deny", r2.ID)
	o.Comment = "not now"
	if err := approvalsRun(ctx, o); err != nil || !strings.Contains(out.String(), "Denied "+r2.ID) {
		t.Errorf("deny: %v %s", err, out)
	}

	// Bad --edit-args is a usage error before anything is sent.
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`[1,2]`), 0o600)
	o, _, _ = e.opts(t, "carol", "approve", r2.ID)
	o.EditArgs = bad
	var ue usageError
	if err := approvalsRun(ctx, o); !errors.As(err, &ue) {
		t.Errorf("bad --edit-args: %v", err)
	}
}

// approvalsSignal is a writer that reports when a substring appears.
type approvalsSignal struct {
	mu   sync.Mutex
	b    bytes.Buffer
	want string
	hit  chan struct{}
	once sync.Once
}

func (s *approvalsSignal) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	if strings.Contains(s.b.String(), s.want) {
		s.once.Do(func() { close(s.hit) })
	}
	return len(p), nil
}

func TestApprovalsWatch(t *testing.T) {
	for _, output := range []string{"table", "json"} {
		t.Run(output, func(t *testing.T) {
			e := newApprovalsEnv(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			o, _, _ := e.opts(t, "bob", "watch", "")
			o.Output = output
			connected := &approvalsSignal{want: "Watching", hit: make(chan struct{})}
			printed := &approvalsSignal{want: "\n", hit: make(chan struct{})}
			o.F.IO.ErrOut, o.F.IO.Out = connected, printed
			done := make(chan error, 1)
			go func() { done <- approvalsRun(ctx, o) }()
			select {
			case <-connected.hit:
			case err := <-done:
				t.Fatalf("watch ended early: %v", err)
			}
			r := e.create(t, 1)
			<-printed.hit
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("watch after Ctrl-C: %v", err)
			}
			line := printed.b.String()
			if !strings.Contains(line, r.ID) || !strings.Contains(line, "created") {
				t.Errorf("watch printed %q", line)
			}
			if output == "json" {
				var ev queue.Event
				if err := json.Unmarshal([]byte(strings.TrimSpace(line)), &ev); err != nil || ev.Type != queue.EventCreated {
					t.Errorf("json event %q: %v", line, err)
				}
			}
		})
	}
}
