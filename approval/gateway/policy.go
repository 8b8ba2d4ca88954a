package gateway

import (
	"context"
	"fmt"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
	"github.com/seed-3f9f6f16/bridge/auth"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// upstreamRequests are the requests an upstream sends to the client that
// policy may refuse, so an upstream cannot use the user's model or read
// their roots against the admin's will.
var upstreamRequests = map[string]bool{
	"sampling/createMessage": true, "elicitation/create": true, "roots/list": true,
}

// Holder holds a call that policy sent for approval and answers when a
// reviewer decides or the hold ends. The approval stage implements it.
type Holder interface {
	Hold(ctx context.Context, x *bridge.Exchange, m *bridge.Message, d policy.Decision) (bridge.Verdict, error)
}

// Policy decides every client request except protocol plumbing
// (initialize and ping, and notifications/… notifications, which pass),
// known method or not, and drops client notifications of any other name;
// filters the results of tools/list, prompts/list, resources/list,
// resources/templates/list and tasks/list to what the caller may use; binds
// MCP tasks to the session that created them (see Tasks); and decides the
// upstream's sampling, elicitation and roots requests. A denial of
// tools/call is a tool result with isError that names the rule and reason,
// so the model can read it; other methods get a JSON-RPC error. tasks may
// be nil, for a table of the default size that is never told of session
// ends.
func Policy(pol *policy.Policy, holder Holder, tasks *Tasks) Middleware {
	if tasks == nil {
		tasks = NewTasks(0, 0)
	}
	return func(next bridge.Filter) bridge.Filter {
		return bridge.FilterFunc(func(ctx context.Context, x *bridge.Exchange, m *bridge.Message) (bridge.Verdict, error) {
			note := noteFrom(ctx)
			note.PolicyVersion = pol.Version()
			if m.Kind == bridge.KindRequest {
				if err := CallOf(m).Err; err != nil {
					// Never decide a call whose params read as something
					// other than what the method defines.
					note.Decision, note.Reason = "refused", err.Error()
					return bridge.Verdict{Reply: bridge.NewError(m.ID, bridge.CodeInvalidParams, "bridge: "+err.Error())}, nil
				}
			}
			switch {
			case m.Kind == bridge.KindRequest && x.Direction == bridge.FromClient:
				if policy.IsPlumbingRequest(m.Method) {
					return next.Filter(ctx, x, m)
				}
				// Every other request, a "notifications/…" one included,
				// is decided.
				return decideRequest(ctx, pol, holder, tasks, next, x, m)
			case m.Kind == bridge.KindNotification && x.Direction == bridge.FromClient && !policy.IsNotification(m.Method):
				// A request without an id ({"method":"tools/call"} and no
				// "id") is not a notification an upstream should act on,
				// and nothing decided it: it is dropped.
				note.Decision, note.Reason = "dropped", "a notification must be named notifications/…"
				return bridge.Verdict{}, nil
			case m.Kind == bridge.KindRequest && x.Direction == bridge.FromUpstream && upstreamRequests[m.Method]:
				d := pol.Decide(policyInput(x, m))
				note.Decision, note.Rule, note.Reason = d.Action.String(), d.Rule, d.Reason
				if d.Action != policy.Allow {
					return bridge.Verdict{Reply: bridge.NewError(m.ID, bridge.CodeRefused,
						fmt.Sprintf("bridge: the gateway's policy does not allow this server to use %s (rule %q)", m.Method, d.Rule))}, nil
				}
				tasks.noteRelated(x, m)
				return next.Filter(ctx, x, m)
			case m.Kind == bridge.KindResponse && x.Direction == bridge.FromUpstream && x.Request != nil:
				return filterResponse(ctx, pol, holder, tasks, next, x, m)
			case x.Direction == bridge.FromUpstream:
				if !tasks.noteRelated(x, m) {
					note.Decision, note.Reason = "dropped", "status of a task this session did not create"
					return bridge.Verdict{}, nil
				}
			}
			return next.Filter(ctx, x, m)
		})
	}
}

// decideRequest decides a client request that is not plumbing.
func decideRequest(ctx context.Context, pol *policy.Policy, holder Holder, tasks *Tasks, next bridge.Filter, x *bridge.Exchange, m *bridge.Message) (bridge.Verdict, error) {
	note := noteFrom(ctx)
	var tk *task
	if isTaskMethod(m.Method) {
		t, ok := tasks.lookup(x.Session.ID, principalOf(x).Subject, CallOf(m).Target)
		if !ok {
			note.Decision, note.Reason = "refused", "unknown task"
			return bridge.Verdict{Reply: bridge.NewError(m.ID, bridge.CodeInvalidParams,
				"bridge: unknown taskId: a task can be read or cancelled only in the session whose tools/call created it")}, nil
		}
		tk = &t
	}
	d := decide(pol, tk, x, m)
	note.Decision, note.Rule, note.Reason = d.Action.String(), d.Rule, d.Reason
	forward := func(m *bridge.Message) (bridge.Verdict, error) {
		if !asksForTask(m) {
			return next.Filter(ctx, x, m)
		}
		// The upstream may report the new task's status before it
		// answers; filterResponse ends this when the answer comes.
		session, owner := x.Session.ID, principalOf(x).Subject
		tasks.creating(session, owner, 1)
		v, err := next.Filter(ctx, x, m)
		if err != nil || v.Forward == nil {
			tasks.creating(session, owner, -1)
		}
		return v, err
	}
	switch d.Action {
	case policy.Allow:
		return forward(m)
	case policy.Approve:
		if holder == nil {
			return denial(m, d.Rule, "this call needs approval, and this gateway has no approval queue configured")
		}
		v, err := holder.Hold(ctx, x, m, d)
		if err != nil || v.Forward == nil {
			return v, err
		}
		return forward(v.Forward)
	default:
		return denial(m, d.Rule, d.Reason)
	}
}

// filterResponse handles an upstream's answer to a client request: it
// annotates tool results with approval notes, remembers the tasks that
// tools/call creates, and filters list results.
func filterResponse(ctx context.Context, pol *policy.Policy, holder Holder, tasks *Tasks, next bridge.Filter, x *bridge.Exchange, m *bridge.Message) (bridge.Verdict, error) {
	req := x.Request
	v, err := next.Filter(ctx, x, m)
	if err != nil || v.Forward == nil {
		return v, err
	}
	switch req.Method {
	case policy.MethodToolsCall:
		tasks.noteCreated(pol, x, m)
		if a, ok := holder.(*Approvals); ok {
			v.Forward = a.Annotate(x, v.Forward)
		}
	case policy.MethodTasksGet, policy.MethodTasksCancel:
		tasks.noteStatus(x, m)
	case policy.MethodTasksResult:
		if m.Error == nil { // the result is final: the task is done
			tasks.finished(x.Session.ID, CallOf(req).Target)
		}
	}
	spec, ok := listSpecOf(req.Method)
	if !ok {
		return v, nil
	}
	out, err := filterList(v.Forward, spec, visibleIn(pol, tasks, x, req.Method))
	if err != nil {
		return bridge.Verdict{}, bridge.Errorf(bridge.CodeRefused, "bridge: the gateway withheld a "+req.Method+" result it could not read", err)
	}
	return bridge.Verdict{Forward: out}, nil
}

// visibleIn returns what a list result of method keeps: what the caller
// could ever use, and for tasks/list the session's own tasks.
func visibleIn(pol *policy.Policy, tasks *Tasks, x *bridge.Exchange, method string) func(string) bool {
	id := principalOf(x)
	user := userOf(id)
	server := x.Session.Server
	switch method {
	case policy.MethodPromptsList:
		return func(name string) bool { return pol.Visible(user, id.Groups, server, policy.MethodPromptsGet, name) }
	case policy.MethodResourcesList:
		return func(uri string) bool { return pol.Visible(user, id.Groups, server, policy.MethodResourcesRead, uri) }
	case policy.MethodResourceTemplates:
		return func(t string) bool { return pol.VisibleTemplate(user, id.Groups, server, t) }
	case policy.MethodTasksList:
		return func(taskID string) bool {
			_, ok := tasks.lookup(x.Session.ID, id.Subject, taskID)
			return ok
		}
	}
	return func(name string) bool { return pol.VisibleTool(user, id.Groups, server, name) }
}

// decisionKey names a policy's decision among a request's derived values.
type decisionKey struct{ pol *policy.Policy }

// decisionOf returns the decision the policy stage made on a client
// request: the masking stage reads its `mask:` profile when the response
// comes back. It decides (without a task) if the stage did not.
func decisionOf(pol *policy.Policy, x *bridge.Exchange, req *bridge.Message) policy.Decision {
	return decide(pol, nil, x, req)
}

// decide decides a client request once. tk is the task that tasks/get,
// tasks/result and tasks/cancel act on: they are decided on its tool and
// carry its creating call's decision.
func decide(pol *policy.Policy, tk *task, x *bridge.Exchange, req *bridge.Message) policy.Decision {
	return req.Derived(decisionKey{pol}, func() any {
		in := policyInput(x, req)
		if tk != nil {
			d := tk.decision
			in.Tool, in.Task = tk.tool, &d
		}
		return pol.Decide(in)
	}).(policy.Decision)
}

// userOf is the name policy rules match as `users`: the email, else the
// subject.
func userOf(id *auth.Identity) string {
	if id.Email != "" {
		return id.Email
	}
	return id.Subject
}

// policyInput builds the policy's view of a request.
func policyInput(x *bridge.Exchange, m *bridge.Message) policy.Input {
	id := principalOf(x)
	c := CallOf(m)
	in := policy.Input{User: userOf(id), Groups: id.Groups, Server: x.Session.Server, Method: m.Method, Tool: c.Target, Args: c.Args, Ref: c.RefType}
	if m.Method != policy.MethodToolsCall && m.Method != "prompts/get" {
		in.Args = m.Params
	}
	return in
}

// denial answers a refused request in the form the model can read.
func denial(m *bridge.Message, rule, reason string) (bridge.Verdict, error) {
	text := fmt.Sprintf("bridge: the gateway's policy denied this call (rule %q)", rule)
	if reason != "" {
		text += ": " + reason
	}
	if m.Method != policy.MethodToolsCall {
		return bridge.Verdict{Reply: bridge.NewError(m.ID, bridge.CodeRefused, text)}, nil
	}
	reply, err := bridge.NewResult(m.ID, toolError(text))
	if err != nil {
		return bridge.Verdict{}, err
	}
	return bridge.Verdict{Reply: reply}, nil
}

// toolError is a tools/call result that reports a failure to the model.
func toolError(text string) map[string]any {
	return map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}, "isError": true}
}
