package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Attack class: tasks (issue 9). A tool run as a task returns through
// tasks/result with the creating call's decision and mask profile (the
// rule's `mask: hr`, not the server's default), and another user cannot
// read it.
func TestAttackTaskResult(t *testing.T) {
	w := newAttackWorld(t, false, "", "")
	alice := w.openSession("own", "alice", "2025-11-25")
	_, msgs := alice.post([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"report","arguments":{"reply":"owner EMP-123456"},"task":{"ttl":60000}}}`))
	rs := responses(t, msgs)
	if len(rs) != 1 || rs[0].Error != nil {
		t.Fatalf("task creation: %s", msgs)
	}
	var created struct {
		Task struct {
			TaskID string `json:"taskId"`
		} `json:"task"`
	}
	if err := json.Unmarshal(rs[0].Result, &created); err != nil || created.Task.TaskID == "" {
		t.Fatalf("no task in %s", rs[0].Result)
	}
	get := fmt.Sprintf(`{"jsonrpc":"2.0","id":%%d,"method":"tasks/result","params":{"taskId":%q,"_meta":{"m":"%%s"}}}`, created.Task.TaskID)

	// Another user cannot read it, not even with alice's task id.
	bob := w.openSession("own", "bob", "2025-11-25")
	_, msgs = bob.post([]byte(fmt.Sprintf(get, 2, "bob-reads")))
	w.requireNotRun(t, "own", "bob-reads", msgs)
	for _, raw := range msgs {
		if strings.Contains(string(raw), "EMP-") {
			t.Errorf("bob read alice's task: %s", raw)
		}
	}

	// alice reads it, masked with the creating call's profile.
	_, msgs = alice.post([]byte(fmt.Sprintf(get, 3, "alice-reads")))
	rs = responses(t, msgs)
	if len(rs) != 1 || rs[0].Error != nil {
		t.Fatalf("alice's tasks/result: %s", msgs)
	}
	if strings.Contains(string(rs[0].Result), "EMP-123456") || !strings.Contains(string(rs[0].Result), "[EMPLOYEE-ID]") {
		t.Errorf("tasks/result was not masked with the creating call's profile (hr): %s", rs[0].Result)
	}
}
