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
//	      methods: [tools/call]      # the default; any method, or a glob ("tasks/*")
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
// tool name for tools/call, the resource URI for resources/read and
// resources/(un)subscribe, the prompt name for prompts/get, the prompt or
// URI a completion/complete completes, the creating tool for tasks/get,
// tasks/result and tasks/cancel, and the empty string for the list methods,
// logging/setLevel and the server-to-client requests
// (sampling/createMessage, elicitation/create, roots/list), which rules
// therefore select by `methods` and `servers`.
//
// # Every method is decided
//
// Protocol plumbing (initialize, ping, notifications) is never decided.
// Every other request is, and when no rule matches it gets its method's
// fallback:
//
//   - tools/call, resources/read, prompts/get, the server-to-client requests
//     and every method this package does not know: `default`.
//   - tools/list, prompts/list, resources/list, resources/templates/list and
//     tasks/list: allow. The gateway filters their results, so the caller
//     sees only what it may use; a rule naming the method can still deny it.
//   - logging/setLevel and resources/unsubscribe: allow; they only change
//     what the session is sent.
//   - completion/complete and resources/subscribe depend on another method:
//     they are refused unless prompts/get (for a ref/prompt completion) or
//     resources/read (for a ref/resource completion and for a
//     subscription) of the same target would be allowed outright (a target
//     held for approval offers no completions). When it is, the method's
//     own rules decide, and the call is allowed, with the dependency's rule
//     and `mask:`, when none matches. A rule can narrow completions, never
//     widen them past what the target allows.
//   - tasks/get, tasks/result and tasks/cancel: the decision (rule and
//     `mask:`) of the tools/call that created the task, which the caller
//     supplies in Input.Task.
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
