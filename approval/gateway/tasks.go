package gateway

import (
	"bytes"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// Bounds of the task table.
const (
	// DefaultTasksPerSession is how many tasks one session's table keeps.
	// When it is full the oldest finished task is forgotten (else the
	// oldest); a forgotten task is unknown and refused from then on.
	DefaultTasksPerSession = 256
	// DefaultTaskSessions is how many sessions' tables are kept. Tables are
	// dropped when their session ends; this bounds them even if that is
	// never reported. The least recently used table goes first.
	DefaultTaskSessions = 4096
)

// RelatedTaskMetaKey is the _meta key with which MCP ties a message to a
// task (MCP 2025-11-25).
const RelatedTaskMetaKey = "io.modelcontextprotocol/related-task"

// Tasks remembers, for each gateway session, the MCP tasks its tools/call
// requests created (a task-augmented tools/call answers with
// {"task":{"taskId":…}}), with the decision of the creating call. A task
// belongs to the session that created it, which is bound to one subject:
// tasks/get, tasks/result and tasks/cancel of a task from any other
// session (even the same user's) is refused as unknown, tasks/list shows
// only the session's tasks, and the results carry the creating call's
// decision and masking profile. It is safe for concurrent use.
type Tasks struct {
	perSession, maxSessions int

	mu       sync.Mutex
	sessions map[string]*sessionTasks
	clock    uint64 // orders sessions and tasks by last use
}

// task is one remembered task.
type task struct {
	tool     string          // the tool the creating call ran
	decision policy.Decision // the creating call's decision (Allow)
	done     bool            // reached a terminal status
	seq      uint64
}

type sessionTasks struct {
	owner string
	tasks map[string]*task
	used  uint64
	// creating counts task-augmented tools/call requests in flight: the
	// upstream may report a new task's status before it answers the call.
	creating int
}

// NewTasks returns an empty task table with the given bounds; zero means
// the default.
func NewTasks(perSession, maxSessions int) *Tasks {
	if perSession <= 0 {
		perSession = DefaultTasksPerSession
	}
	if maxSessions <= 0 {
		maxSessions = DefaultTaskSessions
	}
	return &Tasks{perSession: perSession, maxSessions: maxSessions, sessions: map[string]*sessionTasks{}}
}

// SessionEvent drops a session's tasks when it ends. Its signature is that
// of the gateway's OnSession hook.
func (t *Tasks) SessionEvent(info *bridge.SessionInfo, started bool, _ string) {
	if started || info == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.sessions, info.ID)
}

// Len returns how many tasks the session holds.
func (t *Tasks) Len(session string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.sessions[session]; s != nil {
		return len(s.tasks)
	}
	return 0
}

// session returns the table of session, creating it; nil when it belongs
// to another owner. t.mu must be held.
func (t *Tasks) sessionLocked(session, owner string) *sessionTasks {
	t.clock++
	s := t.sessions[session]
	if s == nil {
		if len(t.sessions) >= t.maxSessions {
			t.evictSessionLocked()
		}
		s = &sessionTasks{owner: owner, tasks: map[string]*task{}}
		t.sessions[session] = s
	}
	if s.owner != owner {
		return nil // a session never changes hands; refuse to mix them
	}
	s.used = t.clock
	return s
}

// creating notes that a task-augmented call of session went upstream
// (delta 1) or was answered (delta -1).
func (t *Tasks) creating(session, owner string, delta int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.sessionLocked(session, owner); s != nil {
		s.creating = max(0, s.creating+delta)
	}
}

// add remembers a task that a call in session created.
func (t *Tasks) add(session, owner, id, tool string, d policy.Decision) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sessionLocked(session, owner)
	if s == nil {
		return
	}
	if _, ok := s.tasks[id]; !ok && len(s.tasks) >= t.perSession {
		s.evictLocked()
	}
	s.tasks[id] = &task{tool: tool, decision: d, seq: t.clock}
}

// lookup returns a task of session, if owner created it there.
func (t *Tasks) lookup(session, owner, id string) (task, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sessions[session]
	if s == nil || s.owner != owner {
		return task{}, false
	}
	tk, ok := s.tasks[id]
	if !ok {
		return task{}, false
	}
	t.clock++
	s.used = t.clock
	return *tk, true
}

// finished marks a task as having reached a terminal status, so it is the
// first to go when the session's table is full.
func (t *Tasks) finished(session, id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.sessions[session]; s != nil {
		if tk := s.tasks[id]; tk != nil {
			tk.done = true
		}
	}
}

func (t *Tasks) evictSessionLocked() {
	var oldest string
	var used uint64
	for id, s := range t.sessions {
		if oldest == "" || s.used < used {
			oldest, used = id, s.used
		}
	}
	delete(t.sessions, oldest)
}

// evictLocked forgets the oldest finished task, else the oldest.
func (s *sessionTasks) evictLocked() {
	var victim string
	var best *task
	for id, tk := range s.tasks {
		if best == nil || (tk.done && !best.done) || (tk.done == best.done && tk.seq < best.seq) {
			victim, best = id, tk
		}
	}
	delete(s.tasks, victim)
}

// terminalStatus reports whether an MCP task status is final.
func terminalStatus(s string) bool {
	return s == "completed" || s == "failed" || s == "cancelled"
}

// taskOfResult reads a CreateTaskResult (or a Task-shaped result, as
// tasks/get and tasks/cancel answer) strictly: {"task":{"taskId":"…",
// "status":"…"}} when nested is true, {"taskId":"…","status":"…"} when not.
// ok is false when the result is not one.
func taskOfResult(result []byte, nested bool) (id, status string, ok bool) {
	type taskFields struct {
		TaskID *string `json:"taskId"`
		Status string  `json:"status"`
	}
	var tf taskFields
	if nested {
		var r struct {
			Task *taskFields `json:"task"`
		}
		if len(result) == 0 || jsonv2.Unmarshal(result, &r) != nil || r.Task == nil {
			return "", "", false
		}
		tf = *r.Task
	} else if len(result) == 0 || jsonv2.Unmarshal(result, &tf) != nil {
		return "", "", false
	}
	if tf.TaskID == nil {
		return "", "", false
	}
	return *tf.TaskID, tf.Status, true
}

