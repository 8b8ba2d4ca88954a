// Package policy is bridge's policy engine: it decides, for each MCP call
// passing through the gateway, whether to allow it, deny it or hold it for
// human approval.
//
// The `policy:` section of the gateway configuration decodes into Config;
// Compile validates it (reporting every problem with a YAML-style path such
// as "rules[3].when") and compiles globs, regular expressions and CEL
// expressions once. The resulting *Policy is immutable and safe for
// concurrent use; Decide is the hot path.
//
//	policy:
//	  default: deny                  # allow | deny | approve (deny when omitted)
//	  default_approval: {...}        # required with default: approve
//	  rules:                         # first match wins
//	    - name: writes-need-review   # unique; "rules[N]" when omitted
//	      methods: [tools/call]      # the default; also resources/read, prompts/get,
//	                                 # tools/list, sampling/createMessage,
//	                                 # elicitation/create, roots/list
//	      servers: [github]          # exact upstream names, checked at Compile
//	      tools: ["create_*"]        # globs: * any run (also '/'), ? one character
//	      users: ["*@example.com"]   # globs, case-insensitive
//	      groups: [engineering]      # holds any (case-insensitive)
//	      groups_not: [contractors]  # holds none
//	      args_match: '(?i)\bprod\b' # RE2 over the canonical JSON of the arguments
//	      args_contain: [password]   # keywords in any key or value, case-insensitive
//	      when: 'has(args.repo) && args.repo.startsWith("prod-")'
//	      action: approve            # allow | deny | approve
//	      reason: Writes to production repositories need review.
//	      mask: default              # masking profile for the response, carried as is
//	      justification: required    # the user must say why
//	      approval: {approvers: [security-reviewers], min_approvals: 1, timeout: 15m, hold: 50s}
//
// # What a rule matches
//
// All matchers that a rule sets must match; an omitted matcher matches
// everything. The "tool" that `tools` globs match depends on the method: the
// tool name for tools/call, the resource URI for resources/read, the prompt
// name for prompts/get, and the empty string for tools/list and the
// server-to-client requests (sampling/createMessage, elicitation/create,
// roots/list), which rules therefore select by `methods` and `servers`.
//
// # Failing closed
//
// The argument conditions (args_contain, args_match) and `when` can fail to
// evaluate: the arguments may not be valid JSON (CanonicalJSON is strict and
// refuses duplicate keys, invalid UTF-8 and deep nesting), a CEL expression
// may read a key that is absent (`args.repo` on a call without "repo") or
// compare values of the wrong type. Such an error counts as the condition
// being met on deny and approve rules, and as not met on allow rules. So a
// caller cannot dodge a deny by sending a malformed or unexpected argument,
// and cannot gain an allow with one either. A condition that definitely
// evaluates to false still means no match. Decision.EvalError records the
// error when a rule matched because of one.
//
// The price is that a deny or approve rule whose condition reads an optional
// key also catches calls that omit it. Guard optional keys with has():
// `has(args.force) && args.force == true`.
//
// In CEL, args is a map(string, dyn): JSON integers that fit in 64 bits are
// int, other numbers double, and comparisons across int and double work.
package policy
