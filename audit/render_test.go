package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// sessionFixture writes the session the issue asks for: an allowed call, a
// masked response, a denied call and an approved call.
func sessionFixture(t *testing.T) Store {
	t.Helper()
	s := NewMemStore()
	l, err := Open(s, Options{Now: testClock()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	alice := Identity{Subject: "00u1alice", Email: "alice@example.com", Groups: []string{"engineering"}, ClientName: "claude-code", ClientVersion: "2.1.0"}
	bob := Identity{Subject: "00u2bob", Email: "bob@example.com", Groups: []string{"security-reviewers"}}
	ctx := context.Background()
	add := func(r Record) {
		r.Session = "sess-7f3a"
		if r.Identity.Subject == "" {
			r.Identity = alice
		}
		if _, err := l.Append(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	msg := func(s string) json.RawMessage { return json.RawMessage(s) }
	add(Record{Kind: KindSessionStart})
	add(Record{Kind: KindRequest, Direction: ToServer, Server: "github", Method: "tools/call", Tool: "get_issue", RequestID: "1",
		ArgsDigest: "sha256:1f2e", Message: msg(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_issue","arguments":{"repo":"web","number":42}}}`)})
	add(Record{Kind: KindDecision, Server: "github", Method: "tools/call", Tool: "get_issue", RequestID: "1", Decision: DecisionAllow, Rule: "reads"})
	add(Record{Kind: KindResponse, Direction: ToClient, Server: "github", Method: "tools/call", Tool: "get_issue", RequestID: "1", LatencyMicros: 182400, Outcome: "ok",
		Masked:  map[string]int{"email": 2, "github_token": 1},
		Message: msg(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"Reported by [EMAIL] and [EMAIL]; token [GITHUB_TOKEN] \u001b[31mred\u001b[0m"}]}}`)})
	add(Record{Kind: KindRequest, Direction: ToServer, Server: "warehouse", Method: "tools/call", Tool: "execute_sql", RequestID: `"q-2"`,
		ArgsDigest: "sha256:9a8b", Message: msg(`{"jsonrpc":"2.0","id":"q-2","method":"tools/call","params":{"name":"execute_sql","arguments":{"sql":"DROP TABLE users"}}}`)})
	add(Record{Kind: KindDecision, Server: "warehouse", Method: "tools/call", Tool: "execute_sql", RequestID: `"q-2"`, Decision: DecisionDeny, Rule: "destructive-sql",
		Reason: "Destructive SQL is not allowed from agents."})
	add(Record{Kind: KindResponse, Direction: ToClient, Server: "warehouse", RequestID: `"q-2"`, Outcome: "denied",
		Message: msg(`{"jsonrpc":"2.0","id":"q-2","result":{"isError":true,"content":[{"type":"text","text":"Denied by rule destructive-sql: Destructive SQL is not allowed from agents."}]}}`)})
	add(Record{Kind: KindRequest, Direction: ToServer, Server: "github", Method: "tools/call", Tool: "create_pull_request", RequestID: "3",
		ArgsDigest: "sha256:77c1", Message: msg(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"create_pull_request","arguments":{"repo":"prod-api","title":"Fix"},"_meta":{"progressToken":3}}}`)})
	add(Record{Kind: KindDecision, Server: "github", Method: "tools/call", Tool: "create_pull_request", RequestID: "3", Decision: DecisionApprove, Rule: "writes-need-review"})
	add(Record{Kind: KindApprovalCreated, Server: "github", Tool: "create_pull_request", RequestID: "3", ApprovalID: "apr-51c0", ArgsDigest: "sha256:77c1",
		Reviewers: []string{"security-reviewers"}})
	add(Record{Kind: KindNotification, Direction: ToClient, Server: "github", Method: "notifications/progress",
		Message: msg(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":3,"progress":1,"message":"waiting for approval apr-51c0"}}`)})
	add(Record{Kind: KindApprovalReviewed, Identity: bob, ApprovalID: "apr-51c0", Reviewers: []string{"bob@example.com"}, Outcome: "approved"})
	add(Record{Kind: KindApprovalExecuted, Server: "github", Method: "tools/call", Tool: "create_pull_request", RequestID: "3", ApprovalID: "apr-51c0"})
	add(Record{Kind: KindResponse, Direction: ToClient, Server: "github", RequestID: "3", LatencyMicros: 13021554, Outcome: "ok",
		Message: msg(`{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"Created PR #108"}]}}`)})
	add(Record{Kind: KindSessionEnd})
	return s
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update if intended):\n--- got ---\n%s", path, got)
	}
}

func TestTranscriptGolden(t *testing.T) {
	s := sessionFixture(t)
	recs, err := Session(context.Background(), s, "sess-7f3a")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteTranscript(&buf, recs); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("\x1b")) {
		t.Fatal("transcript carries a raw terminal escape")
	}
	golden(t, "transcript.golden", buf.Bytes())

	buf.Reset()
	if err := WriteTable(&buf, recs); err != nil {
		t.Fatal(err)
	}
	golden(t, "list.golden", buf.Bytes())
}

func TestJSONLIsStoredFormAndVerifies(t *testing.T) {
	s := sessionFixture(t)
	recs, _ := Query(context.Background(), s, Filter{})
	var buf bytes.Buffer
	if err := WriteJSONL(&buf, recs); err != nil {
		t.Fatal(err)
	}
	// An external verifier: cut the hash suffix off each line and hash.
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	prev, n := "", 0
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndex(line, `,"hash":"`)
		hash := strings.TrimSuffix(line[i+len(`,"hash":"`):], `"}`)
		if got := hashHex([]byte(line[:i] + "}")); got != hash {
			t.Fatalf("line %d: hash of the canonical prefix %s != %s", n+1, got, hash)
		}
		var r Record
		json.Unmarshal([]byte(line), &r)
		if r.PrevHash != prev {
			t.Fatalf("line %d: prev_hash mismatch", n+1)
		}
		prev = r.Hash
		n++
	}
	if n != len(recs) {
		t.Fatalf("%d lines for %d records", n, len(recs))
	}
}

func TestCSVExport(t *testing.T) {
	recs := []Record{{Seq: 1, Kind: KindRequest, Tool: "=HYPERLINK(\"http://evil\")", Error: "-1+1", Masked: map[string]int{"b": 1, "a": 2},
		Identity: Identity{Groups: []string{"x", "y"}}}}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, recs); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 2 || len(rows[0]) != len(rows[1]) {
		t.Fatalf("rows %v err %v", rows, err)
	}
	col := map[string]string{}
	for i, h := range rows[0] {
		col[h] = rows[1][i]
	}
	if col["tool"] != `'=HYPERLINK("http://evil")` || col["error"] != "'-1+1" {
		t.Fatalf("formula cells not neutralised: %q %q", col["tool"], col["error"])
	}
	if col["masked"] != "a=2;b=1" || col["groups"] != "x;y" || col["kind"] != "request" {
		t.Fatalf("row %v", col)
	}
}

func TestCleanEscapesControls(t *testing.T) {
	got := clean("ok\x1b[2J\u202eevil\u2028x")
	if got != `ok\u001b[2J\u202eevil\u2028x` {
		t.Fatalf("clean = %q", got)
	}
}
