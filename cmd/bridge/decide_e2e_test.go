package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/seed-3f9f6f16/bridge/bridge"
)

// decideRules end in a rule that denies what is left of the methods whose
// fallback is `default`, so the harness's `default: allow` reads like an
// ordinary `default: deny` policy.
const decideRules = `
    - name: harmless
      tools: [echo, customer_report]
      action: allow
      mask: strict
    - name: no-prompts-for-marketing
      methods: [prompts/get]
      groups: [marketing]
      action: deny
      reason: Marketing does not use prompts.
    - name: readme-and-summary
      methods: [resources/read, prompts/get]
      tools: ["demo://readme", summarize]
      action: allow
    - name: everything-else
      methods: [tools/call, resources/read, prompts/get, "acme/*"]
      action: deny
      reason: Not on the list.`

const decideMasking = `
masking:
  rules: [{name: customer_id, pattern: 'C-\d{4}', replace: '[CUSTOMER-ID]'}]
  profiles:
    default: {builtins: [all], rules: [none]}
    strict: {builtins: [all], rules: [customer_id]}
`

// TestEndToEndEveryRequestIsDecided: through bridge connect, the gateway
// and the demo upstream, methods the policy used to pass unchecked are
// decided with their targets, and list results show only what the caller
// may use.
func TestEndToEndEveryRequestIsDecided(t *testing.T) {
	w := newWorldWithExtra(t, decideRules, decideMasking)
	alice := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	alice.initialize("2025-11-25")
	dave := w.startAgent("BRIDGE_TOKEN=" + w.token("dave"))
	dave.initialize("2025-11-25")

	complete := func(a *agent) rpcResponse {
		return a.call("completion/complete", map[string]any{
			"ref": map[string]any{"type": "ref/prompt", "name": "summarize"}, "argument": map[string]any{"name": "customer", "value": "C-10"}})
	}
	t.Run("completion follows prompts/get", func(t *testing.T) {
		if r := complete(alice); r.Error != nil || !strings.Contains(string(r.Result), "[CUSTOMER-ID]") && !strings.Contains(string(r.Result), "C-1001") {
			t.Errorf("alice's completion of summarize: %s %+v", r.Result, r.Error)
		}
		r := complete(dave)
		if r.Error == nil || r.Error.Code != bridge.CodeRefused || !strings.Contains(r.Error.Message, "prompts/get") {
			t.Errorf("dave's completion of a prompt he may not get: %s %+v", r.Result, r.Error)
		}
	})

	t.Run("subscriptions follow resources/read", func(t *testing.T) {
		if r := alice.call("resources/subscribe", map[string]any{"uri": "demo://readme"}); r.Error != nil {
			t.Errorf("subscribe to the readme: %s", r.Error.Message)
		}
		r := alice.call("resources/subscribe", map[string]any{"uri": "demo://customers/C-1001"})
		if r.Error == nil || r.Error.Code != bridge.CodeRefused {
			t.Errorf("subscribe to a denied resource: %s %+v", r.Result, r.Error)
		}
		if w.seen.has(`resources/subscribe {"uri":"demo://customers/C-1001"}`) {
			t.Error("the denied subscription reached the upstream")
		}
	})

	t.Run("unknown methods are decided", func(t *testing.T) {
		r := alice.call("acme/exfiltrate", map[string]any{"all": true})
		if r.Error == nil || r.Error.Code != bridge.CodeRefused || !strings.Contains(r.Error.Message, "everything-else") {
			t.Errorf("acme/exfiltrate: %s %+v", r.Result, r.Error)
		}
		if w.seen.has("acme/exfiltrate") {
			t.Error("the denied method reached the upstream")
		}
		if r := alice.call("logging/setLevel", map[string]any{"level": "info"}); r.Error != nil {
			t.Errorf("logging/setLevel: %s", r.Error.Message)
		}
	})

	t.Run("lists show what the caller may use", func(t *testing.T) {
		if r := alice.call("prompts/list", nil); !strings.Contains(string(r.Result), `"summarize"`) {
			t.Errorf("alice's prompts/list: %s", r.Result)
		}
		if r := dave.call("prompts/list", nil); r.Error != nil || strings.Contains(string(r.Result), `"summarize"`) {
			t.Errorf("dave's prompts/list: %s", r.Result)
		}
		if r := alice.call("resources/list", nil); !strings.Contains(string(r.Result), "demo://readme") {
			t.Errorf("resources/list: %s", r.Result)
		}
		if r := alice.call("resources/templates/list", nil); r.Error != nil || strings.Contains(string(r.Result), "customers") {
			t.Errorf("resources/templates/list shows a template no read can use: %s", r.Result)
		}
		r := alice.call("tools/list", nil)
		if strings.Contains(string(r.Result), `"get_customers"`) || !strings.Contains(string(r.Result), `"customer_report"`) {
			t.Errorf("tools/list: %s", r.Result)
		}
	})
}

