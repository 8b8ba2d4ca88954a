package main

import (
	"fmt"
	"io"

	"github.com/seed-3f9f6f16/bridge/approval/policy"
)

// expectError is `policy test --expect` seeing another decision.
type expectError struct {
	want, got, rule string
}

func (e *expectError) Error() string {
	return fmt.Sprintf("the decision is %s (rule %s), not the expected %s", e.got, e.rule, e.want)
}

// ExitCode implements exitCoder: 1, so CI fails on a changed decision.
func (e *expectError) ExitCode() ExitCode { return ExitError }

// checkExpect validates --expect.
func checkExpect(v string) error {
	switch v {
	case "", "allow", "deny", "approve":
		return nil
	}
	return usageError{fmt.Errorf("--expect %q: want allow, deny or approve", v)}
}

// explanationView is `policy test -o json`: the decision, the rule that
// made it and how each earlier rule fared. The arguments are not repeated.
type explanationView struct {
	Decision      string           `json:"decision"`
	Rule          string           `json:"rule"`
	RuleIndex     int              `json:"rule_index"`
	Reason        string           `json:"reason,omitempty"`
	Mask          string           `json:"mask,omitempty"`
	Justification bool             `json:"justification_required,omitempty"`
	Approval      *approvalView    `json:"approval,omitempty"`
	EvalError     string           `json:"eval_error,omitempty"`
	PolicyVersion string           `json:"policy_version"`
	Server        string           `json:"server"`
	Method        string           `json:"method"`
	Target        string           `json:"target,omitempty"`
	Rules         []ruleTraceView  `json:"rules"`
	Dependency    *explanationView `json:"dependency,omitempty"`
}

type approvalView struct {
	Approvers    []string `json:"approvers"`
	MinApprovals int      `json:"min_approvals"`
	Timeout      string   `json:"timeout"`
	Hold         string   `json:"hold"`
}

type ruleTraceView struct {
	Index     int    `json:"index"`
	Name      string `json:"name"`
	Action    string `json:"action"`
	Matched   bool   `json:"matched"`
	Why       string `json:"why,omitempty"`
	EvalError string `json:"eval_error,omitempty"`
}

func newExplanationView(ex *policy.Explanation) *explanationView {
	d := ex.Decision
	v := &explanationView{
		Decision: d.Action.String(), Rule: d.Rule, RuleIndex: d.RuleIndex, Reason: d.Reason,
		Mask: d.Mask, Justification: d.Justification, EvalError: d.EvalError,
		PolicyVersion: ex.Version, Server: ex.Input.Server, Method: ex.Input.Method, Target: ex.Input.Tool,
		Rules: make([]ruleTraceView, 0, len(ex.Rules)),
	}
	if a := d.Approval; a != nil {
		v.Approval = &approvalView{Approvers: a.Approvers, MinApprovals: a.MinApprovals, Timeout: a.Timeout.String(), Hold: a.Hold.String()}
	}
	for _, r := range ex.Rules {
		v.Rules = append(v.Rules, ruleTraceView{Index: r.Index, Name: r.Name, Action: r.Action.String(), Matched: r.Matched, Why: r.Why, EvalError: r.EvalError})
	}
	if ex.Dependency != nil {
		v.Dependency = newExplanationView(ex.Dependency)
	}
	return v
}

// writePolicyTest prints the explanation as text or JSON and then holds it
// to --expect.
func writePolicyTest(out io.Writer, opts *PolicyOptions, ex policy.Explanation) error {
	var err error
	if opts.Output == "json" {
		err = writeJSONOut(out, newExplanationView(&ex))
	} else {
		err = policy.WriteExplanation(out, ex)
	}
	if err != nil {
		return err
	}
	if got := ex.Decision.Action.String(); opts.Expect != "" && got != opts.Expect {
		return &expectError{want: opts.Expect, got: got, rule: ex.Decision.Rule}
	}
	return nil
}
