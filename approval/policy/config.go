package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/goccy/go-yaml"
)

// Config is the `policy:` section of the gateway configuration, as decoded
// from YAML. It is inert until Compile validates and compiles it.
type Config struct {
	// Default is the action when no rule matches: allow, deny or approve.
	// Empty means deny.
	Default string `yaml:"default" json:"default"`
	// DefaultApproval is the approval for Default: approve, and is required
	// then; it is an error with any other default.
	DefaultApproval *ApprovalConfig `yaml:"default_approval,omitempty" json:"default_approval,omitempty"`
	// Rules are evaluated in order; the first that matches decides.
	Rules []RuleConfig `yaml:"rules" json:"rules"`
}

// RuleConfig is one policy rule. Every matcher that is set must match for the
// rule to match; a matcher that is omitted matches everything.
type RuleConfig struct {
	// Name identifies the rule in decisions, audit records and denials.
	// Omitted, it is "rules[N]". Names must be unique and not "default".
	Name string `yaml:"name" json:"name"`
	// Servers are upstream server names from the gateway configuration.
	Servers []string `yaml:"servers" json:"servers,omitempty"`
	// Tools are globs ('*' any run of characters, including '/'; '?' one
	// character; everything else literal, case-sensitive) over the target
	// name: the tool name for tools/call, the resource URI for
	// resources/read, resources/subscribe and resources/unsubscribe, the
	// prompt name for prompts/get, the prompt name or resource URI that
	// completion/complete completes, and the tool that created the task for
	// tasks/get, tasks/result and tasks/cancel. The other methods have an
	// empty target name, which only "*" (or an omitted tools list) matches.
	Tools []string `yaml:"tools" json:"tools,omitempty"`
	// Methods are the MCP methods the rule applies to; omitted means
	// [tools/call]. Any method may be named, and a name may be a glob
	// ("tasks/*", "*"); only protocol plumbing (initialize, ping and
	// notifications), which the gateway always lets through, may not. See
	// Policy.Decide for what each method gets when no rule matches it.
	Methods []string `yaml:"methods" json:"methods,omitempty"`
	// Users are globs over the caller's user name (email or subject),
	// matched case-insensitively.
	Users []string `yaml:"users" json:"users,omitempty"`
	// Groups: the caller must hold at least one (case-insensitive).
	Groups []string `yaml:"groups" json:"groups,omitempty"`
	// GroupsNot: the caller must hold none of these (case-insensitive).
	GroupsNot []string `yaml:"groups_not" json:"groups_not,omitempty"`
	// ArgsMatch is an RE2 regular expression searched in the canonical JSON
	// of the arguments (see CanonicalJSON). In that text a newline in a value
	// is the two characters `\n` and a quote is `\"`.
	ArgsMatch string `yaml:"args_match" json:"args_match,omitempty"`
	// ArgsContain are keywords; the rule matches when any one of them occurs,
	// case-insensitively, inside any key, string value or scalar of the
	// arguments at any depth.
	ArgsContain []string `yaml:"args_contain" json:"args_contain,omitempty"`
	// When is a CEL expression of type bool over user (string), groups
	// (list(string)), server, tool, method (string) and args
	// (map(string, dyn)). JSON integers that fit are int, other numbers
	// double.
	When string `yaml:"when" json:"when,omitempty"`
	// Action is allow, deny or approve.
	Action string `yaml:"action" json:"action"`
	// Reason is shown to the model and the user on a denial (and to
	// reviewers on an approval). Deny rules without one get a default.
	Reason string `yaml:"reason" json:"reason,omitempty"`
	// Mask names a masking profile applied to the response; carried as is.
	Mask string `yaml:"mask" json:"mask,omitempty"`
	// Justification is "" or "required": the user must give a reason.
	Justification string `yaml:"justification" json:"justification,omitempty"`
	// Approval is required with action approve and refused otherwise.
	Approval *ApprovalConfig `yaml:"approval" json:"approval,omitempty"`
}

// ApprovalConfig says who must approve a held call and for how long.
type ApprovalConfig struct {
	// Approvers are the groups whose members may approve.
	Approvers []string `yaml:"approvers" json:"approvers"`
	// MinApprovals is how many distinct people must approve; 0 means 1.
	MinApprovals int `yaml:"min_approvals" json:"min_approvals"`
	// Timeout is how long the request stays pending; 0 means 15m.
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// Hold is how long the gateway keeps the agent's call open waiting for a
	// decision; 0 means 50s (or Timeout, if shorter). It must not exceed
	// Timeout.
	Hold time.Duration `yaml:"hold" json:"hold"`
}

// Defaults for ApprovalConfig fields left zero.
const (
	DefaultMinApprovals = 1
	DefaultTimeout      = 15 * time.Minute
	DefaultHold         = 50 * time.Second
)

// ParseConfig decodes a policy section from YAML, refusing unknown fields.
// The gateway decodes the whole configuration file itself; this is for tools
// and tests that hold the policy section alone. Errors carry the YAML line.
func ParseConfig(data []byte) (Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data), yaml.Strict())
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("policy: %s", yaml.FormatError(err, false, false))
	}
	return cfg, nil
}
