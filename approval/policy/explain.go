package policy

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Explanation is a decision with its reasons: for each rule up to the one
// that decided, whether it matched and, if not, why.
type Explanation struct {
	Input    Input
	Decision Decision
	// Version is the policy version that decided.
	Version string
	// Rules traces the rules in order, up to and including the deciding one
	// (all of them when the default decided).
	Rules []RuleTrace
	// Dependency explains, for completion/complete and
	// resources/subscribe, the call they depend on (prompts/get or
	// resources/read of the same target).
	Dependency *Explanation
}

// RuleTrace is how one rule fared.
type RuleTrace struct {
	Index   int
	Name    string
	Action  Action
	Matched bool
	// Why says which matcher failed, e.g. "servers: github not in
	// [warehouse]" or "when: evaluated to false". Empty when Matched.
	Why string
	// EvalError is a condition's evaluation error: the reason the rule
	// matched (deny and approve rules fail closed) or did not (allow rules).
	EvalError string
}

// Explain decides in as Decide does and records why each earlier rule did
// not match. It is for `bridge policy test` and debugging, not the hot path.
func (p *Policy) Explain(in Input) Explanation {
	ex := Explanation{Input: in, Version: p.version}
	dependent := classOf(in.Method) == classDependent
	var fallback Decision
	if dependent {
		if depIn, known := dependencyInput(in); known {
			dx := p.Explain(depIn)
			ex.Dependency = &dx
		}
		d, ok := p.dependencyDecision(in)
		if !ok {
			ex.Decision = d
			return ex
		}
		fallback = d
	}
	st := evalState{in: in, methodBit: methodBit(in.Method)}
	for i := range p.rules {
		r := &p.rules[i]
		v, why, errMsg := r.eval(&st, true)
		tr := RuleTrace{Index: i, Name: r.name, Action: r.action, Matched: v != noMatch, Why: why, EvalError: errMsg}
		ex.Rules = append(ex.Rules, tr)
		if v != noMatch {
			ex.Decision = r.decision(errMsg)
			return ex
		}
	}
	if dependent {
		ex.Decision = fallback
	} else {
		ex.Decision = p.fallbackDecision(in)
	}
	return ex
}

