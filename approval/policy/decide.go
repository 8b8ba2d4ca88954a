package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Input is one call to decide.
//
// Tool is the target name that `tools` globs match: the tool name for
// tools/call, the resource URI for resources/read, resources/subscribe and
// resources/unsubscribe, the prompt name for prompts/get, the prompt name
// or resource URI a completion/complete completes, the tool that created
// the task for tasks/get, tasks/result and tasks/cancel, and empty for the
// list methods, logging/setLevel and the server-to-client requests
// (sampling/createMessage, elicitation/create, roots/list). Args are the
// call's arguments: params.arguments for tools/call and prompts/get, and the
// whole params object for the other methods; nil means none.
type Input struct {
	User   string
	Groups []string
	Server string
	Method string
	Tool   string
	Args   json.RawMessage
	// Ref is completion/complete's reference type, RefPrompt or
	// RefResource: it says whether Tool is a prompt or a resource.
	Ref string
	// Task is, for tasks/get, tasks/result and tasks/cancel, the decision
	// of the call that created the task (the gateway keeps it); nil refuses
	// the call when no rule decides it.
	Task *Decision
}

// Decision is the outcome for one call.
type Decision struct {
	// Action is what to do. The zero Decision denies.
	Action Action
	// Rule is the name of the deciding rule, or "default".
	Rule string
	// RuleIndex is the deciding rule's position in `rules`, or -1.
	RuleIndex int
	// Reason explains the decision to the model and the user.
	Reason string
	// Approval is set when Action is Approve. It is shared: do not modify.
	Approval *ApprovalSpec
	// Mask names the masking profile for the response, if any.
	Mask string
	// Justification is true when the user must give a reason.
	Justification bool
	// EvalError is set when the rule matched only because one of its
	// conditions could not be evaluated (bad argument JSON, a CEL runtime
	// error): deny and approve rules fail closed. It is for the audit log.
	EvalError string
}

// evalState is the per-decision scratch space: everything derived from the
// input is computed at most once, and only when a rule needs it.
type evalState struct {
	in        Input
	methodBit methodSet
	// serverChecked is set when the rules come from the server index, which
	// already guarantees that each names the input's server or none.
	serverChecked bool

	userLower     string
	userLowerDone bool

	args *argsState // allocated when a rule first needs the arguments
	act  *activation
}

func (st *evalState) user() string {
	if !st.userLowerDone {
		st.userLower, st.userLowerDone = strings.ToLower(st.in.User), true
	}
	return st.userLower
}

// argState returns the per-decision argument cache, allocating it on first
// use. Keeping it apart lets a decision that never looks at the arguments
// run without allocating.
func (st *evalState) argState() *argsState {
	if st.args == nil {
		st.args = &argsState{raw: st.in.Args}
	}
	return st.args
}

func (st *evalState) canonical() ([]byte, error) { return st.argState().canonical() }
func (st *evalState) loweredCanonical() []byte   { return st.argState().loweredCanonical() }
func (st *evalState) leafText() ([]byte, error)  { return st.argState().leafText() }
func (st *evalState) celArgs() (ref.Val, error)  { return st.argState().celArgs() }

// argsState caches what is derived from the arguments of one decision.
type argsState struct {
	raw json.RawMessage

	tree     any // parsed arguments (numbers as json.Number)
	treeErr  error
	treeDone bool

	canon     []byte
	canonDone bool

	lowered     []byte // canon, ASCII-lowercased, for prefilters
	loweredDone bool

	text     []byte
	textDone bool

	cel     ref.Val
	celErr  error
	celDone bool
}

func (st *argsState) argsTree() (any, error) {
	if !st.treeDone {
		st.tree, st.treeErr = parseArgs(st.raw)
		st.treeDone = true
	}
	return st.tree, st.treeErr
}

