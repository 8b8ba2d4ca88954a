package policy

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testServers = CompileOptions{KnownServers: []string{"github", "warehouse", "files"}}

// mustCompile compiles rules (and a default) or fails the test.
func mustCompile(t testing.TB, def string, rules ...RuleConfig) *Policy {
	t.Helper()
	p, err := Compile(Config{Default: def, Rules: rules}, testServers)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func loadTestPolicy(t testing.TB) *Policy {
	t.Helper()
	data, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(cfg, testServers)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func call(server, tool, args string) Input {
	in := Input{User: "alice@example.com", Groups: []string{"engineering"}, Server: server, Method: MethodToolsCall, Tool: tool}
	if args != "" {
		in.Args = []byte(args)
	}
	return in
}

// checkDecide runs Decide and Explain and insists they agree.
func checkDecide(t *testing.T, p *Policy, in Input) Decision {
	t.Helper()
	d := p.Decide(in)
	ex := p.Explain(in)
	if !reflect.DeepEqual(d, ex.Decision) {
		t.Fatalf("Decide = %+v, Explain = %+v", d, ex.Decision)
	}
	return d
}

func TestMatchers(t *testing.T) {
	p := loadTestPolicy(t)
	with := func(in Input, f func(*Input)) Input { f(&in); return in }
	tests := []struct {
		name   string
		in     Input
		action Action
		rule   string
	}{
		{"servers+tools glob allow", call("github", "get_issue", `{"n":1}`), Allow, "reads"},
		{"glob prefix only", call("github", "xget_issue", ""), Deny, "default"},
		{"servers mismatch falls to default", call("files", "get_issue", ""), Deny, "default"},
		{"args_match deny", call("warehouse", "execute_sql", `{"query":"DROP table users"}`), Deny, "destructive-sql"},
		{"args_match word boundary", call("warehouse", "execute_sql", `{"query":"select dropped from t"}`), Allow, "warehouse-queries"},
		{"args_match unicode escape canonicalized", call("warehouse", "execute_sql", `{"query":"\u0044ROP TABLE x"}`), Deny, "destructive-sql"},
		{"args_contain nested", call("github", "create_pr", `{"repo":"dev-x","meta":{"notes":["my PassWord is x"]}}`), Deny, "secrets-in-args"},
		{"args_contain in a key", call("github", "create_pr", `{"repo":"dev-x","Password":1}`), Deny, "secrets-in-args"},
		{"args_contain multi-word", call("github", "get_x", `{"k":"-----begin private key-----"}`), Allow, "reads"}, // reads comes first
		{"args_contain other method", with(call("github", "", `{"a":"password"}`), func(in *Input) { in.Method = MethodPromptsGet; in.Tool = "p" }), Deny, "secrets-in-args"},
		{"when true -> approve", call("github", "create_pr", `{"repo":"prod-api"}`), Approve, "writes-need-review"},
		{"when false -> next rule", call("github", "create_pr", `{"repo":"dev-api"}`), Allow, "writes"},
		{"groups mismatch", with(call("github", "create_pr", `{"repo":"prod-api"}`), func(in *Input) { in.Groups = []string{"contractors"} }), Deny, "contractors-no-writes"},
		{"groups case-insensitive", with(call("github", "create_pr", `{"repo":"dev"}`), func(in *Input) { in.Groups = []string{"Engineering"} }), Allow, "writes"},
		{"groups_not excludes", with(call("github", "create_pr", `{"repo":"dev"}`), func(in *Input) { in.Groups = []string{"engineering", "interns"} }), Deny, "default"},
		{"no groups", with(call("github", "create_pr", `{"repo":"dev"}`), func(in *Input) { in.Groups = nil }), Deny, "default"},
		{"users glob", call("warehouse", "execute_sql", `{"query":"select 1"}`), Allow, "warehouse-queries"},
		{"users glob case-insensitive", with(call("warehouse", "execute_sql", `{"query":"select 1"}`), func(in *Input) { in.User = "Bob@Example.COM" }), Allow, "warehouse-queries"},
		{"users glob mismatch", with(call("warehouse", "execute_sql", `{"query":"select 1"}`), func(in *Input) { in.User = "eve@evil.com" }), Deny, "default"},
		{"resources/read URI glob crosses /", with(call("files", "file:///docs/a/b.md", ""), func(in *Input) { in.Method = MethodResourcesRead }), Allow, "docs"},
		{"resources/read other URI", with(call("files", "file:///etc/passwd", ""), func(in *Input) { in.Method = MethodResourcesRead }), Deny, "default"},
		{"methods default is tools/call only", with(call("github", "get_issue", ""), func(in *Input) { in.Method = MethodPromptsGet }), Deny, "default"},
		{"server-to-client request", with(call("github", "", ""), func(in *Input) { in.Method = MethodSamplingCreate }), Deny, "no-sampling"},
		{"unknown method", with(call("github", "get_issue", ""), func(in *Input) { in.Method = "completion/complete" }), Deny, "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := checkDecide(t, p, tt.in)
			if d.Action != tt.action || d.Rule != tt.rule {
				t.Errorf("got %s by %q, want %s by %q (%+v)", d.Action, d.Rule, tt.action, tt.rule, d)
			}
		})
	}
}

func TestDecisionFields(t *testing.T) {
	p := loadTestPolicy(t)
	d := checkDecide(t, p, call("github", "create_pr", `{"repo":"prod-api"}`))
	want := &ApprovalSpec{Approvers: []string{"security-reviewers"}, MinApprovals: 2, Timeout: 30 * time.Minute, Hold: 50 * time.Second}
	if !reflect.DeepEqual(d.Approval, want) || !d.Justification || d.RuleIndex != 3 {
		t.Errorf("decision = %+v, approval %+v", d, d.Approval)
	}
	d = checkDecide(t, p, call("github", "merge_pr", `{"repo":"dev"}`))
	if d.Mask != "default" || d.Approval != nil || d.RuleIndex != 5 {
		t.Errorf("decision = %+v", d)
	}
	d = checkDecide(t, p, call("github", "nope", ""))
	if d.RuleIndex != -1 || d.Reason == "" || d.Action != Deny {
		t.Errorf("default decision = %+v", d)
	}
	d = checkDecide(t, p, call("github", "", `{"password":1}`))
	if d.Reason != `Denied by policy rule "secrets-in-args".` {
		t.Errorf("default deny reason = %q", d.Reason)
	}
	var zero Decision
	if zero.Action != Deny {
		t.Error("zero Decision must deny")
	}
}

func TestFirstMatchWinsAndDefault(t *testing.T) {
	allowAll := RuleConfig{Name: "all", Action: "allow"}
	denyAll := RuleConfig{Name: "none", Action: "deny"}
	in := call("github", "x", "")
	if d := checkDecide(t, mustCompile(t, "", allowAll, denyAll), in); d.Rule != "all" {
		t.Errorf("got %q", d.Rule)
	}
	if d := checkDecide(t, mustCompile(t, "", denyAll, allowAll), in); d.Rule != "none" {
		t.Errorf("got %q", d.Rule)
	}
	for def, want := range map[string]Action{"": Deny, "deny": Deny, "allow": Allow} {
		if d := checkDecide(t, mustCompile(t, def), in); d.Action != want || d.Rule != "default" {
			t.Errorf("default %q: got %+v", def, d)
		}
	}
	p, err := Compile(Config{Default: "approve", DefaultApproval: &ApprovalConfig{Approvers: []string{"ops"}}}, CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := checkDecide(t, p, in); d.Action != Approve || d.Approval == nil || d.Approval.Timeout != DefaultTimeout {
		t.Errorf("default approve: %+v", d)
	}
}

func TestCEL(t *testing.T) {
	tests := []struct {
		name, when, action, args string
		in                       func(*Input)
		want                     verdict
	}{
		{"true", `user == "alice@example.com"`, "allow", "", nil, match},
		{"false", `user == "bob"`, "allow", "", nil, noMatch},
		{"groups", `"engineering" in groups`, "allow", "", nil, match},
		{"server tool method", `server == "github" && tool.startsWith("get") && method == "tools/call"`, "allow", "", nil, match},
		{"nested args", `args.a.b[1] == "x"`, "allow", `{"a":{"b":["w","x"]}}`, nil, match},
		{"int arg", `args.n > 5`, "allow", `{"n":7}`, nil, match},
		{"cross-type compare", `args.n > 5.5 && args.f < 1`, "allow", `{"n":7,"f":0.5}`, nil, match},
		{"big int is double", `args.n > 1.0`, "allow", `{"n":123456789012345678901234}`, nil, match},
		{"has guard", `has(args.force) && args.force == true`, "deny", `{}`, nil, noMatch},
		{"no args uses empty map", `size(args) == 0`, "allow", "", nil, match},
		{"null args is empty map", `size(args) == 0`, "allow", "null", nil, match},
		// Evaluation errors: allow rules do not match, others fail closed.
		{"missing key allow", `args.repo == "x"`, "allow", `{}`, nil, noMatch},
		{"missing key deny", `args.repo == "x"`, "deny", `{}`, nil, matchOnError},
		{"missing key approve", `args.repo.startsWith("prod-")`, "approve", `{"other":1}`, nil, matchOnError},
		{"type confusion deny", `args.limit > 100`, "deny", `{"limit":"999"}`, nil, matchOnError},
		{"type confusion allow", `args.limit < 100`, "allow", `{"limit":"1"}`, nil, noMatch},
		{"invalid JSON deny", `args.x == 1`, "deny", `{"x":1`, nil, matchOnError},
		{"invalid JSON allow", `args.x == 1`, "allow", `{"x":1`, nil, noMatch},
		{"duplicate key deny", `args.x == 1`, "deny", `{"x":2,"x":1}`, nil, matchOnError},
		{"array args deny", `size(args) > 0`, "deny", `[1]`, nil, matchOnError},
		{"args not needed ignores bad JSON", `user == "alice@example.com"`, "allow", `{bad`, nil, match},
		{"overflowing number is not a number", `args.n > 5`, "deny", `{"n":1e999}`, nil, matchOnError},
		{"cost limit fails closed", `args.l.all(x, args.l.all(y, x >= 0))`, "deny", `{"l":[` + strings.Repeat("1,", 3000) + `1]}`, nil, matchOnError},
		{"cost limit allow", `args.l.all(x, args.l.all(y, x >= 0))`, "allow", `{"l":[` + strings.Repeat("1,", 3000) + `1]}`, nil, noMatch},
		{"definite false beats error", `args.missing == 1`, "deny", `{}`, func(in *Input) { in.Tool = "other" }, noMatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := RuleConfig{Name: "r", When: tt.when, Action: tt.action, Tools: []string{"get_*"}}
			if tt.action == "approve" {
				rc.Approval = &ApprovalConfig{Approvers: []string{"ops"}}
			}
			def := "deny"
			if tt.action != "allow" {
				def = "allow"
			}
			p := mustCompile(t, def, rc)
			in := call("github", "get_x", tt.args)
			if tt.in != nil {
				tt.in(&in)
			}
			d := checkDecide(t, p, in)
			got := noMatch
			if d.Rule == "r" {
				got = match
				if d.EvalError != "" {
					got = matchOnError
				}
			}
			if got != tt.want {
				t.Errorf("verdict %d, want %d (decision %+v)", got, tt.want, d)
			}
		})
	}
}

func TestArgsConditionsFailClosed(t *testing.T) {
	deny := mustCompile(t, "allow", RuleConfig{Name: "r", ArgsMatch: "drop", Action: "deny"})
	allow := mustCompile(t, "deny", RuleConfig{Name: "r", ArgsContain: []string{"ok"}, Action: "allow"})
	bad := call("github", "t", `{"q":"ok","q":"drop"}`)
	if d := checkDecide(t, deny, bad); d.Rule != "r" || d.EvalError == "" {
		t.Errorf("deny rule on bad args: %+v", d)
	}
	if d := checkDecide(t, allow, bad); d.Rule != "default" {
		t.Errorf("allow rule on bad args: %+v", d)
	}
	if d := checkDecide(t, deny, call("github", "t", `{"q":"ok"}`)); d.Rule != "default" {
		t.Errorf("deny rule on clean args: %+v", d)
	}
}

func TestCompileCELErrors(t *testing.T) {
	tests := []struct{ when, want string }{
		{`arg.repo == "x"`, `rules[0].when: undeclared reference to 'arg' (did you mean 'args'?)`},
		{`"eng" in group`, `rules[0].when: undeclared reference to 'group' (did you mean 'groups'?)`},
		{`args.n + 1`, `rules[0].when: expression must be bool, got int`},
		{`args.flag`, "rules[0].when: expression must be bool, got dyn"},
		{`user.startWith("a")`, "rules[0].when: undeclared reference to 'startWith' (did you mean 'startsWith'?)"},
		{`user ==`, "rules[0].when: Syntax error"},
		{`nonsense_thing`, "rules[0].when: undeclared reference to 'nonsense_thing' (known variables: user, groups, server, tool, method, args)"},
	}
	for _, tt := range tests {
		_, err := Compile(Config{Rules: []RuleConfig{{When: tt.when, Action: "allow"}}}, CompileOptions{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("when %q: error %v, want %q", tt.when, err, tt.want)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	cfg := Config{
		Default: "maybe",
		Rules: []RuleConfig{
			{Name: "ok", Action: "allow"},
			{Name: "ok", Servers: []string{"githb"}, Action: "allow"},
			{Name: "bad", Methods: []string{"tools/call", "initialize"}, ArgsMatch: "(", Action: "permit"},
			{Name: "appr", Action: "approve"},
			{Name: "appr2", Action: "approve", Approval: &ApprovalConfig{MinApprovals: -1, Timeout: time.Minute, Hold: 2 * time.Minute}},
			{Name: "default", Action: "allow", Approval: &ApprovalConfig{Approvers: []string{"x"}}, Justification: "maybe"},
			{When: "arg.x", Tools: []string{""}},
		},
	}
	_, err := Compile(cfg, testServers)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %T %v, want *ValidationError", err, err)
	}
	want := []FieldError{
		{"default", `unknown action "maybe" (want allow, deny or approve)`},
		{"rules[1].servers[0]", `unknown server "githb" (did you mean "github"?)`},
		{"rules[1].name", `duplicate rule name "ok" (also rules[0])`},
		{"rules[2].methods[1]", `"initialize" is protocol plumbing: the gateway always lets it through, so no rule can decide it`},
		{"rules[2].args_match", "invalid regular expression: missing closing ): `(`"},
		{"rules[2].action", `unknown action "permit" (want allow, deny or approve)`},
		{"rules[3].approval", "action approve needs approval.approvers"},
		{"rules[4].approval.approvers", "at least one approver group is required"},
		{"rules[4].approval.min_approvals", "must be at least 1"},
		{"rules[4].approval.hold", "2m0s is longer than the timeout (1m0s)"},
		{"rules[5].name", `"default" is reserved for the default action`},
		{"rules[5].justification", `unknown value "maybe" (want required, or omit it)`},
		{"rules[5].approval", "only valid with action approve"},
		{"rules[6].tools[0]", "empty tool pattern"},
		{"rules[6].when", "undeclared reference to 'arg' (did you mean 'args'?)"},
		{"rules[6].action", "missing action (want allow, deny or approve)"},
	}
	if !reflect.DeepEqual(ve.Errors, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", ve.Error(), (&ValidationError{want}).Error())
	}
}

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte("rules:\n  - name: a\n    action: approve\n    approval: {approvers: [x], timeout: 1h30m, hold: 45s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Rules[0].Approval; a.Timeout != 90*time.Minute || a.Hold != 45*time.Second {
		t.Errorf("durations: %+v", a)
	}
	for _, bad := range []string{
		"rules:\n  - name: a\n    actoin: allow\n",
		"rules:\n  - name: a\n    approval: {approvers: [x], timeout: soon}\n",
		"defualt: deny\n",
		"rules: [\n",
	} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("ParseConfig(%q) succeeded", bad)
		}
	}
	if cfg, err := ParseConfig(nil); err != nil || cfg.Default != "" {
		t.Errorf("empty: %+v %v", cfg, err)
	}
}