// WriteExplanation writes ex as text for a person, as `bridge policy test`
// prints it.
func WriteExplanation(w io.Writer, ex Explanation) error {
	ew := &errWriter{w: w}
	d := ex.Decision
	ew.printf("decision: %s\n", d.Action)
	if d.RuleIndex >= 0 {
		ew.printf("rule:     %s (rules[%d])\n", d.Rule, d.RuleIndex)
	} else {
		ew.printf("rule:     %s\n", d.Rule)
	}
	if d.Reason != "" {
		ew.printf("reason:   %s\n", d.Reason)
	}
	if d.EvalError != "" {
		ew.printf("error:    %s (the rule fails closed)\n", d.EvalError)
	}
	if a := d.Approval; a != nil {
		ew.printf("approval: %s\n", approvalText(a))
	}
	if d.Mask != "" {
		ew.printf("mask:     %s\n", d.Mask)
	}
	if d.Justification {
		ew.printf("justification: required\n")
	}
	ew.printf("policy:   %s\n", ex.Version)

	in := ex.Input
	ew.printf("\ncall:\n")
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  user:\t%s\n", in.User)
	fmt.Fprintf(tw, "  groups:\t%s\n", strings.Join(in.Groups, ", "))
	fmt.Fprintf(tw, "  server:\t%s\n", in.Server)
	fmt.Fprintf(tw, "  method:\t%s\n", in.Method)
	fmt.Fprintf(tw, "  tool:\t%s\n", in.Tool)
	if in.Ref != "" {
		fmt.Fprintf(tw, "  ref:\t%s\n", in.Ref)
	}
	if in.Task != nil {
		fmt.Fprintf(tw, "  task of:\trule %s (%s)\n", in.Task.Rule, in.Task.Action)
	}
	if c, err := CanonicalJSON(in.Args); err != nil {
		fmt.Fprintf(tw, "  args:\t(invalid: %v)\n", err)
	} else {
		fmt.Fprintf(tw, "  args:\t%s\n", c)
	}
	_ = tw.Flush()

	ew.printf("\nrules:\n")
	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	for _, tr := range ex.Rules {
		status := "no match: " + tr.Why
		if tr.Matched {
			status = "MATCH"
			if tr.EvalError != "" {
				status += " (on error: " + tr.EvalError + ")"
			}
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", tr.Index, tr.Name, tr.Action, status)
	}
	if !anyMatched(ex.Rules) {
		label := "default"
		if ex.Dependency != nil {
			label = "via " + ex.Dependency.Input.Method
		}
		fmt.Fprintf(tw, "  -\t%s\t%s\tMATCH\n", label, d.Action)
	}
	_ = tw.Flush()
	if dx := ex.Dependency; dx != nil {
		rule := dx.Decision.Rule
		if dx.Decision.RuleIndex >= 0 {
			rule = fmt.Sprintf("%s (rules[%d])", rule, dx.Decision.RuleIndex)
		}
		ew.printf("\ndepends on:\n  %s %s: %s by %s\n", dx.Input.Method, dx.Input.Tool, dx.Decision.Action, rule)
	}
	return ew.err
}

func anyMatched(rules []RuleTrace) bool {
	for _, tr := range rules {
		if tr.Matched {
			return true
		}
	}
	return false
}

// WriteSummary writes what `bridge policy check` prints: the version, the
// rule count per action and the rules one per line.
func WriteSummary(w io.Writer, p *Policy) error {
	ew := &errWriter{w: w}
	counts := map[Action]int{}
	for i := range p.rules {
		counts[p.rules[i].action]++
	}
	ew.printf("policy %s: %d rules (allow %d, deny %d, approve %d), default %s\n",
		p.version, len(p.rules), counts[Allow], counts[Deny], counts[Approve], p.def)
	if p.defApproval != nil {
		ew.printf("default approval: %s\n", approvalText(p.defApproval))
	}
	if len(p.rules) == 0 {
		return ew.err
	}
	ew.printf("\n")
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  #\tNAME\tACTION\tMATCHES\n")
	for i := range p.rules {
		r := &p.rules[i]
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", i, r.name, r.action, ruleSummary(r))
	}
	_ = tw.Flush()
	return ew.err
}

// ruleSummary is a one-line description of a rule's matchers and effects.
func ruleSummary(r *rule) string {
	c := r.cfg
	var parts []string
	list := func(key string, vals []string) {
		if len(vals) > 0 {
			parts = append(parts, key+"="+strings.Join(vals, ","))
		}
	}
	if !(len(c.Methods) == 1 && c.Methods[0] == defaultRuleMethod) {
		list("methods", c.Methods)
	}
	list("servers", c.Servers)
	list("tools", c.Tools)
	list("users", c.Users)
	list("groups", c.Groups)
	list("groups_not", c.GroupsNot)
	if c.ArgsMatch != "" {
		parts = append(parts, "args_match="+c.ArgsMatch)
	}
	list("args_contain", c.ArgsContain)
	if c.When != "" {
		parts = append(parts, "when="+strings.Join(strings.Fields(c.When), " "))
	}
	if len(parts) == 0 {
		parts = append(parts, "(every tools/call)")
	}
	if r.approval != nil {
		parts = append(parts, "approval("+approvalText(r.approval)+")")
	}
	if r.mask != "" {
		parts = append(parts, "mask="+r.mask)
	}
	if r.justification {
		parts = append(parts, "justification=required")
	}
	return strings.Join(parts, " ")
}

func approvalText(a *ApprovalSpec) string {
	return fmt.Sprintf("approvers=%s min_approvals=%d timeout=%s hold=%s",
		strings.Join(a.Approvers, ","), a.MinApprovals, shortDuration(a.Timeout), shortDuration(a.Hold))
}

// shortDuration prints 15m rather than 15m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// errWriter remembers the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, a ...any) {
	fmt.Fprintf(e, format, a...)
}