func (st *argsState) canonical() ([]byte, error) {
	if !st.canonDone {
		st.canonDone = true
		t, err := st.argsTree()
		if err != nil {
			return nil, err
		}
		st.canon = appendCanonical(make([]byte, 0, len(st.raw)+2), t)
	}
	return st.canon, st.treeErr
}

func (st *argsState) loweredCanonical() []byte {
	if !st.loweredDone {
		st.loweredDone = true
		canon, _ := st.canonical() // nil on error: nothing to search
		st.lowered = appendASCIILower(make([]byte, 0, len(canon)), canon)
	}
	return st.lowered
}

func (st *argsState) leafText() ([]byte, error) {
	if !st.textDone {
		st.textDone = true
		t, err := st.argsTree()
		if err != nil {
			return nil, err
		}
		st.text = appendLeafText(make([]byte, 0, len(st.raw)), t)
	}
	return st.text, st.treeErr
}

func (st *argsState) celArgs() (ref.Val, error) {
	if !st.celDone {
		st.celDone = true
		v, err := st.argsTree()
		switch m, isMap := v.(map[string]any); {
		case err != nil:
			st.celErr = err
		case v == nil: // JSON null: no arguments
			st.cel = types.NewStringInterfaceMap(types.DefaultTypeAdapter, map[string]any{})
		case !isMap:
			st.celErr = fmt.Errorf("arguments are a JSON %s, not an object", jsonKind(v))
		default:
			st.cel = types.NewStringInterfaceMap(types.DefaultTypeAdapter, m)
		}
	}
	return st.cel, st.celErr
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	}
	return "number"
}

// verdict is the outcome of matching one rule.
type verdict uint8

const (
	noMatch verdict = iota
	match
	matchOnError // a condition failed to evaluate and the rule fails closed
)

// eval matches r against the input. When explain is true, why says which
// matcher failed (or erred); otherwise why is empty and nothing is
// formatted. errMsg is set for matchOnError, and for an allow rule skipped
// because of an evaluation error.
func (r *rule) eval(st *evalState, explain bool) (v verdict, why, errMsg string) {
	if ok, why := r.matchStatic(st, explain); !ok {
		return noMatch, why, ""
	}
	return r.matchConditions(st, explain)
}

// matchStatic matches everything but the argument and CEL conditions.
func (r *rule) matchStatic(st *evalState, explain bool) (ok bool, why string) {
	in := &st.in
	if !r.matchMethod(st) {
		if explain {
			why = fmt.Sprintf("methods: %s not in [%s]", quoteEmpty(in.Method), strings.Join(r.cfg.Methods, ", "))
		}
		return false, why
	}
	if !st.serverChecked && len(r.servers) > 0 && !slices.Contains(r.servers, in.Server) {
		if explain {
			why = fmt.Sprintf("servers: %s not in [%s]", quoteEmpty(in.Server), strings.Join(r.servers, ", "))
		}
		return false, why
	}
	if len(r.tools) > 0 && !anyGlob(r.tools, in.Tool) {
		if explain {
			why = fmt.Sprintf("tools: %s matches none of [%s]", quoteEmpty(in.Tool), strings.Join(r.cfg.Tools, ", "))
		}
		return false, why
	}
	if !r.matchCaller(st) {
		if explain {
			why = r.callerMismatch(st)
		}
		return false, why
	}
	return true, ""
}

// matchCaller matches users, groups and groups_not.
func (r *rule) matchCaller(st *evalState) bool {
	return (len(r.users) == 0 || anyGlob(r.users, st.user())) &&
		(len(r.groups) == 0 || holdsAny(st.in.Groups, r.groups)) &&
		(len(r.groupsNot) == 0 || !holdsAny(st.in.Groups, r.groupsNot))
}