func TestApprovalDefaults(t *testing.T) {
	p := mustCompile(t, "",
		RuleConfig{Name: "a", Action: "approve", Approval: &ApprovalConfig{Approvers: []string{"x"}}},
		RuleConfig{Name: "b", Action: "approve", Approval: &ApprovalConfig{Approvers: []string{"x"}, Timeout: 20 * time.Second}},
	)
	a, b := p.rules[0].approval, p.rules[1].approval
	if a.MinApprovals != 1 || a.Timeout != 15*time.Minute || a.Hold != 50*time.Second {
		t.Errorf("defaults: %+v", a)
	}
	if b.Hold != 20*time.Second {
		t.Errorf("hold default is capped at the timeout: %+v", b)
	}
}

func TestVersion(t *testing.T) {
	base := RuleConfig{Name: "a", Action: "approve", Approval: &ApprovalConfig{Approvers: []string{"x"}}}
	explicit := base
	explicit.Methods = []string{"tools/call"}
	explicit.Approval = &ApprovalConfig{Approvers: []string{"x"}, MinApprovals: 1, Timeout: 15 * time.Minute, Hold: 50 * time.Second}
	v1 := mustCompile(t, "", base).Version()
	v2 := mustCompile(t, "deny", explicit).Version()
	v3 := mustCompile(t, "allow", base).Version()
	if v1 != v2 {
		t.Errorf("spelled-out defaults change the version: %s vs %s", v1, v2)
	}
	if v1 == v3 || len(v1) != 16 {
		t.Errorf("versions %s %s", v1, v3)
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"get_*", "get_issue", true},
		{"get_*", "get_", true},
		{"get_*", "xget_", false},
		{"*", "", true},
		{"**", "anything/at/all", true},
		{"*_sql", "execute_sql", true},
		{"*_sql", "execute_sqlx", false},
		{"*sql*", "my_sql_tool", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYcZ", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a?c", "aéc", true},
		{"file:///docs/*", "file:///docs/a/b", true},
		{"file:///docs/*.md", "file:///docs/a/b.md", true},
		{"file:///docs/*.md", "file:///docs/a/b.mdx", false},
		{"[a]", "[a]", true}, // brackets are literal
		{"[a]", "a", false},
		{`a\*`, `a\xyz`, true}, // no escapes: backslash is literal
		{"exact", "Exact", false},
		{"", "", true},
		{"*a*a*a*a*b", strings.Repeat("a", 200), false},
	}
	for _, tt := range tests {
		g := compileGlob(tt.pattern)
		if got := g.match(tt.s); got != tt.want {
			t.Errorf("glob %q match %q = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
		if got := globMatch(tt.pattern, tt.s); got != tt.want {
			t.Errorf("globMatch %q %q = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestVisibleTool(t *testing.T) {
	p := mustCompile(t, "allow",
		RuleConfig{Name: "cond-deny", Tools: []string{"query"}, ArgsMatch: "drop", Action: "deny"},
		RuleConfig{Name: "contractors", Tools: []string{"delete_*"}, Groups: []string{"contractors"}, Action: "deny"},
		RuleConfig{Name: "list-only", Tools: []string{"secret_*"}, Methods: []string{"resources/read"}, Action: "allow"},
		RuleConfig{Name: "secrets", Tools: []string{"secret_*"}, Action: "deny"},
		RuleConfig{Name: "query-deny", Tools: []string{"query"}, Action: "deny"},
		RuleConfig{Name: "cond-allow", Servers: []string{"github"}, Tools: []string{"admin_*"}, When: `user == "root"`, Action: "allow"},
		RuleConfig{Name: "admin-deny", Tools: []string{"admin_*"}, Action: "deny"},
		RuleConfig{Name: "review", Tools: []string{"deploy"}, Action: "approve", Approval: &ApprovalConfig{Approvers: []string{"ops"}}},
	)
	tests := []struct {
		groups       []string
		server, tool string
		want         bool
	}{
		{nil, "github", "get_x", true},                            // default allow
		{[]string{"contractors"}, "github", "delete_repo", false}, // unconditional deny
		{[]string{"engineering"}, "github", "delete_repo", true},  // rule does not apply
		{nil, "github", "secret_x", false},                        // methods-limited allow skipped
		{nil, "github", "query", true},                            // first applicable rule is conditional
		{nil, "github", "admin_x", true},                          // conditional allow first
		{nil, "files", "admin_x", false},                          // conditional allow does not apply to files
		{nil, "github", "deploy", true},                           // approve is usable
	}
	for _, tt := range tests {
		if got := p.VisibleTool("u@example.com", tt.groups, tt.server, tt.tool); got != tt.want {
			t.Errorf("VisibleTool(%v, %s, %s) = %v, want %v", tt.groups, tt.server, tt.tool, got, tt.want)
		}
	}
	if mustCompile(t, "").VisibleTool("u", nil, "github", "x") {
		t.Error("default deny hides tools")
	}
}

// TestServerIndex checks that the per-server candidate lists keep rule order
// and include server-less rules.
func TestServerIndex(t *testing.T) {
	p := mustCompile(t, "",
		RuleConfig{Name: "g", Servers: []string{"github", "github"}, Action: "allow"},
		RuleConfig{Name: "any", Action: "deny"},
		RuleConfig{Name: "w", Servers: []string{"warehouse", "github"}, Action: "allow"},
	)
	if got := p.candidates("github"); !reflect.DeepEqual(got, []int32{0, 1, 2}) {
		t.Errorf("github: %v", got)
	}
	if got := p.candidates("warehouse"); !reflect.DeepEqual(got, []int32{1, 2}) {
		t.Errorf("warehouse: %v", got)
	}
	if got := p.candidates("other"); !reflect.DeepEqual(got, []int32{1}) {
		t.Errorf("other: %v", got)
	}
}

// TestDecideAgreesWithExplain drives many generated inputs through a large
// policy: Decide (which uses the server index) and Explain (which walks
// every rule) must always agree, and VisibleTool must never hide a tool that
// some call could use.
func TestDecideAgreesWithExplain(t *testing.T) {
	known := []string{"github"}
	for s := 1; s < 7; s++ {
		known = append(known, fmt.Sprintf("srv%d", s))
	}
	p, err := Compile(Config{Default: "allow", Rules: benchRules(120, 7)}, CompileOptions{KnownServers: known})
	if err != nil {
		t.Fatal(err)
	}
	servers := append(known, "unknown")
	tools := []string{"create_issue", "get_issue", "t0_x", "x2z", "y3", "other", ""}
	groupSets := [][]string{nil, {"engineering"}, {"g1", "engineering"}, {"G16"}}
	users := []string{"alice@example.com", "U4@EXAMPLE.COM"}
	argSets := []string{"", `{"repo":"prod-3"}`, `{"repo":"dev-1","labels":[]}`, `{"q":"Forbidden2"}`, `{bad`, `[]`}
	methods := []string{MethodToolsCall, MethodResourcesRead}
	n := 0
	for _, srv := range servers {
		for _, tool := range tools {
			for _, g := range groupSets {
				for _, u := range users {
					visible := p.VisibleTool(u, g, srv, tool)
					for _, a := range argSets {
						for _, m := range methods {
							in := Input{User: u, Groups: g, Server: srv, Method: m, Tool: tool, Args: []byte(a)}
							d := checkDecide(t, p, in)
							if m == MethodToolsCall && d.Action != Deny && !visible {
								t.Fatalf("VisibleTool hides %s/%s from %s %v but %+v", srv, tool, u, g, d)
							}
							n++
						}
					}
				}
			}
		}
	}
	t.Logf("%d inputs", n)
}
