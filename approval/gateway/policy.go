package gateway

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
	"github.com/seed-3f9f6f16/bridge/bridge"
)

// decidedMethods are the client requests that policy decides.
var decidedMethods = map[string]bool{
	policy.MethodToolsCall: true, "resources/read": true, "prompts/get": true,
}

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

// Policy decides every tools/call, resources/read and prompts/get, filters
// tools/list, and decides the upstream's sampling, elicitation and roots
// requests. A denial of tools/call is a tool result with isError that names
// the rule and reason, so the model can read it; other methods get a
// JSON-RPC error.
func Policy(pol *policy.Policy, holder Holder) Middleware {
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
			case m.Kind == bridge.KindRequest && x.Direction == bridge.FromClient && decidedMethods[m.Method]:
				d := decisionOf(pol, x, m)
				note.Decision, note.Rule, note.Reason = d.Action.String(), d.Rule, d.Reason
				switch d.Action {
				case policy.Allow:
					return next.Filter(ctx, x, m)
				case policy.Approve:
					if holder == nil {
						return denial(m, d.Rule, "this call needs approval, and this gateway has no approval queue configured")
					}
					v, err := holder.Hold(ctx, x, m, d)
					if err != nil || v.Forward == nil {
						return v, err
					}
					return next.Filter(ctx, x, v.Forward)
				default:
					return denial(m, d.Rule, d.Reason)
				}
			case m.Kind == bridge.KindRequest && x.Direction == bridge.FromUpstream && upstreamRequests[m.Method]:
				d := pol.Decide(policyInput(x, m))
				note.Decision, note.Rule, note.Reason = d.Action.String(), d.Rule, d.Reason
				if d.Action != policy.Allow {
					return bridge.Verdict{Reply: bridge.NewError(m.ID, bridge.CodeRefused,
						fmt.Sprintf("bridge: the gateway's policy does not allow this server to use %s (rule %q)", m.Method, d.Rule))}, nil
				}
				return next.Filter(ctx, x, m)
			case m.Kind == bridge.KindResponse && x.Direction == bridge.FromUpstream && x.Request != nil && x.Request.Method == policy.MethodToolsCall:
				v, err := next.Filter(ctx, x, m)
				if a, ok := holder.(*Approvals); ok && err == nil && v.Forward != nil {
					v.Forward = a.Annotate(x, v.Forward)
				}
				return v, err
			case m.Kind == bridge.KindResponse && x.Direction == bridge.FromUpstream && x.Request != nil && x.Request.Method == "tools/list":
				v, err := next.Filter(ctx, x, m)
				if err != nil || v.Forward == nil {
					return v, err
				}
				return filterTools(pol, x, v)
			}
			return next.Filter(ctx, x, m)
		})
	}
}

// decisionKey names a policy's decision among a request's derived values.
type decisionKey struct{ pol *policy.Policy }

// decisionOf decides a client request once: the masking stage reads the
// same decision (its `mask:` profile) when the response comes back.
func decisionOf(pol *policy.Policy, x *bridge.Exchange, req *bridge.Message) policy.Decision {
	return req.Derived(decisionKey{pol}, func() any { return pol.Decide(policyInput(x, req)) }).(policy.Decision)
}

// policyInput builds the policy's view of a request.
func policyInput(x *bridge.Exchange, m *bridge.Message) policy.Input {
	id := principalOf(x)
	user := id.Email
	if user == "" {
		user = id.Subject
	}
	c := CallOf(m)
	in := policy.Input{User: user, Groups: id.Groups, Server: x.Session.Server, Method: m.Method, Tool: c.Target, Args: c.Args}
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

// filterTools removes from a tools/list result the tools the caller can
// never use. Everything else in the result is kept as it came.
func filterTools(pol *policy.Policy, x *bridge.Exchange, v bridge.Verdict) (bridge.Verdict, error) {
	var result map[string]json.RawMessage
	if err := json.Unmarshal(v.Forward.Result, &result); err != nil {
		return v, nil // an error response or an odd result: nothing to filter
	}
	var tools []json.RawMessage
	if err := json.Unmarshal(result["tools"], &tools); err != nil {
		return v, nil
	}
	id := principalOf(x)
	user := id.Email
	if user == "" {
		user = id.Subject
	}
	kept := tools[:0]
	for _, t := range tools {
		var tool struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(t, &tool) == nil && !pol.VisibleTool(user, id.Groups, x.Session.Server, tool.Name) {
			continue
		}
		kept = append(kept, t)
	}
	if len(kept) == len(tools) {
		return v, nil
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return bridge.Verdict{}, err
	}
	result["tools"] = b
	out, err := bridge.NewResult(v.Forward.ID, result)
	if err != nil {
		return bridge.Verdict{}, err
	}
	return bridge.Verdict{Forward: out}, nil
}