// callerMismatch says which of users, groups and groups_not failed.
func (r *rule) callerMismatch(st *evalState) string {
	switch {
	case len(r.users) > 0 && !anyGlob(r.users, st.user()):
		return fmt.Sprintf("users: %s matches none of [%s]", quoteEmpty(st.in.User), strings.Join(r.cfg.Users, ", "))
	case len(r.groups) > 0 && !holdsAny(st.in.Groups, r.groups):
		return fmt.Sprintf("groups: holds none of [%s]", strings.Join(r.groups, ", "))
	}
	return fmt.Sprintf("groups_not: holds one of [%s]", strings.Join(r.groupsNot, ", "))
}

// matchConditions evaluates args_contain, args_match and when.
func (r *rule) matchConditions(st *evalState, explain bool) (v verdict, why, errMsg string) {
	// Conditions that look at the arguments or evaluate CEL can fail. A
	// failed condition counts as met for deny and approve rules (so a
	// malformed call cannot slip past a restriction) and as not met for
	// allow rules (so it cannot gain a permission). A definite "false" in
	// any condition still means no match.
	failClosed := r.action != Allow
	var firstErr string
	fail := func(field string, err error) (stop bool) {
		msg := field + ": " + err.Error()
		if firstErr == "" {
			firstErr = msg
		}
		return !failClosed
	}
	if len(r.argsContain) > 0 {
		text, err := st.leafText()
		switch {
		case err != nil:
			if fail("args_contain", err) {
				return noMatch, explainErr(explain, firstErr), firstErr
			}
		case !containsAnyKeyword(text, r.argsContain):
			if explain {
				why = fmt.Sprintf("args_contain: none of [%s] in the arguments", strings.Join(r.cfg.ArgsContain, ", "))
			}
			return noMatch, why, ""
		}
	}
	if r.argsRE != nil {
		canon, err := st.canonical()
		switch {
		case err != nil:
			if fail("args_match", err) {
				return noMatch, explainErr(explain, firstErr), firstErr
			}
		case r.argsPF != nil && !r.argsPF.mayMatch(st.loweredCanonical()),
			!r.argsRE.Match(canon):
			if explain {
				why = fmt.Sprintf("args_match: %s does not match the arguments", r.cfg.ArgsMatch)
			}
			return noMatch, why, ""
		}
	}
	if r.when != nil {
		ok, err := r.when.eval(st)
		switch {
		case err != nil:
			if fail("when", err) {
				return noMatch, explainErr(explain, firstErr), firstErr
			}
		case !ok:
			if explain {
				why = "when: evaluated to false"
			}
			return noMatch, why, ""
		}
	}
	if firstErr != "" {
		return matchOnError, "", firstErr
	}
	return match, "", ""
}

