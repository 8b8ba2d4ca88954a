package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// stagePolicy is an ordinary policy: default deny, tool rules, and a rule
// for prompts and resources.
const stagePolicy = `
default: deny
rules:
  - name: harmless
    servers: [demo]
    tools: [echo, slow]
    action: allow
    mask: strict
  - name: docs
    methods: [prompts/get, resources/read]
    tools: [summarize, "demo://docs/*"]
    action: allow
  - name: reviewed-prompt
    methods: [prompts/get]
    tools: [deploy]
    action: approve
    approval: {approvers: [security]}
  - name: quiet-warehouse
    methods: [logging/setLevel]
    servers: [warehouse]
    action: deny
`

var (
	alice = &auth.Identity{Subject: "00u-alice", Email: "alice@example.com", Groups: []string{"engineering"}}
	bob   = &auth.Identity{Subject: "00u-bob", Email: "bob@example.com", Groups: []string{"engineering"}}
)

// stage is the policy stage over a fake upstream that records what reached
// it and answers nothing itself.
type stage struct {
	t       *testing.T
	pol     *policy.Policy
	tasks   *Tasks
	f       bridge.Filter
	reached []*bridge.Message
}

func newStage(t *testing.T, yaml string) *stage {
	t.Helper()
	cfg, err := policy.ParseConfig([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(cfg, policy.CompileOptions{KnownServers: []string{"demo", "warehouse"}})
	if err != nil {
		t.Fatal(err)
	}
	s := &stage{t: t, pol: pol, tasks: NewTasks(4, 8)}
	next := bridge.FilterFunc(func(_ context.Context, _ *bridge.Exchange, m *bridge.Message) (bridge.Verdict, error) {
		s.reached = append(s.reached, m)
		return bridge.Verdict{Forward: m}, nil
	})
	s.f = Policy(pol, nil, s.tasks)(next)
	return s
}

func session(id string) *bridge.SessionInfo {
	return &bridge.SessionInfo{ID: id, Server: "demo", Owner: alice.Subject}
}

func msg(t *testing.T, raw string) *bridge.Message {
	t.Helper()
	m, err := bridge.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("Parse(%s): %v", raw, err)
	}
	return m
}

func req(t *testing.T, method, params string) *bridge.Message {
	if params == "" {
		return msg(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":%q}`, method))
	}
	return msg(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":%q,"params":%s}`, method, params))
}

// send passes a client request through the stage.
func (s *stage) send(sess *bridge.SessionInfo, who *auth.Identity, m *bridge.Message) bridge.Verdict {
	s.t.Helper()
	v, err := s.f.Filter(context.Background(), &bridge.Exchange{Session: sess, Principal: who, Direction: bridge.FromClient}, m)
	if err != nil {
		s.t.Fatalf("Filter: %v", err)
	}
	return v
}

// answer passes the upstream's response to request through the stage.
func (s *stage) answer(sess *bridge.SessionInfo, request *bridge.Message, result string) (bridge.Verdict, error) {
	s.t.Helper()
	resp := msg(s.t, `{"jsonrpc":"2.0","id":1,"result":`+result+`}`)
	return s.f.Filter(context.Background(), &bridge.Exchange{Session: sess, Principal: alice, Direction: bridge.FromUpstream, Request: request}, resp)
}

// outcome names what the stage did with a request: "forwarded", the
// JSON-RPC error code, or "tool error".
func outcome(v bridge.Verdict) string {
	switch {
	case v.Forward != nil:
		return "forwarded"
	case v.Reply != nil && v.Reply.Error != nil:
		return fmt.Sprint(v.Reply.Error.Code)
	case v.Reply != nil && strings.Contains(string(v.Reply.Result), `"isError":true`):
		return "tool error"
	}
	return "dropped"
}

func TestEveryRequestIsDecided(t *testing.T) {
	s := newStage(t, stagePolicy)
	refused, invalid := fmt.Sprint(bridge.CodeRefused), fmt.Sprint(bridge.CodeInvalidParams)
	tests := []struct {
		name, method, params, want string
	}{
		{"initialize is plumbing", "initialize", `{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}`, "forwarded"},
		{"ping is plumbing", "ping", "", "forwarded"},
		{"allowed tool", "tools/call", `{"name":"echo","arguments":{"message":"hi"}}`, "forwarded"},
		{"denied tool", "tools/call", `{"name":"get_env"}`, "tool error"},
		{"tool name not a string", "tools/call", `{"name":1}`, invalid},
		{"tools/list", "tools/list", "", "forwarded"},
		{"prompts/list", "prompts/list", `{"cursor":"x"}`, "forwarded"},
		{"resources/list", "resources/list", "", "forwarded"},
		{"resources/templates/list", "resources/templates/list", "", "forwarded"},
		{"tasks/list", "tasks/list", "", "forwarded"},
		{"logging/setLevel", "logging/setLevel", `{"level":"debug"}`, "forwarded"},
		{"unknown method gets default", "acme/exfiltrate", `{"all":true}`, refused},
		{"known but undecided method gets default", "resources/read", `{"uri":"demo://secret"}`, refused},
		{"allowed resource", "resources/read", `{"uri":"demo://docs/a"}`, "forwarded"},
		{"completion of allowed prompt", "completion/complete", `{"ref":{"type":"ref/prompt","name":"summarize"},"argument":{"name":"customer","value":"C"}}`, "forwarded"},
		{"completion of denied prompt", "completion/complete", `{"ref":{"type":"ref/prompt","name":"secret"},"argument":{"name":"a","value":""}}`, refused},
		{"completion of a prompt held for approval", "completion/complete", `{"ref":{"type":"ref/prompt","name":"deploy"},"argument":{"name":"a","value":""}}`, refused},
		{"completion of allowed resource", "completion/complete", `{"ref":{"type":"ref/resource","uri":"demo://docs/{name}"},"argument":{"name":"name","value":""}}`, "forwarded"},
		{"completion of denied resource", "completion/complete", `{"ref":{"type":"ref/resource","uri":"demo://customers/{id}"},"argument":{"name":"id","value":""}}`, refused},
		{"completion with a name that is not a string", "completion/complete", `{"ref":{"type":"ref/prompt","name":["summarize"]}}`, invalid},
		{"subscribe to allowed resource", "resources/subscribe", `{"uri":"demo://docs/a"}`, "forwarded"},
		{"subscribe to denied resource", "resources/subscribe", `{"uri":"demo://secret"}`, refused},
		{"unsubscribe", "resources/unsubscribe", `{"uri":"demo://secret"}`, "forwarded"},
		{"unknown task", "tasks/result", `{"taskId":"T404"}`, invalid},
		{"task id not a string", "tasks/get", `{"taskId":7}`, invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := outcome(s.send(session("s1"), alice, req(t, tt.method, tt.params))); got != tt.want {
				t.Errorf("%s %s: %s, want %s", tt.method, tt.params, got, tt.want)
			}
		})
	}
	t.Run("client notifications pass", func(t *testing.T) {
		n := msg(t, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}`)
		if got := outcome(s.send(session("s1"), alice, n)); got != "forwarded" {
			t.Errorf("notifications/cancelled: %s", got)
		}
	})
	t.Run("a request without an id is dropped", func(t *testing.T) {
		n := msg(t, `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"get_env"}}`)
		if got := outcome(s.send(session("s1"), alice, n)); got != "dropped" {
			t.Errorf("tools/call without an id: %s", got)
		}
	})
	t.Run("a request named like a notification is decided", func(t *testing.T) {
		if got := outcome(s.send(session("s1"), alice, req(t, "notifications/run", `{"x":1}`))); got != refused {
			t.Errorf("a notifications/run request: %s", got)
		}
	})
	t.Run("a rule may name logging/setLevel", func(t *testing.T) {
		w := &bridge.SessionInfo{ID: "w", Server: "warehouse", Owner: alice.Subject}
		if got := outcome(s.send(w, alice, req(t, "logging/setLevel", `{"level":"debug"}`))); got != refused {
			t.Errorf("logging/setLevel on warehouse: %s", got)
		}
	})
}

func TestListsAreFiltered(t *testing.T) {
	s := newStage(t, stagePolicy)
	tests := []struct {
		name, method, result, want string
	}{
		{"tools", "tools/list",
			`{"tools":[{"name":"echo"},{"name":"get_env"},{"name":1},{"Name":"echo"},{"name":"slow","NAME_":"x"}],"nextCursor":"c2"}`,
			`{"tools":[{"name":"echo"},{"name":"slow","NAME_":"x"}],"nextCursor":"c2"}`},
		{"prompts", "prompts/list",
			`{"nextCursor":"n","prompts":[{"name":"summarize"},{"name":"secret"},{"name":"deploy"},{"title":"no name"}]}`,
			`{"nextCursor":"n","prompts":[{"name":"summarize"},{"name":"deploy"}]}`},
		{"resources", "resources/list",
			`{"resources":[{"uri":"demo://docs/a","name":"a"},{"uri":"demo://secret","name":"s"},{"uri":null,"name":"n"}]}`,
			`{"resources":[{"uri":"demo://docs/a","name":"a"}]}`},
		{"templates", "resources/templates/list",
			`{"resourceTemplates":[{"uriTemplate":"demo://docs/{name}","name":"d"},{"uriTemplate":"demo://customers/{id}","name":"c"}]}`,
			`{"resourceTemplates":[{"uriTemplate":"demo://docs/{name}","name":"d"}]}`},
		{"nothing hidden", "tools/list", `{"tools":[{"name":"echo"}]}`, `{"tools":[{"name":"echo"}]}`},
		{"no list member", "prompts/list", `{"other":[]}`, `{"other":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req(t, tt.method, "")
			s.send(session("s1"), alice, r)
			v, err := s.answer(session("s1"), r, tt.result)
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			if err := json.Unmarshal(v.Forward.Result, &got); err != nil {
				t.Fatal(err)
			}
			_ = json.Unmarshal([]byte(tt.want), &want)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("result %s, want %s", v.Forward.Result, tt.want)
			}
		})
	}
	for _, bad := range []string{`{"tools":{"name":"echo"}}`, `{"Tools":[{"name":"get_env"}]}`} {
		r := req(t, "tools/list", "")
		if _, err := s.answer(session("s1"), r, bad); err == nil {
			t.Errorf("an unreadable list %s was forwarded", bad)
		}
	}
}