// relatedTask returns the task an upstream message is about: the taskId of
// notifications/tasks/status, or the related-task _meta of any other
// message. ok is false when it names none; bad is true when it names one in
// a form that cannot be read (the message is then refused).
func relatedTask(m *bridge.Message) (id string, ok, bad bool) {
	if m.Method == "notifications/tasks/status" {
		var p struct {
			TaskID *string `json:"taskId"`
		}
		if len(m.Params) == 0 || jsonv2.Unmarshal(m.Params, &p) != nil || p.TaskID == nil {
			return "", false, true
		}
		return *p.TaskID, true, false
	}
	if !bytes.Contains(m.Params, []byte(RelatedTaskMetaKey)) {
		return "", false, false
	}
	var p struct {
		Meta map[string]jsontext.Value `json:"_meta"`
	}
	if jsonv2.Unmarshal(m.Params, &p) != nil {
		return "", false, true
	}
	raw, found := p.Meta[RelatedTaskMetaKey]
	if !found {
		return "", false, false
	}
	var rel struct {
		TaskID *string `json:"taskId"`
	}
	if jsonv2.Unmarshal(raw, &rel) != nil || rel.TaskID == nil {
		return "", false, true
	}
	return *rel.TaskID, true, false
}

// isTaskMethod reports whether a client request acts on one task.
func isTaskMethod(method string) bool {
	return method == policy.MethodTasksGet || method == policy.MethodTasksResult || method == policy.MethodTasksCancel
}

// noteCreated remembers the task a tools/call response created, if it is
// a CreateTaskResult, with the call's decision. The call reached the
// upstream, so it was allowed (or approved, and ran): its later results are
// allowed with the same rule and mask.
func (t *Tasks) noteCreated(pol *policy.Policy, x *bridge.Exchange, m *bridge.Message) {
	if asksForTask(x.Request) {
		defer t.creating(x.Session.ID, principalOf(x).Subject, -1)
	}
	if m.Error != nil || x.Session.Stateless {
		// A stateless request has no session to bind a task to: its
		// tasks are unknown, and refused.
		return
	}
	id, status, ok := taskOfResult(m.Result, true)
	if !ok {
		return
	}
	d := decisionOf(pol, x, x.Request)
	d.Action, d.Approval, d.Justification = policy.Allow, nil, false
	session, owner := x.Session.ID, principalOf(x).Subject
	t.add(session, owner, id, CallOf(x.Request).Target, d)
	if terminalStatus(status) {
		t.finished(session, id)
	}
}

// noteStatus marks a task finished when tasks/get or tasks/cancel reports
// a terminal status.
func (t *Tasks) noteStatus(x *bridge.Exchange, m *bridge.Message) {
	if m.Error != nil {
		return
	}
	if id, status, ok := taskOfResult(m.Result, false); ok && terminalStatus(status) {
		t.finished(x.Session.ID, id)
	}
}

// pendingCreate reports whether session has a task-augmented call in
// flight.
func (t *Tasks) pendingCreate(session string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sessions[session]
	return s != nil && s.creating > 0
}

// asksForTask reports whether a tools/call request asks to run as a task
// (its params carry "task").
func asksForTask(m *bridge.Message) bool {
	if m == nil || m.Method != policy.MethodToolsCall || !bytes.Contains(m.Params, []byte(`"task"`)) {
		return false
	}
	var p struct {
		Task jsontext.Value `json:"task"`
	}
	return jsonv2.Unmarshal(m.Params, &p) == nil && p.Task != nil
}

// taskMaskKey names, among an upstream message's derived values, the
// masking profile of the task it is about.
type taskMaskKey struct{}

// noteRelated looks at an upstream notification or request that is about a
// task. It reports false for a notifications/tasks/status of a task this
// session did not create (or one that cannot be read): it is dropped. A
// message about one of the session's tasks is masked with the profile of
// the call that created it (see taskProfile).
func (t *Tasks) noteRelated(x *bridge.Exchange, m *bridge.Message) bool {
	id, ok, bad := relatedTask(m)
	status := m.Method == "notifications/tasks/status"
	if bad {
		return !status
	}
	if !ok {
		return true
	}
	tk, known := t.lookup(x.Session.ID, principalOf(x).Subject, id)
	if !known {
		// The upstream may report a task's first status before it answers
		// the call that created it: while such a call is in flight, the
		// status of a task not yet known is delivered (masked with the
		// server's profile); otherwise it is dropped.
		return !status || t.pendingCreate(x.Session.ID)
	}
	m.Derived(taskMaskKey{}, func() any { return tk.decision.Mask })
	if status {
		if _, st, ok := taskOfResult(m.Params, false); ok && terminalStatus(st) {
			t.finished(x.Session.ID, id)
		}
	}
	return true
}

// taskProfile returns the masking profile for an upstream message: the
// creating call's `mask:` for a message about one of the session's tasks
// (a notifications/tasks/status, or a message whose _meta names the task),
// else profile. The masking stage calls it with the profile it chose.
func taskProfile(x *bridge.Exchange, m *bridge.Message, profile string) string {
	if x.Request != nil || x.Direction != bridge.FromUpstream {
		return profile
	}
	if p, _ := m.Derived(taskMaskKey{}, func() any { return "" }).(string); p != "" {
		return p
	}
	return profile
}