// TestEndToEndTasks: a tool run as an MCP task returns its result through
// tasks/result masked with the rule's profile, and only the session that
// created the task can read, list or cancel it.
func TestEndToEndTasks(t *testing.T) {
	w := newWorldWithExtra(t, decideRules, decideMasking)
	a := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	a.initialize("2025-11-25")

	r := a.call("tools/call", map[string]any{"name": "customer_report", "arguments": map[string]any{}, "task": map[string]any{"ttl": 60000}})
	if r.Error != nil {
		t.Fatalf("task call: %s", r.Error.Message)
	}
	var created struct {
		Task struct {
			TaskID string `json:"taskId"`
		} `json:"task"`
	}
	if err := json.Unmarshal(r.Result, &created); err != nil || created.Task.TaskID == "" {
		t.Fatalf("not a CreateTaskResult: %s", r.Result)
	}
	id := created.Task.TaskID

	res := a.call("tasks/result", map[string]any{"taskId": id})
	text := toolText(t, res)
	if strings.Contains(text, "C-1001") || strings.Contains(text, "4111 1111 1111 1111") {
		t.Errorf("tasks/result leaked what the rule's profile masks: %s", text)
	}
	if !strings.Contains(text, "[CUSTOMER-ID]") {
		t.Errorf("tasks/result was not masked with the rule's profile (strict): %s", res.Result)
	}
	if r := a.call("tasks/get", map[string]any{"taskId": id}); r.Error != nil {
		t.Errorf("tasks/get of its own task: %s", r.Error.Message)
	}
	if r := a.call("tasks/list", nil); r.Error != nil || !strings.Contains(string(r.Result), id) {
		t.Errorf("tasks/list: %s %+v", r.Result, r.Error)
	}

	// The same user in another session (another bridge connect), and
	// another user, cannot touch the task; nor can anyone name a task
	// that does not exist.
	other := w.startAgent("BRIDGE_TOKEN=" + w.token("alice"))
	other.initialize("2025-11-25")
	for _, method := range []string{"tasks/result", "tasks/get", "tasks/cancel"} {
		r := other.call(method, map[string]any{"taskId": id})
		if r.Error == nil || r.Error.Code != bridge.CodeInvalidParams {
			t.Errorf("%s from another session: %s %+v", method, r.Result, r.Error)
		}
	}
	if r := other.call("tasks/list", nil); strings.Contains(string(r.Result), id) {
		t.Errorf("another session's tasks/list shows the task: %s", r.Result)
	}
	if r := a.call("tasks/result", map[string]any{"taskId": "no-such-task"}); r.Error == nil || r.Error.Code != bridge.CodeInvalidParams {
		t.Errorf("tasks/result of an unknown task: %s %+v", r.Result, r.Error)
	}

	// A denied tool run as a task never reaches the upstream.
	r = a.call("tools/call", map[string]any{"name": "get_customers", "arguments": map[string]any{}, "task": map[string]any{}})
	if !strings.Contains(string(r.Result), `"isError":true`) {
		t.Errorf("denied task call: %s", r.Result)
	}
}
