package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"

	"github.com/seed-3f9f6f16/bridge/audit"
	"github.com/seed-3f9f6f16/bridge/auth"
)

// auditClock starts at a fixed instant and moves a second per reading.
func auditClock() func() time.Time {
	base := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	var n atomic.Int64
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Second) }
}

func auditKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

var (
	auditAlice = audit.Identity{Subject: "00u-alice", Email: "alice@example.com", Groups: []string{"engineering"}, ClientName: "claude-code", ClientVersion: "2.1"}
	auditBob   = audit.Identity{Subject: "00u-bob", Email: "bob@example.com", Groups: []string{"security-reviewers"}}
)

// auditSession is two sessions: an allowed call with a masked answer, a call
// held for approval and approved, a denied call, and another user's call.
func auditSession() []audit.Record {
	msg := func(s string) json.RawMessage { return json.RawMessage(s) }
	return []audit.Record{
		{Kind: audit.KindSessionStart, Session: "sess-1", Identity: auditAlice, Server: "github"},
		{Kind: audit.KindRequest, Direction: audit.ToServer, Session: "sess-1", Identity: auditAlice, Server: "github", Method: "tools/call", Tool: "get_issue", RequestID: "1",
			Decision: audit.DecisionAllow, Rule: "reads", Message: msg(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_issue"}}`)},
		{Kind: audit.KindResponse, Direction: audit.ToClient, Session: "sess-1", Identity: auditAlice, Server: "github", Method: "tools/call", Tool: "get_issue", RequestID: "1",
			Masked: map[string]int{"email": 1}, Outcome: "ok", Message: msg(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"[EMAIL]"}]}}`)},
		{Kind: audit.KindDecision, Session: "sess-1", Identity: auditAlice, Server: "github", Method: "tools/call", Tool: "create_pr", RequestID: "2",
			Decision: audit.DecisionApprove, Rule: "writes-need-review", ApprovalID: "apr-1"},
		{Kind: audit.KindApprovalCreated, Session: "sess-1", Identity: auditAlice, Server: "github", Tool: "create_pr", ApprovalID: "apr-1", Reviewers: []string{"security-reviewers"}},
		{Kind: audit.KindApprovalReviewed, Session: "sess-1", Identity: auditBob, Server: "github", Tool: "create_pr", ApprovalID: "apr-1", Reviewers: []string{"bob@example.com"}, Outcome: "approved"},
		{Kind: audit.KindRequest, Direction: audit.ToServer, Session: "sess-1", Identity: auditAlice, Server: "warehouse", Method: "tools/call", Tool: "execute_sql", RequestID: "3",
			Decision: audit.DecisionDeny, Rule: "destructive-sql", Reason: "Destructive SQL is not allowed from agents.", Outcome: "refused"},
		{Kind: audit.KindSessionStart, Session: "sess-2", Identity: auditBob, Server: "github"},
		{Kind: audit.KindRequest, Direction: audit.ToServer, Session: "sess-2", Identity: auditBob, Server: "github", Method: "tools/call", Tool: "list_repos", RequestID: "1",
			Decision: audit.DecisionAllow, Rule: "reads"},
	}
}

func appendAll(t *testing.T, l *audit.Log, recs []audit.Record) {
	t.Helper()
	for i := range recs {
		if _, err := l.Append(context.Background(), &recs[i]); err != nil {
			t.Fatal(err)
		}
	}
}

// editingStore serves record editSeq edited, as a tampered disk would.
type editingStore struct {
	*audit.MemStore
	editSeq atomic.Uint64
}

func (s *editingStore) Range(ctx context.Context, from, to uint64, fn func(audit.Record) error) error {
	return s.MemStore.Range(ctx, from, to, func(r audit.Record) error {
		if r.Seq == s.editSeq.Load() {
			r.Tool = "harmless_tool"
		}
		return fn(r)
	})
}

// auditEnv is a gateway's audit API over an in-memory log, with two
// tokens: an auditor's and an engineer's.
type auditEnv struct {
	store *editingStore
	log   *audit.Log
	srv   *httptest.Server
}

func newAuditEnv(t *testing.T) *auditEnv {
	t.Helper()
	e := &auditEnv{store: &editingStore{MemStore: audit.NewMemStore()}}
	var err error
	e.log, err = audit.Open(e.store, audit.Options{Now: auditClock(), Signer: auditKey(1), SignEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, e.log, auditSession())
	people := map[string][]string{"auditor-token": {"00u-carol", "auditors"}, "dev-token": {"00u-alice", "engineering"}}
	cfg := &audit.Config{Auditors: []string{"auditors"}}
	h := audit.NewHandler(e.log, audit.HandlerOptions{
		Identify: func(r *http.Request) (string, []string, bool) {
			p, ok := people[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
			if !ok {
				return "", nil, false
			}
			return p[0], p[1:], true
		},
		Auditors:  cfg.IsAuditor,
		Now:       auditClock(),
		NewTicker: func(time.Duration) (<-chan time.Time, func()) { return nil, func() {} },
	})
	mux := http.NewServeMux()
	mux.Handle(audit.APIPrefix, h)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		e.srv.Close()
		e.log.Close()
	})
	return e
}

// auditFactory returns a factory with buffers and BRIDGE_TOKEN set to token.
func auditFactory(t *testing.T, token string, hc func() *http.Client) (*Factory, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	env := map[string]string{auth.TokenEnv: token, auth.HomeEnv: t.TempDir()}
	if hc == nil {
		hc = func() *http.Client { return &http.Client{} }
	}
	return &Factory{
		IO:         IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut},
		Getenv:     func(k string) string { return env[k] },
		LookupEnv:  func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Now:        func() time.Time { return time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC) },
		HTTPClient: hc,
	}, out, errOut
}

func (e *auditEnv) opts(t *testing.T, token, command, arg string) (*AuditOptions, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	f, out, errOut := auditFactory(t, token, e.srv.Client)
	return &AuditOptions{F: f, Command: command, Arg: arg, Gateway: e.srv.URL, Lines: 20, Filter: AuditFilterFlags{Limit: 100}}, out, errOut
}

// auditExit maps err as Main does (with root.go's exitCoder case).
func auditExit(err error) ExitCode {
	var ec interface{ ExitCode() ExitCode }
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &ec):
		return ec.ExitCode()
	case errors.Is(err, auth.ErrNotLoggedIn):
		return ExitAuth
	}
	return ExitError
}

func TestAuditFlags(t *testing.T) {
	run := func(args ...string) (*AuditOptions, error) {
		f, _, _ := auditFactory(t, "", nil)
		var got *AuditOptions
		root := &cobra.Command{Use: "bridge", SilenceUsage: true, SilenceErrors: true}
		root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
		root.AddCommand(NewCmdAudit(f, func(_ context.Context, o *AuditOptions) error { got = o; return nil }))
		root.SetArgs(append([]string{"audit"}, args...))
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		return got, root.Execute()
	}
	o, err := run("list")
	if err != nil || o.Command != "list" || o.Filter.Limit != 100 || o.Output != "" || o.DB != "" {
		t.Fatalf("list defaults: %+v %v", o, err)
	}
	o, err = run("list", "--user", "alice@example.com", "--server", "github", "--tool", "create_pr", "--decision", "deny",
		"--session", "s1", "--kind", "request", "--since", "24h", "--until", "2026-03-14", "--limit", "5", "-o", "json", "--gateway", "https://gw")
	want := AuditFilterFlags{User: "alice@example.com", Server: "github", Tool: "create_pr", Decision: "deny", Session: "s1", Kind: "request", Since: "24h", Until: "2026-03-14", Limit: 5}
	if err != nil || o.Filter != want || o.Output != "json" || o.Gateway != "https://gw" {
		t.Fatalf("list filters: %+v %v", o, err)
	}
	if o, err = run("show", "42"); err != nil || o.Command != "show" || o.Arg != "42" {
		t.Fatalf("show: %+v %v", o, err)
	}
	if o, err = run("replay", "sess-1", "-o", "json"); err != nil || o.Command != "replay" || o.Arg != "sess-1" || o.Output != "json" {
		t.Fatalf("replay: %+v %v", o, err)
	}
	if o, err = run("export", "--format", "csv", "--user", "bob"); err != nil || o.Format != "csv" || o.Filter.User != "bob" || o.Filter.Limit != 0 {
		t.Fatalf("export: %+v %v", o, err)
	}
	if o, err = run("verify", "--db", "/tmp/b.db", "--public-key", "k.pem"); err != nil || o.DB != "/tmp/b.db" || o.PublicKey != "k.pem" {
		t.Fatalf("verify: %+v %v", o, err)
	}
	if o, err = run("tail", "-f", "-n", "5", "--server", "github"); err != nil || !o.Follow || o.Lines != 5 || o.Filter.Server != "github" {
		t.Fatalf("tail: %+v %v", o, err)
	}
	if o, err = run("tail"); err != nil || o.Follow || o.Lines != 20 {
		t.Fatalf("tail defaults: %+v %v", o, err)
	}
	for _, args := range [][]string{
		{}, {"show"}, {"replay", "a", "b"}, {"list", "extra"}, {"list", "--limit", "ten"}, {"list", "--bogus"},
		{"verify", "--format", "csv"}, {"tail", "--limit", "3"}, {"export", "-o", "json"},
	} {
		if _, err := run(args...); auditExit(err) != ExitUsage {
			t.Errorf("%q: err %v, want a usage error", args, err)
		}
	}
}

func TestAuditUsageErrors(t *testing.T) {
	e := newAuditEnv(t)
	for name, mod := range map[string]func(*AuditOptions){
		"bad output":             func(o *AuditOptions) { o.Output = "yaml" },
		"db and gateway":         func(o *AuditOptions) { o.DB = "x.db" },
		"tail -f on a file":      func(o *AuditOptions) { o.Command, o.Follow, o.DB, o.Gateway = "tail", true, "x.db", "" },
		"export without format":  func(o *AuditOptions) { o.Command = "export" },
		"export in xml":          func(o *AuditOptions) { o.Command, o.Format = "export", "xml" },
		"since is not a time":    func(o *AuditOptions) { o.Filter.Since = "yesterday" },
		"since is negative":      func(o *AuditOptions) { o.Filter.Since = "-24h" },
		"until before since":     func(o *AuditOptions) { o.Filter.Since, o.Filter.Until = "2026-03-14T10:00:00Z", "2026-03-14T09:00:00Z" },
		"unknown kind":           func(o *AuditOptions) { o.Filter.Kind = "bogus" },
		"negative limit":         func(o *AuditOptions) { o.Filter.Limit = -1 },
		"negative lines":         func(o *AuditOptions) { o.Command, o.Lines = "tail", -1 },
		"unknown audit command":  func(o *AuditOptions) { o.Command = "prune" },
		"server rejects a query": func(o *AuditOptions) { o.Filter.User = strings.Repeat("x", 600) },
	} {
		o, _, _ := e.opts(t, "auditor-token", "list", "")
		mod(o)
		err := auditRun(context.Background(), o)
		if auditExit(err) != ExitUsage {
			t.Errorf("%s: err %v, want a usage error", name, err)
		}
	}
}

func TestAuditListThroughGateway(t *testing.T) {
	e := newAuditEnv(t)
	o, out, errOut := e.opts(t, "auditor-token", "list", "")
	if err := auditRun(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 10 || !strings.HasPrefix(lines[0], "SEQ") || !strings.HasPrefix(lines[9], "9 ") {
		t.Fatalf("table:\n%s", out)
	}
	if errOut.Len() != 0 {
		t.Fatalf("stderr: %s", errOut)
	}

	o, out, errOut = e.opts(t, "auditor-token", "list", "")
	o.Filter = AuditFilterFlags{User: "ALICE@example.com", Limit: 2}
	o.Output = "json"
	if err := auditRun(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	var recs []audit.Record
	if err := json.Unmarshal(out.Bytes(), &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Seq != 5 || recs[1].Seq != 7 {
		t.Fatalf("newest two of alice's: %+v", recs)
	}
	if !strings.Contains(errOut.String(), "more match") {
		t.Fatalf("no hint that more match: %q", errOut)
	}

	o, out, _ = e.opts(t, "auditor-token", "list", "")
	o.Filter = AuditFilterFlags{Decision: "deny", Since: "2026-03-14T09:00:00Z", Until: "1h"}
	if err := auditRun(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "execute_sql") || strings.Count(out.String(), "\n") != 2 {
		t.Fatalf("deny filter:\n%s", out)
	}

	o, out, _ = e.opts(t, "auditor-token", "list", "")
	o.Filter.User = "nobody"
	if err := auditRun(context.Background(), o); err != nil || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("no match: %v\n%s", err, out)
	}
}

func TestAuditShowAndReplay(t *testing.T) {
	e := newAuditEnv(t)
	o, out, _ := e.opts(t, "auditor-token", "show", "3")
	if err := auditRun(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "#3 ") || !strings.Contains(out.String(), "masked: email×1") {
		t.Fatalf("show 3:\n%s", out)
	}

	o, out, _ = e.opts(t, "auditor-token", "show", "apr-1")
	o.Output = "json"
	if err := auditRun(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	var recs []audit.Record
	if err := json.Unmarshal(out.Bytes(), &recs); err != nil || len(recs) != 3 {
		t.Fatalf("show apr-1: %v %d records", err, len(recs))
	}

	for _, ref := range []string{"99", "0", "apr-404"} {
		o, _, _ = e.opts(t, "auditor-token", "show", ref)
		if err := auditRun(context.Background(), o); !errors.Is(err, audit.ErrNotFound) {
			t.Errorf("show %s: %v, want not found", ref, err)
		}
	}

	o, out, _ = e.opts(t, "auditor-token", "replay", "sess-1")
	if err := auditRun(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Session sess-1", "user    alice@example.com (00u-alice)", "client  claude-code 2.1",
		"policy: APPROVE (rule writes-need-review)", "approval apr-1 approved by bob@example.com",
		"masked: email×1", "execute_sql",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out.String(), "list_repos") {
		t.Errorf("transcript of sess-1 shows sess-2:\n%s", out)
	}

	o, out, _ = e.opts(t, "auditor-token", "replay", "sess-2")
	o.Output = "json"
	if err := auditRun(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	recs = nil
	if err := json.Unmarshal(out.Bytes(), &recs); err != nil || len(recs) != 2 || recs[1].Tool != "list_repos" {
		t.Fatalf("replay -o json: %v %+v", err, recs)
	}

	o, _, _ = e.opts(t, "auditor-token", "replay", "no-such-session")
	err := auditRun(context.Background(), o)
	if !errors.Is(err, audit.ErrNotFound) || !strings.Contains(err.Error(), "no-such-session") {
		t.Fatalf("unknown session: %v", err)
	}
}

func TestAuditExportThroughGateway(t *testing.T) {
	e := newAuditEnv(t)
	o, out, _ := e.opts(t, "auditor-token", "export", "")
	o.Format, o.Filter = "jsonl", AuditFilterFlags{Server: "github"}
	if err := auditRun(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 8 {
		t.Fatalf("jsonl: %d lines:\n%s", len(lines), out)
	}
	for _, l := range lines {
		r, err := audit.DecodeRecord([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		if h, _ := r.ComputeHash(); h != r.Hash {
			t.Fatalf("exported record %d does not match its hash", r.Seq)
		}
	}

	o, out, _ = e.opts(t, "auditor-token", "export", "")
	o.Format = "csv"
	if err := auditRun(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(out).ReadAll()
	if err != nil || len(rows) != 10 || rows[0][0] != "seq" {
		t.Fatalf("csv: %v, %d rows", err, len(rows))
	}
}

func TestAuditVerifyThroughGateway(t *testing.T) {
	e := newAuditEnv(t)
	o, out, _ := e.opts(t, "auditor-token", "verify", "")
	if err := auditRun(context.Background(), o); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "verified: records 1 to 9 (9 records)") || !strings.Contains(out.String(), "signed through record 8") {
		t.Fatalf("verify:\n%s", out)
	}

	e.store.editSeq.Store(5)
	o, out, _ = e.opts(t, "auditor-token", "verify", "")
	err := auditRun(context.Background(), o)
	if auditExit(err) != ExitVerifyFailed || !strings.Contains(err.Error(), "record is 5") {
		t.Fatalf("tampered: exit %d, %v", auditExit(err), err)
	}
	if !strings.HasPrefix(out.String(), "BROKEN at record 5 (edited)") {
		t.Fatalf("tampered:\n%s", out)
	}

	o, out, _ = e.opts(t, "auditor-token", "verify", "")
	o.Output = "json"
	err = auditRun(context.Background(), o)
	var rep audit.VerifyResponse
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil || rep.OK || rep.Break.Seq != 5 || auditExit(err) != ExitVerifyFailed {
		t.Fatalf("tampered -o json: %v %v %+v", err, jerr, rep)
	}
}

func TestAuditRefusals(t *testing.T) {
	e := newAuditEnv(t)
	o, _, _ := e.opts(t, "dev-token", "list", "")
	err := auditRun(context.Background(), o)
	if auditExit(err) != ExitRefused || !strings.Contains(err.Error(), "auditors group") {
		t.Fatalf("not an auditor: exit %d, %v", auditExit(err), err)
	}
	o, _, _ = e.opts(t, "stale-token", "list", "")
	err = auditRun(context.Background(), o)
	if auditExit(err) != ExitAuth || !strings.Contains(err.Error(), auth.TokenEnv) {
		t.Fatalf("bad token: exit %d, %v", auditExit(err), err)
	}
	if strings.Contains(err.Error(), "stale-token") {
		t.Fatal("the token is in the error")
	}
	o, _, _ = e.opts(t, "auditor-token", "list", "")
	o.Gateway = e.srv.URL + "/elsewhere" // a gateway without the audit API
	if err := auditRun(context.Background(), o); auditExit(err) != ExitError || !strings.Contains(err.Error(), "does not serve the audit API") {
		t.Fatalf("no audit API: %v", err)
	}
	o, _, _ = e.opts(t, "auditor-token", "list", "")
	o.Gateway = "http://127.0.0.1:1"
	if err := auditRun(context.Background(), o); auditExit(err) != ExitError || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("unreachable: %v", err)
	}
}

// lineReader reads what a running command writes.
type lineReader struct {
	t  *testing.T
	br *bufio.Reader
}

func (l *lineReader) next() string {
	l.t.Helper()
	s, err := l.br.ReadString('\n')
	if err != nil {
		l.t.Fatalf("reading output: %v", err)
	}
	return s
}

func TestAuditTail(t *testing.T) {
	e := newAuditEnv(t)
	o, out, _ := e.opts(t, "auditor-token", "tail", "")
	o.Lines = 3
	if err := auditRun(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[1], "7 ") {
		t.Fatalf("tail -n 3:\n%s", out)
	}

	pr, pw := io.Pipe()
	o, _, _ = e.opts(t, "auditor-token", "tail", "")
	o.F.IO.Out = pw
	o.Follow, o.Lines, o.Filter = true, 1, AuditFilterFlags{User: "00u-alice"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func(ctx context.Context, o *AuditOptions, pw *io.PipeWriter) { done <- auditRun(ctx, o); pw.Close() }(ctx, o, pw)
	lr := &lineReader{t: t, br: bufio.NewReader(pr)}
	if h := lr.next(); !strings.HasPrefix(h, "SEQ") {
		t.Fatalf("header: %q", h)
	}
	if l := lr.next(); !strings.HasPrefix(l, "7 ") {
		t.Fatalf("backlog: %q", l)
	}
	appendAll(t, e.log, []audit.Record{
		{Kind: audit.KindRequest, Session: "sess-3", Identity: auditBob, Tool: "not_shown"},
		{Kind: audit.KindRequest, Session: "sess-3", Identity: auditAlice, Server: "github", Tool: "after_the_backlog"},
	})
	if l := lr.next(); !strings.HasPrefix(l, "11 ") || !strings.Contains(l, "after_the_backlog") {
		t.Fatalf("followed: %q", l)
	}
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("tail -f ended with %v, want cancellation", err)
	}

	// -o json prints the stored form, one record per line.
	pr, pw = io.Pipe()
	o, _, _ = e.opts(t, "auditor-token", "tail", "")
	o.F.IO.Out = pw
	o.Follow, o.Lines, o.Output = true, 1, "json"
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func(ctx context.Context, o *AuditOptions, pw *io.PipeWriter) { done <- auditRun(ctx, o); pw.Close() }(ctx, o, pw)
	lr = &lineReader{t: t, br: bufio.NewReader(pr)}
	// Once the backlog is out, the command has taken its position.
	if r, err := audit.DecodeRecord([]byte(lr.next())); err != nil || r.Seq != 11 {
		t.Fatalf("json backlog: %v %+v", err, r)
	}
	appendAll(t, e.log, []audit.Record{{Kind: audit.KindSessionEnd, Session: "sess-3", Identity: auditAlice}})
	r, err := audit.DecodeRecord([]byte(lr.next()))
	if err != nil || r.Seq != 12 || r.Kind != audit.KindSessionEnd {
		t.Fatalf("json tail: %v %+v", err, r)
	}
	// The gateway stops: the stream ends with a reason.
	e.log.Close()
	go io.Copy(io.Discard, pr)
	if err := <-done; err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("tail after close: %v", err)
	}
}

// makeAuditDB writes the sample sessions, signed, to a bbolt file (as a
// gateway before the segment log kept them) and returns its path and the
// public key file's path.
func makeAuditDB(t *testing.T) (db, pubFile string) { return makeAuditLog(t, false) }

// makeAuditLog is makeAuditDB, writing the segment log beside the data file
// (as the gateway does) when segments is set.
func makeAuditLog(t *testing.T, segments bool) (db, pubFile string) {
	t.Helper()
	dir := t.TempDir()
	db = filepath.Join(dir, "bridge.db")
	var s audit.Store
	var err error
	if segments {
		s, err = audit.OpenSegments(audit.SegmentDir(db), audit.SegmentOptions{})
	} else {
		s, err = audit.OpenBolt(db, audit.BoltOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	key := auditKey(2)
	l, err := audit.Open(s, audit.Options{Now: auditClock(), Signer: key, SignEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, l, auditSession())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	pem, err := audit.MarshalPublicKeyPEM(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	pubFile = filepath.Join(dir, "audit.pub")
	if err := os.WriteFile(pubFile, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	return db, pubFile
}

func dbOpts(t *testing.T, command, db string) (*AuditOptions, *bytes.Buffer) {
	t.Helper()
	f, out, _ := auditFactory(t, "", nil)
	return &AuditOptions{F: f, Command: command, DB: db, Lines: 20, Filter: AuditFilterFlags{Limit: 100}}, out
}

// tamperDB edits the closed bbolt file at path with bbolt itself.
func tamperDB(t *testing.T, path string, fn func(recs *bolt.Bucket) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		return fn(tx.Bucket([]byte("audit")).Bucket([]byte("records")))
	}); err != nil {
		t.Fatal(err)
	}
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func TestAuditDBReadsAStoppedGateway(t *testing.T) {
	for _, segments := range []bool{true, false} {
		t.Run(fmt.Sprintf("segments=%v", segments), func(t *testing.T) { readsAStoppedGateway(t, segments) })
	}
}

func readsAStoppedGateway(t *testing.T, segments bool) {
	db, pub := makeAuditLog(t, segments)
	o, out := dbOpts(t, "list", db)
	if err := auditRun(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "\n") != 10 {
		t.Fatalf("list --db:\n%s", out)
	}
	o, out = dbOpts(t, "replay", db)
	o.Arg = "sess-2"
	if err := auditRun(context.Background(), o); err != nil || !strings.Contains(out.String(), "list_repos") {
		t.Fatalf("replay --db: %v\n%s", err, out)
	}
	o, out = dbOpts(t, "export", db)
	o.Format, o.Filter = "jsonl", AuditFilterFlags{Decision: "allow"}
	if err := auditRun(context.Background(), o); err != nil || strings.Count(out.String(), "\n") != 2 {
		t.Fatalf("export --db: %v\n%s", err, out)
	}
	o, out = dbOpts(t, "verify", db)
	o.PublicKey = pub
	if err := auditRun(context.Background(), o); err != nil {
		t.Fatalf("verify --db: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "verified: records 1 to 9") || !strings.Contains(out.String(), "signed through record 9") {
		t.Fatalf("verify --db:\n%s", out)
	}
	o, out = dbOpts(t, "verify", db)
	if err := auditRun(context.Background(), o); err != nil || !strings.Contains(out.String(), "pass --public-key") {
		t.Fatalf("verify --db without a key: %v\n%s", err, out)
	}
	for _, ref := range []string{"0", "10"} {
		o, _ = dbOpts(t, "show", db)
		o.Arg = ref
		if err := auditRun(context.Background(), o); !errors.Is(err, audit.ErrNotFound) {
			t.Errorf("show %s --db: %v", ref, err)
		}
	}
}

func TestAuditDBVerifyNamesTheTamperedRecord(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(recs *bolt.Bucket) error
		seq    uint64
		reason audit.BreakReason
	}{
		{"edit a byte", func(recs *bolt.Bucket) error {
			v := bytes.Clone(recs.Get(seqKey(6)))
			i := bytes.Index(v, []byte(`"approved"`))
			v[i+1] = 'A'
			return recs.Put(seqKey(6), v)
		}, 6, audit.BreakEdited},
		{"delete a record", func(recs *bolt.Bucket) error { return recs.Delete(seqKey(4)) }, 4, audit.BreakMissing},
		{"swap two records", func(recs *bolt.Bucket) error {
			a, b := bytes.Clone(recs.Get(seqKey(2))), bytes.Clone(recs.Get(seqKey(3)))
			if err := recs.Put(seqKey(2), b); err != nil {
				return err
			}
			return recs.Put(seqKey(3), a)
		}, 2, audit.BreakCorrupt},
		{"truncate the end", func(recs *bolt.Bucket) error { return recs.Delete(seqKey(9)) }, 9, audit.BreakTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, pub := makeAuditDB(t)
			tamperDB(t, db, tc.tamper)
			o, out := dbOpts(t, "verify", db)
			o.PublicKey = pub
			err := auditRun(context.Background(), o)
			var vf *verifyFailedError
			if !errors.As(err, &vf) || auditExit(err) != ExitVerifyFailed {
				t.Fatalf("err %v (exit %d), want a verify failure\n%s", err, auditExit(err), out)
			}
			if vf.brk.Seq != tc.seq || vf.brk.Reason != tc.reason {
				t.Fatalf("break %+v, want seq %d (%s)", vf.brk, tc.seq, tc.reason)
			}
			if !strings.HasPrefix(out.String(), "BROKEN at record ") {
				t.Fatalf("output:\n%s", out)
			}
		})
	}
}

func TestAuditDBVerifyWrongKey(t *testing.T) {
	db, _ := makeAuditDB(t)
	pem, _ := audit.MarshalPublicKeyPEM(auditKey(3).Public().(ed25519.PublicKey))
	other := filepath.Join(t.TempDir(), "other.pub")
	if err := os.WriteFile(other, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	o, _ := dbOpts(t, "verify", db)
	o.PublicKey = other
	err := auditRun(context.Background(), o)
	var vf *verifyFailedError
	if !errors.As(err, &vf) || vf.brk.Reason != audit.BreakSignature {
		t.Fatalf("wrong key: %v", err)
	}
	o, _ = dbOpts(t, "verify", db)
	o.PublicKey = filepath.Join(t.TempDir(), "missing.pub")
	if err := auditRun(context.Background(), o); auditExit(err) != ExitError {
		t.Fatalf("missing key file: %v", err)
	}
}

func TestAuditDBLockedOrMissing(t *testing.T) {
	db, _ := makeAuditDB(t)
	s, err := audit.OpenBolt(db, audit.BoltOptions{}) // a running gateway
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o, _ := dbOpts(t, "list", db)
	o.LockTimeout = 50 * time.Millisecond
	err = auditRun(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "only while the gateway is stopped") {
		t.Fatalf("locked: %v", err)
	}
	seg, _ := makeAuditLog(t, true)
	w, err := audit.OpenSegments(audit.SegmentDir(seg), audit.SegmentOptions{}) // a running gateway
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	o, _ = dbOpts(t, "list", seg)
	o.LockTimeout = 50 * time.Millisecond
	if err := auditRun(context.Background(), o); err == nil || !strings.Contains(err.Error(), "only while the gateway is stopped") {
		t.Fatalf("segment log locked: %v", err)
	}
	o, _ = dbOpts(t, "list", filepath.Join(t.TempDir(), "none.db"))
	if err := auditRun(context.Background(), o); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
}
