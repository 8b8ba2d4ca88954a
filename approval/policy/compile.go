package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
)

// Action is what a decision says to do with a call. The zero value is Deny,
// so a zero Decision fails closed.
type Action uint8

// Actions.
const (
	Deny Action = iota
	Allow
	Approve
)

// String returns "deny", "allow" or "approve".
func (a Action) String() string {
	switch a {
	case Deny:
		return "deny"
	case Allow:
		return "allow"
	case Approve:
		return "approve"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// MarshalText implements encoding.TextMarshaler.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// ParseAction parses "allow", "deny" or "approve".
func ParseAction(s string) (Action, error) {
	switch s {
	case "deny":
		return Deny, nil
	case "allow":
		return Allow, nil
	case "approve":
		return Approve, nil
	}
	return Deny, fmt.Errorf("unknown action %q (want allow, deny or approve)", s)
}

const (
	defaultRuleMethod     = MethodToolsCall
	defaultDenyReasonFmt  = "Denied by policy rule %q."
	defaultNoMatchReason  = "No policy rule matched; the default action is %s."
	defaultRuleName       = "default"
	versionDigestHexChars = 16
)

// ApprovalSpec is a compiled approval requirement. Decisions share it with
// the Policy: treat it as read-only.
type ApprovalSpec struct {
	Approvers    []string
	MinApprovals int
	Timeout      time.Duration
	Hold         time.Duration
}

// CompileOptions supplies what validation checks names against.
type CompileOptions struct {
	// KnownServers are the upstream server names in the gateway
	// configuration. When non-nil, a rule naming another server is an error.
	KnownServers []string
	// KnownMaskProfiles, when non-nil, are the masking profile names a rule's
	// `mask` may use.
	KnownMaskProfiles []string
}

// FieldError is one problem in the policy section. Path is relative to the
// section, in YAML-path style ("rules[3].when", "rules[0].servers[1]",
// "default"); the caller prefixes "policy." and maps it to a line.
type FieldError struct {
	Path    string
	Message string
}

// Error implements error.
func (e FieldError) Error() string { return e.Path + ": " + e.Message }

// ValidationError lists every problem Compile found, in document order.
type ValidationError struct {
	Errors []FieldError
}

// Error implements error; one problem per line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Policy is a compiled, validated policy. It is immutable and safe for
// concurrent use.
type Policy struct {
	rules       []rule
	byServer    map[string][]int32    // rules that can match a named server
	anyServer   []int32               // rules without a servers list
	index       map[string]*ruleIndex // byServer, indexed by tool, user and group
	anyIndex    *ruleIndex            // anyServer, indexed
	def         Action
	defApproval *ApprovalSpec
	defReason   string
	version     string
	cfg         Config // normalized: defaults filled in
	warnings    []FieldError
}

// rule is one compiled rule.
type rule struct {
	index         int
	name          string
	cfg           RuleConfig // normalized
	methods       methodSet
	methodGlobs   []glob // match methods outside knownMethods
	servers       []string
	tools         []glob
	users         []glob // lowercased patterns
	groups        []string
	groupsNot     []string
	argsRE        *regexp.Regexp
	argsPF        *prefilter // nil: always run argsRE
	argsContain   []string   // lowercased
	when          *compiledWhen
	action        Action
	reason        string
	mask          string
	justification bool
	approval      *ApprovalSpec
}

// conditional reports whether the rule looks at the arguments or a CEL
// condition, i.e. whether it can match some calls to a tool and not others.
func (r *rule) conditional() bool {
	return r.argsRE != nil || len(r.argsContain) > 0 || r.when != nil
}

// Version returns a short hex digest (the first 16 hex digits of a SHA-256)
// of the normalized policy: two configurations that differ only in spelled-
// out defaults have the same version.
func (p *Policy) Version() string { return p.version }

// Config returns the normalized configuration the policy was compiled from
// (defaults filled in). The caller must not modify it.
func (p *Policy) Config() Config { return p.cfg }

// Len returns the number of rules.
func (p *Policy) Len() int { return len(p.rules) }

// Warnings are the problems Compile found that do not stop the policy from
// working but probably are not what the admin meant, such as a method name
// one letter away from a known one.
func (p *Policy) Warnings() []FieldError { return p.warnings }

// validator collects field errors and warnings.
type validator struct{ errs, warnings []FieldError }

func (v *validator) add(path, format string, a ...any) {
	v.errs = append(v.errs, FieldError{Path: path, Message: fmt.Sprintf(format, a...)})
}

func (v *validator) warn(path, format string, a ...any) {
	v.warnings = append(v.warnings, FieldError{Path: path, Message: fmt.Sprintf(format, a...)})
}

// Compile validates cfg and compiles it: globs, regular expressions and CEL
// expressions are compiled once here, so Decide does no parsing. On any
// problem it returns a *ValidationError listing all of them.
func Compile(cfg Config, opts CompileOptions) (*Policy, error) {
	v := &validator{}
	p := &Policy{byServer: map[string][]int32{}}
	norm := Config{Default: cfg.Default, Rules: make([]RuleConfig, len(cfg.Rules))}

	if norm.Default == "" {
		norm.Default = "deny"
	}
	def, err := ParseAction(norm.Default)
	if err != nil {
		v.add("default", "%v", err)
	}
	p.def = def
	switch {
	case def == Approve && cfg.DefaultApproval == nil:
		v.add("default_approval", "required when default is approve")
	case def != Approve && cfg.DefaultApproval != nil:
		v.add("default_approval", "only valid when default is approve")
	case cfg.DefaultApproval != nil:
		spec, ac := compileApproval(v, "default_approval", *cfg.DefaultApproval)
		p.defApproval, norm.DefaultApproval = spec, &ac
	}
	p.defReason = fmt.Sprintf(defaultNoMatchReason, def)

	var known map[string]bool
	if opts.KnownServers != nil {
		known = map[string]bool{}
		for _, s := range opts.KnownServers {
			known[s] = true
		}
	}
	env, err := newCELEnv()
	if err != nil {
		return nil, fmt.Errorf("policy: building the CEL environment: %w", err)
	}
	names := map[string]int{}
	p.rules = make([]rule, len(cfg.Rules))
	for i, rc := range cfg.Rules {
		r := compileRule(v, env, i, rc, known, opts.KnownMaskProfiles)
		if prev, dup := names[r.name]; dup {
			v.add(fmt.Sprintf("rules[%d].name", i), "duplicate rule name %q (also rules[%d])", r.name, prev)
		} else {
			names[r.name] = i
		}
		p.rules[i] = r
		norm.Rules[i] = r.cfg
	}
	if len(v.errs) > 0 {
		return nil, &ValidationError{Errors: v.errs}
	}

	// Index the rules by server, keeping rule order in every list.
	for i := range p.rules {
		for _, s := range p.rules[i].servers {
			if _, ok := p.byServer[s]; !ok {
				p.byServer[s] = nil
			}
		}
	}
	for i := range p.rules {
		r := &p.rules[i]
		if len(r.servers) == 0 {
			p.anyServer = append(p.anyServer, int32(i))
			for s := range p.byServer {
				p.byServer[s] = append(p.byServer[s], int32(i))
			}
			continue
		}
		for _, s := range r.servers {
			if l := p.byServer[s]; len(l) == 0 || l[len(l)-1] != int32(i) {
				p.byServer[s] = append(l, int32(i))
			}
		}
	}

	p.index = make(map[string]*ruleIndex, len(p.byServer))
	for s, l := range p.byServer {
		p.index[s] = newRuleIndex(p.rules, l)
	}
	p.anyIndex = newRuleIndex(p.rules, p.anyServer)

	p.cfg = norm
	p.warnings = v.warnings
	canon, err := json.Marshal(norm)
	if err != nil {
		return nil, fmt.Errorf("policy: encoding the configuration: %w", err)
	}
	sum := sha256.Sum256(canon)
	p.version = hex.EncodeToString(sum[:])[:versionDigestHexChars]
	return p, nil
}

func compileRule(v *validator, env *cel.Env, i int, rc RuleConfig, known map[string]bool, masks []string) rule {
	at := func(field string) string { return fmt.Sprintf("rules[%d].%s", i, field) }
	atN := func(field string, j int) string { return fmt.Sprintf("rules[%d].%s[%d]", i, field, j) }
	r := rule{index: i, name: rc.Name}
	n := rc // normalized copy

	if r.name == "" {
		r.name = fmt.Sprintf("rules[%d]", i)
		n.Name = r.name
	} else if r.name == defaultRuleName {
		v.add(at("name"), "%q is reserved for the default action", defaultRuleName)
	}

	if len(rc.Methods) == 0 {
		n.Methods = []string{defaultRuleMethod}
	}
	r.methods, r.methodGlobs = compileMethods(v, i, n.Methods)

	for j, s := range rc.Servers {
		switch {
		case s == "":
			v.add(atN("servers", j), "empty server name")
		case known != nil && !known[s]:
			msg := fmt.Sprintf("unknown server %q", s)
			if sg := suggest(s, keys(known)); sg != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sg)
			} else if len(known) > 0 {
				msg += fmt.Sprintf(" (servers: %s)", strings.Join(keys(known), ", "))
			}
			v.add(atN("servers", j), "%s", msg)
		}
		if !slices.Contains(r.servers, s) {
			r.servers = append(r.servers, s)
		}
	}
	for j, t := range rc.Tools {
		if t == "" {
			v.add(atN("tools", j), "empty tool pattern")
		}
		r.tools = append(r.tools, compileGlob(t))
	}
	for j, u := range rc.Users {
		if u == "" {
			v.add(atN("users", j), "empty user pattern")
		}
		r.users = append(r.users, compileGlob(strings.ToLower(u)))
	}
	for j, g := range rc.Groups {
		if g == "" {
			v.add(atN("groups", j), "empty group name")
		}
		r.groups = append(r.groups, g)
	}
	for j, g := range rc.GroupsNot {
		if g == "" {
			v.add(atN("groups_not", j), "empty group name")
		}
		r.groupsNot = append(r.groupsNot, g)
	}
	if rc.ArgsMatch != "" {
		re, err := regexp.Compile(rc.ArgsMatch)
		if err != nil {
			v.add(at("args_match"), "invalid regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		r.argsRE = re
		if re != nil {
			r.argsPF = newPrefilter(rc.ArgsMatch)
		}
	}
	for j, k := range rc.ArgsContain {
		if k == "" {
			v.add(atN("args_contain", j), "empty keyword")
		}
		r.argsContain = append(r.argsContain, strings.ToLower(k))
	}
	if strings.TrimSpace(rc.When) != "" {
		cw, msgs := compileWhen(env, rc.When)
		for _, m := range msgs {
			v.add(at("when"), "%s", m)
		}
		r.when = cw
	} else {
		n.When = ""
	}

	switch {
	case rc.Action == "":
		v.add(at("action"), "missing action (want allow, deny or approve)")
	default:
		a, err := ParseAction(rc.Action)
		if err != nil {
			v.add(at("action"), "%v", err)
		}
		r.action = a
	}
	r.reason = rc.Reason
	if r.action == Deny && r.reason == "" {
		r.reason = fmt.Sprintf(defaultDenyReasonFmt, r.name)
		n.Reason = r.reason
	}

	r.mask = rc.Mask
	if rc.Mask != "" && masks != nil && !slices.Contains(masks, rc.Mask) {
		v.add(at("mask"), "unknown masking profile %q", rc.Mask)
	}

	switch rc.Justification {
	case "":
	case "required":
		r.justification = true
		if r.action == Deny && rc.Action == "deny" {
			v.add(at("justification"), "has no effect on a deny rule")
		}
	default:
		v.add(at("justification"), "unknown value %q (want required, or omit it)", rc.Justification)
	}

	switch {
	case r.action == Approve && rc.Approval == nil:
		v.add(at("approval"), "action approve needs approval.approvers")
	case rc.Action != "approve" && rc.Approval != nil:
		v.add(at("approval"), "only valid with action approve")
	case rc.Approval != nil:
		spec, ac := compileApproval(v, at("approval"), *rc.Approval)
		r.approval, n.Approval = spec, &ac
	}
	r.cfg = n
	return r
}

// compileApproval validates an approval block and fills its defaults.
func compileApproval(v *validator, path string, ac ApprovalConfig) (*ApprovalSpec, ApprovalConfig) {
	if len(ac.Approvers) == 0 {
		v.add(path+".approvers", "at least one approver group is required")
	}
	for j, a := range ac.Approvers {
		if a == "" {
			v.add(fmt.Sprintf("%s.approvers[%d]", path, j), "empty group name")
		}
	}
	switch {
	case ac.MinApprovals < 0:
		v.add(path+".min_approvals", "must be at least 1")
	case ac.MinApprovals == 0:
		ac.MinApprovals = DefaultMinApprovals
	}
	switch {
	case ac.Timeout < 0:
		v.add(path+".timeout", "must be positive")
	case ac.Timeout == 0:
		ac.Timeout = DefaultTimeout
	}
	switch {
	case ac.Hold < 0:
		v.add(path+".hold", "must be positive")
	case ac.Hold == 0:
		ac.Hold = min(DefaultHold, ac.Timeout)
	case ac.Timeout > 0 && ac.Hold > ac.Timeout:
		v.add(path+".hold", "%s is longer than the timeout (%s)", ac.Hold, ac.Timeout)
	}
	ac.Approvers = slices.Clone(ac.Approvers)
	spec := &ApprovalSpec{
		Approvers:    slices.Clone(ac.Approvers),
		MinApprovals: ac.MinApprovals,
		Timeout:      ac.Timeout,
		Hold:         ac.Hold,
	}
	return spec, ac
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