func TestTasksBelongToTheirSession(t *testing.T) {
	s := newStage(t, stagePolicy)
	s1 := session("s1")
	call := req(t, "tools/call", `{"name":"echo","arguments":{"message":"hi"},"task":{"ttl":60000}}`)
	if got := outcome(s.send(s1, alice, call)); got != "forwarded" {
		t.Fatalf("tools/call: %s", got)
	}
	created := `{"task":{"taskId":"T1","status":"working","createdAt":"2025-11-25T00:00:00Z","lastUpdatedAt":"2025-11-25T00:00:00Z","ttl":60000}}`
	if _, err := s.answer(s1, call, created); err != nil {
		t.Fatal(err)
	}
	if s.tasks.Len("s1") != 1 {
		t.Fatalf("the task was not remembered")
	}

	result := req(t, "tasks/result", `{"taskId":"T1"}`)
	if got := outcome(s.send(s1, alice, result)); got != "forwarded" {
		t.Fatalf("tasks/result in its session: %s", got)
	}
	x := &bridge.Exchange{Session: s1, Principal: alice, Direction: bridge.FromUpstream, Request: result}
	if d := decisionOf(s.pol, x, result); d.Rule != "harmless" || d.Mask != "strict" {
		t.Errorf("tasks/result carries rule %q mask %q, want the creating call's harmless/strict", d.Rule, d.Mask)
	}

	invalid := fmt.Sprint(bridge.CodeInvalidParams)
	for _, tt := range []struct {
		name string
		sess *bridge.SessionInfo
		who  *auth.Identity
		m    string
	}{
		{"another session of the same user", session("s2"), alice, "tasks/result"},
		{"another user", s1, bob, "tasks/result"},
		{"cancel from another session", session("s2"), alice, "tasks/cancel"},
		{"get from another session", session("s2"), alice, "tasks/get"},
	} {
		if got := outcome(s.send(tt.sess, tt.who, req(t, tt.m, `{"taskId":"T1"}`))); got != invalid {
			t.Errorf("%s: %s, want %s", tt.name, got, invalid)
		}
	}

	list := req(t, "tasks/list", "")
	s.send(s1, alice, list)
	v, err := s.answer(s1, list, `{"tasks":[{"taskId":"T1","status":"working"},{"taskId":"T9","status":"working"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(v.Forward.Result), "T9") || !strings.Contains(string(v.Forward.Result), "T1") {
		t.Errorf("tasks/list shows %s", v.Forward.Result)
	}

	status := func(id string) (*bridge.Message, bridge.Verdict) {
		n := msg(t, `{"jsonrpc":"2.0","method":"notifications/tasks/status","params":{"taskId":"`+id+`","status":"completed"}}`)
		v, err := s.f.Filter(context.Background(), &bridge.Exchange{Session: s1, Principal: alice, Direction: bridge.FromUpstream}, n)
		if err != nil {
			t.Fatal(err)
		}
		return n, v
	}
	if _, v := status("T9"); v.Forward != nil {
		t.Errorf("the status of another session's task was delivered")
	}
	n, v := status("T1")
	if v.Forward == nil {
		t.Fatalf("the status of the session's own task was dropped")
	}
	up := &bridge.Exchange{Session: s1, Principal: alice, Direction: bridge.FromUpstream}
	if p := taskProfile(up, n, "default"); p != "strict" {
		t.Errorf("task status masked with %q, want the creating call's strict", p)
	}

	s.tasks.SessionEvent(s1, false, "closed")
	if got := outcome(s.send(s1, alice, req(t, "tasks/result", `{"taskId":"T1"}`))); got != invalid {
		t.Errorf("tasks/result after the session ended: %s", got)
	}
}

func TestDeniedTaskCallCreatesNoTask(t *testing.T) {
	s := newStage(t, stagePolicy)
	call := req(t, "tools/call", `{"name":"get_env","task":{}}`)
	if got := outcome(s.send(session("s1"), alice, call)); got != "tool error" {
		t.Fatalf("denied task call: %s", got)
	}
	if len(s.reached) != 0 || s.tasks.Len("s1") != 0 {
		t.Errorf("a denied call reached the upstream or made a task")
	}
}

func TestTaskTableIsBounded(t *testing.T) {
	tasks := NewTasks(2, 2)
	d := policy.Decision{Action: policy.Allow, Rule: "r"}
	tasks.add("s1", "u", "a", "echo", d)
	tasks.add("s1", "u", "b", "echo", d)
	tasks.finished("s1", "b")
	tasks.add("s1", "u", "c", "echo", d) // evicts b, the finished one
	if _, ok := tasks.lookup("s1", "u", "b"); ok {
		t.Errorf("the finished task was kept over a running one")
	}
	for _, id := range []string{"a", "c"} {
		if _, ok := tasks.lookup("s1", "u", id); !ok {
			t.Errorf("task %s was evicted", id)
		}
	}
	tasks.add("s2", "u", "x", "echo", d)
	tasks.lookup("s1", "u", "a") // s1 used more recently than s2
	tasks.add("s3", "u", "y", "echo", d)
	if tasks.Len("s2") != 0 || tasks.Len("s1") != 2 || tasks.Len("s3") != 1 {
		t.Errorf("sessions kept: s1 %d s2 %d s3 %d", tasks.Len("s1"), tasks.Len("s2"), tasks.Len("s3"))
	}
	tasks.add("s1", "intruder", "z", "echo", d)
	if _, ok := tasks.lookup("s1", "intruder", "z"); ok {
		t.Errorf("a session's table took a task from another owner")
	}
}

func TestTaskStatusBeforeTheCallIsAnswered(t *testing.T) {
	s := newStage(t, stagePolicy)
	s1 := session("s1")
	up := &bridge.Exchange{Session: s1, Principal: alice, Direction: bridge.FromUpstream}
	status := func(id string) bool {
		n := msg(t, `{"jsonrpc":"2.0","method":"notifications/tasks/status","params":{"taskId":"`+id+`","status":"working"}}`)
		v, err := s.f.Filter(context.Background(), up, n)
		if err != nil {
			t.Fatal(err)
		}
		return v.Forward != nil
	}
	if status("T1") {
		t.Errorf("an unknown task's status was delivered with no task call in flight")
	}
	call := req(t, "tools/call", `{"name":"echo","task":{}}`)
	s.send(s1, alice, call)
	if !status("T1") {
		t.Errorf("the first status of a task being created was dropped")
	}
	if _, err := s.answer(s1, call, `{"task":{"taskId":"T1","status":"working"}}`); err != nil {
		t.Fatal(err)
	}
	if status("T2") || !status("T1") {
		t.Errorf("after the answer: only the session's own task may report")
	}
	// A held or refused task call leaves nothing in flight.
	s.send(s1, alice, req(t, "tools/call", `{"name":"get_env","task":{}}`))
	if status("T3") {
		t.Errorf("a denied task call let an unknown status through")
	}
}