func explainErr(explain bool, msg string) string {
	if !explain {
		return ""
	}
	return msg + " (evaluation error; an allow rule does not match)"
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// holdsAny reports whether any of held is in want, case-insensitively.
func holdsAny(held, want []string) bool {
	for _, h := range held {
		for _, w := range want {
			if strings.EqualFold(h, w) {
				return true
			}
		}
	}
	return false
}

func containsAnyKeyword(text []byte, keywords []string) bool {
	for _, k := range keywords {
		if bytes.Contains(text, []byte(k)) {
			return true
		}
	}
	return false
}

// candidates returns the indices of the rules that can match server, in
// order. Every other rule names servers and not this one.
func (p *Policy) candidates(server string) []int32 {
	if l, ok := p.byServer[server]; ok {
		return l
	}
	return p.anyServer
}

// serverIndex returns the index of the rules that can match server.
func (p *Policy) serverIndex(server string) *ruleIndex {
	if x, ok := p.index[server]; ok {
		return x
	}
	return p.anyIndex
}

// firstMatch returns the first rule, in rule order, that matches st's input
// (and the evaluation error it matched on), or nil. Only the rules the
// server's index keeps are evaluated.
func (p *Policy) firstMatch(st *evalState) (*rule, string) {
	x := p.serverIndex(st.in.Server)
	var dstBuf, scratchBuf [indexWords]uint64
	dst, scratch := dstBuf[:], scratchBuf[:]
	if x.words > indexWords {
		dst, scratch = make([]uint64, x.words), make([]uint64, x.words)
	}
	dst, scratch = dst[:x.words], scratch[:x.words]
	x.candidates(dst, scratch, st)
	for i := nextBit(dst, 0); i >= 0; i = nextBit(dst, i+1) {
		r := &p.rules[i]
		if v, _, errMsg := r.eval(st, false); v != noMatch {
			return r, errMsg
		}
	}
	return nil, ""
}

// Decide returns the decision for in: the first rule that matches decides.
// When none does, the method's fallback applies: `default` for tools/call,
// resources/read, prompts/get, the server-to-client requests and every
// method the policy does not know; allow for the list methods (whose
// results the gateway filters), logging/setLevel and resources/unsubscribe;
// the creating call's decision for tasks/get, tasks/result and
// tasks/cancel. completion/complete and resources/subscribe are refused
// unless the method they depend on (prompts/get or resources/read of the
// same target) would be allowed; then their own rules decide, and allow
// when none matches.
//
// Decide compiles nothing; it parses the arguments at most once per
// representation it needs (canonical JSON for args_match and args_contain, a
// CEL map for `when`), and only when a rule that passed every other matcher
// needs them.
func (p *Policy) Decide(in Input) Decision {
	var fallback Decision
	if classOf(in.Method) == classDependent {
		dep, ok := p.dependencyDecision(in)
		if !ok {
			return dep
		}
		fallback = dep
	}
	st := evalState{in: in, methodBit: methodBit(in.Method), serverChecked: true}
	if r, errMsg := p.firstMatch(&st); r != nil {
		return r.decision(errMsg)
	}
	if classOf(in.Method) == classDependent {
		return fallback
	}
	return p.fallbackDecision(in)
}

// dependencyDecision decides the method a dependent call needs. ok is false
// when that method would not allow the call: the returned Decision then
// refuses it. When ok, the Decision is what the dependent call gets if no
// rule of its own matches: allowed, with the dependency's rule and mask.
func (p *Policy) dependencyDecision(in Input) (Decision, bool) {
	depIn, known := dependencyInput(in)
	if !known {
		return Decision{Action: Deny, Rule: defaultRuleName, RuleIndex: -1,
			Reason: fmt.Sprintf("%s needs a %s or %s reference.", in.Method, RefPrompt, RefResource)}, false
	}
	dm := depIn.Method
	dep := p.Decide(depIn)
	if dep.Action != Allow {
		what := "denies it"
		if dep.Action == Approve {
			what = "holds it for approval, and " + in.Method + " is never held"
		}
		return Decision{Action: Deny, Rule: dep.Rule, RuleIndex: dep.RuleIndex, EvalError: dep.EvalError,
			Reason: fmt.Sprintf("%s of %q is refused because %s of it is not allowed (rule %q %s).", in.Method, in.Tool, dm, dep.Rule, what)}, false
	}
	return Decision{Action: Allow, Rule: dep.Rule, RuleIndex: dep.RuleIndex, Mask: dep.Mask,
		Reason: fmt.Sprintf("%s of %q follows %s of it, which rule %q allows.", in.Method, in.Tool, dm, dep.Rule)}, true
}

// dependencyInput is the call a dependent call needs allowed: the same
// caller and target, no arguments (so conditions on them fail closed).
func dependencyInput(in Input) (Input, bool) {
	dm, known := dependency(in)
	return Input{User: in.User, Groups: in.Groups, Server: in.Server, Method: dm, Tool: in.Tool}, known
}

// fallbackDecision is the decision of a call that no rule matched.
func (p *Policy) fallbackDecision(in Input) Decision {
	switch classOf(in.Method) {
	case classListing:
		return Decision{Action: Allow, Rule: defaultRuleName, RuleIndex: -1,
			Reason: fmt.Sprintf("No policy rule matched; %s is allowed, and its result shows only what the caller may use.", in.Method)}
	case classSetting:
		return Decision{Action: Allow, Rule: defaultRuleName, RuleIndex: -1,
			Reason: fmt.Sprintf("No policy rule matched; %s is allowed: it only changes what this session is sent.", in.Method)}
	case classTask:
		if in.Task == nil {
			return Decision{Action: Deny, Rule: defaultRuleName, RuleIndex: -1,
				Reason: fmt.Sprintf("No policy rule matched, and %s carries the decision of the call that created the task, which is unknown here.", in.Method)}
		}
		d := *in.Task
		d.Approval, d.Justification = nil, false
		d.Reason = fmt.Sprintf("%s carries the decision of the call that created the task (rule %q).", in.Method, d.Rule)
		return d
	}
	return p.defaultDecision()
}

func (r *rule) decision(errMsg string) Decision {
	return Decision{
		Action:        r.action,
		Rule:          r.name,
		RuleIndex:     r.index,
		Reason:        r.reason,
		Approval:      r.approval,
		Mask:          r.mask,
		Justification: r.justification,
		EvalError:     errMsg,
	}
}

func (p *Policy) defaultDecision() Decision {
	return Decision{
		Action:    p.def,
		Rule:      defaultRuleName,
		RuleIndex: -1,
		Reason:    p.defReason,
		Approval:  p.defApproval,
	}
}

// VisibleTool reports whether tools/list should show tool of server to this
// caller: Visible for tools/call.
func (p *Policy) VisibleTool(user string, groups []string, server, tool string) bool {
	return p.Visible(user, groups, server, MethodToolsCall, tool)
}

// Visible reports whether a list result should show target (a tool name, a
// prompt name, a resource URI) of server to this caller, who would use it
// with method (tools/call, prompts/get, resources/read). It is false only
// when the caller can never use it: the first rule that could match such a
// call is a deny that has no argument or CEL condition (or, with no such
// rule, the default denies). A conditional rule makes the target visible,
// whatever follows.
func (p *Policy) Visible(user string, groups []string, server, method, target string) bool {
	in := Input{User: user, Groups: groups, Server: server, Method: method, Tool: target}
	st := evalState{in: in, methodBit: methodBit(in.Method), serverChecked: true}
	for _, i := range p.candidates(server) {
		r := &p.rules[i]
		if r.conditional() {
			if ok, _ := r.matchStatic(&st, false); ok {
				return true
			}
			continue
		}
		if v, _, _ := r.eval(&st, false); v != noMatch {
			return r.action != Deny
		}
	}
	return p.def != Deny
}

// VisibleTemplate reports whether resources/templates/list should show a
// URI template (RFC 6570, such as "db://customers/{id}") of server to this
// caller. It is false only when no URI the template can produce could be
// read: each {expression} is taken to match any text, and the template is
// hidden when the first rule that could match a resources/read of such a URI
// is an unconditional deny of every URI (a rule without tools, or with
// "*"), or when no rule could allow one and the default denies. Otherwise
// it is shown: a template is hidden only when it certainly cannot be used.
func (p *Policy) VisibleTemplate(user string, groups []string, server, uriTemplate string) bool {
	tmpl := templateGlob(uriTemplate)
	in := Input{User: user, Groups: groups, Server: server, Method: MethodResourcesRead}
	st := evalState{in: in, methodBit: methodBit(in.Method), serverChecked: true}
	for _, i := range p.candidates(server) {
		r := &p.rules[i]
		if !r.matchMethod(&st) || !r.matchCaller(&st) {
			continue
		}
		covers := len(r.tools) == 0
		meets := covers
		for j := range r.tools {
			if r.tools[j].kind == globAny {
				covers = true
			}
			if globsIntersect(r.tools[j].pattern, tmpl) {
				meets = true
			}
		}
		switch {
		case !meets:
			continue
		case r.conditional() || r.action != Deny:
			return true
		case covers:
			return false
		}
	}
	return p.def != Deny
}
